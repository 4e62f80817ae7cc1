# Images of the mixed-cluster topology (docker-compose.yml). One Dockerfile, two targets:
#
#   ra    Debian bookworm's OTP 25 (erlang-nox) and the Ra 2.2.0 shipped in its rabbitmq-server
#         package (plugins/ra-2.2.0, aten, gen_batch_server, seshat), plus scripts/erlang.
#         Runs the Erlang Ra nodes and the one-shot `form` step.
#   pyra  (default) the Python node: `ra` plus Python 3.11 and this project installed, so the
#         `pyra` console script runs `pyra node` / `pyra status`. It keeps OTP because a
#         Python node needs an epmd reachable from the other containers: pyra starts the
#         system `epmd -daemon` (all interfaces) when it finds one, while its embedded epmd
#         only binds 127.0.0.1.
#
# Build: docker build -t pyra-node:local .   (or docker compose build)

FROM debian:bookworm-slim AS ra
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# policy-rc.d: never let the rabbitmq-server package start its service; only Ra's code is used.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends erlang-nox rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/ra-2.2.0/ebin
WORKDIR /opt/pyra
COPY scripts/erlang/ scripts/erlang/
VOLUME /data
CMD ["escript", "/opt/pyra/scripts/erlang/pyra_compose.escript"]

FROM ra AS pyra
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md ./
COPY erl_interop/ erl_interop/
COPY pyra_dist/ pyra_dist/
# setup.py builds the optional C codec (erl_interop.term._speedups) with gcc (skipped without one).
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir .
ENV PATH=/opt/venv/bin:$PATH
CMD ["pyra", "node", "--name", "py1@py1.pyra", "--cookie", "set-a-cookie", "--data-dir", "/data"]
