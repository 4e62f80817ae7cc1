"""docker-compose.yml and scripts/compose_local.py describe the same mixed cluster (issue 6, point 8).

No Docker engine runs here, so the compose file is checked as data (services, node names, cookie,
networks, volumes, health checks, the one-shot), the launcher is checked to derive exactly the
same nodes and commands from it (mapped by its documented rules), and the launcher runs the
topology for real: three Erlang nodes with Ra 2.2.0, two ``pyra node`` processes, the one-shot
that forms the five-member cluster and smoke-tests it, then everything stopped by pid.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
ESCRIPT = "/opt/pyra/scripts/erlang/pyra_compose.escript"
NODES = {
    "ra1": "ra1@ra1.pyra",
    "ra2": "ra2@ra2.pyra",
    "ra3": "ra3@ra3.pyra",
    "py1": "py1@py1.pyra",
    "py2": "py2@py2.pyra",
}


def _load_launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compose_local", REPO / "scripts" / "compose_local.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["compose_local"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


cl = _load_launcher()


def _raw() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def test_compose_file_runs_three_ra_nodes_two_pyra_nodes_and_a_one_shot_on_one_network() -> None:
    doc = _raw()
    services = doc["services"]
    assert list(services) == ["ra1", "ra2", "ra3", "py1", "py2", "form"]
    assert doc["networks"] == {"pyra": {"driver": "bridge"}}
    assert doc["volumes"] == {f"{n}-data": None for n in NODES}
    for name in ("ra1", "ra2", "ra3"):
        svc = services[name]
        assert svc["build"] == {"context": ".", "target": "ra"}
        assert svc["command"] == ["escript", ESCRIPT, "node", NODES[name], "/data"]
        assert svc["healthcheck"]["test"] == ["CMD", "escript", ESCRIPT, "ready", NODES[name]]
    for name in ("py1", "py2"):
        svc = services[name]
        assert svc["build"] == {"context": ".", "target": "pyra"}
        assert svc["command"] == [
            *("pyra", "node", "--name", NODES[name], "--cookie", "${ERLANG_COOKIE}"),
            *("--data-dir", "/data"),
        ]
        assert svc["healthcheck"]["test"] == [
            *("CMD", "pyra", "status", "--node", NODES[name]),
            *("--cookie", "${ERLANG_COOKIE}"),
        ]
    for name in NODES:
        svc = services[name]
        assert svc["volumes"] == [f"{name}-data:/data"]
        assert svc["networks"] == {"pyra": {"aliases": [f"{name}.pyra"]}}
        assert svc["environment"] == {
            "ERLANG_COOKIE": "${ERLANG_COOKIE:?set ERLANG_COOKIE to the cluster's distribution cookie}"
        }
    form = services["form"]
    assert form["command"] == [
        *("escript", ESCRIPT, "form", "smoke", NODES["ra1"], NODES["ra2"], NODES["ra3"]),
        *("--python", NODES["py1"], NODES["py2"]),
    ]
    assert form["depends_on"] == {n: {"condition": "service_healthy"} for n in NODES}
    assert form["networks"] == {"pyra": {"aliases": ["form.pyra"]}}
    assert form["restart"] == "no"
    assert "healthcheck" not in form


def test_launcher_reads_the_nodes_names_and_cookie_the_compose_file_declares() -> None:
    cookie = "c" + secrets.token_hex(8)
    topo = cl.load_compose(COMPOSE, {"ERLANG_COOKIE": cookie})
    assert topo.networks == ("pyra",)
    assert [s.name for s in topo.services] == ["ra1", "ra2", "ra3", "py1", "py2", "form"]
    assert {s.name: s.node for s in topo.services if not s.one_shot} == NODES
    assert [s.name for s in topo.services if s.one_shot] == ["form"]
    raw = _raw()["services"]
    for svc in topo.services:
        # Same commands, argument for argument, once compose has interpolated the cookie.
        expected = [a.replace("${ERLANG_COOKIE}", cookie) for a in raw[svc.name]["command"]]
        assert list(svc.command) == expected
        assert dict(svc.environment)["ERLANG_COOKIE"] == cookie
        assert svc.aliases == (f"{svc.name}.pyra",)
    assert [s.depends_on for s in topo.services if s.one_shot] == [
        tuple((n, "service_healthy") for n in NODES)
    ]
    ra1 = topo.service("ra1")
    assert ra1.volumes == (("ra1-data", "/data"),)
    assert ra1.healthcheck == cl.HealthCheck(
        test=("escript", ESCRIPT, "ready", "ra1@ra1.pyra"),
        interval_s=5.0,
        timeout_s=10.0,
        retries=12,
        start_period_s=30.0,
    )
    assert ra1.stop_grace_s == 15.0


def test_launcher_maps_every_service_to_the_same_local_command(tmp_path: Path) -> None:
    cookie = "c" + secrets.token_hex(8)
    ebin = ("/x/ra-2.2.0/ebin", "/x/aten/ebin")
    settings = cl.LocalSettings(
        work_dir=tmp_path, suffix="_t1", python="/py", repo_root=Path("/repo"), ra_ebin=ebin
    )
    local = cl.localize(cl.load_compose(COMPOSE, {"ERLANG_COOKIE": cookie}), settings)
    script = "/repo/scripts/erlang/pyra_compose.escript"
    vol = f"{tmp_path}/volumes"
    assert {s.name: s.command for s in local.services} == {
        "ra1": ("escript", script, "node", "ra1_t1@127.0.0.1", f"{vol}/ra1-data"),
        "ra2": ("escript", script, "node", "ra2_t1@127.0.0.1", f"{vol}/ra2-data"),
        "ra3": ("escript", script, "node", "ra3_t1@127.0.0.1", f"{vol}/ra3-data"),
        "py1": (
            *("/py", "-m", "pyra_dist", "node", "--name", "py1_t1@127.0.0.1", "--cookie", cookie),
            *("--data-dir", f"{vol}/py1-data"),
        ),
        "py2": (
            *("/py", "-m", "pyra_dist", "node", "--name", "py2_t1@127.0.0.1", "--cookie", cookie),
            *("--data-dir", f"{vol}/py2-data"),
        ),
        "form": (
            *("escript", script, "form", "smoke", "ra1_t1@127.0.0.1", "ra2_t1@127.0.0.1"),
            *("ra3_t1@127.0.0.1", "--python", "py1_t1@127.0.0.1", "py2_t1@127.0.0.1"),
        ),
    }
    health = {s.name: s.healthcheck.test for s in local.services if s.healthcheck is not None}
    assert health == {
        "ra1": ("escript", script, "ready", "ra1_t1@127.0.0.1"),
        "ra2": ("escript", script, "ready", "ra2_t1@127.0.0.1"),
        "ra3": ("escript", script, "ready", "ra3_t1@127.0.0.1"),
        "py1": ("/py", "-m", "pyra_dist", "status", "--node", "py1_t1@127.0.0.1", "--cookie", cookie),
        "py2": ("/py", "-m", "pyra_dist", "status", "--node", "py2_t1@127.0.0.1", "--cookie", cookie),
    }
    ra_ebin = ("RA_EBIN", "/x/ra-2.2.0/ebin:/x/aten/ebin")
    assert {s.name: s.environment for s in local.services} == {
        **{n: (("ERLANG_COOKIE", cookie), ra_ebin) for n in NODES},
        "form": (("ERLANG_COOKIE", cookie), ("PYRA_CTL_HOST", "127.0.0.1"), ra_ebin),
    }
    assert [s.name for s in cl.start_order(local)] == ["ra1", "ra2", "ra3", "py1", "py2", "form"]


def test_launcher_refuses_to_start_without_the_cookie_variable_as_compose_does() -> None:
    with pytest.raises(cl.ComposeError, match="required variable ERLANG_COOKIE is missing a value"):
        cl.load_compose(COMPOSE, {})
    with pytest.raises(cl.ComposeError, match="ERLANG_COOKIE"):
        cl.load_compose(COMPOSE, {"ERLANG_COOKIE": ""})


def test_interpolation_follows_compose_rules_for_defaults_errors_and_dollar_escapes() -> None:
    env = {"A": "x", "E": ""}
    assert cl.interpolate("$A ${A} $$A ${B:-d} ${E:-d} ${E-d} ${B-d} ${E}", env) == "x x $A d d  d "
    with pytest.raises(cl.ComposeError, match="required variable B is missing a value: oops"):
        cl.interpolate("${B?oops}", env)
    assert cl.interpolate("${E?fine}", env) == ""
    assert cl.duration_s("1m30s", 0.0) == 90.0
    assert cl.duration_s("500ms", 0.0) == 0.5
    assert cl.duration_s(None, 10.0) == 10.0


def test_dockerfile_builds_the_two_targets_compose_uses_with_the_repository_at_the_image_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M) == [
        ("debian:bookworm-slim", "ra"),
        ("ra", "pyra"),
    ]
    assert re.findall(r"^WORKDIR (\S+)$", text, re.M) == [cl.IMAGE_ROOT]
    assert "COPY scripts/erlang/ scripts/erlang/" in text
    assert "erlang-nox rabbitmq-server" in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", "tests", "**/*.beam", "**/__pycache__"} <= set(ignored)


class _Output:
    """The launcher's output lines, read by a thread so waits can have deadlines."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None:
                raise AssertionError(f"launcher ended before {pattern!r}:\n" + "\n".join(self.lines[-60:]))
            if line:
                self.lines.append(line)
                found = re.search(pattern, line)
                if found:
                    return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in {timeout} s:\n" + "\n".join(self.lines[-60:]))

    def rest(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
        return self.lines


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.erlang
def test_launcher_forms_the_mixed_cluster_smoke_tests_it_stops_every_node_and_restarts_it_from_volumes(
    tmp_path: Path,
) -> None:
    cookie = "c" + secrets.token_hex(8)
    suffix = "cmp" + secrets.token_hex(3)
    env = {**os.environ, "ERLANG_COOKIE": cookie, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, str(REPO / "scripts" / "compose_local.py"), "--suffix", suffix]
    proc = subprocess.Popen(
        [*argv, "--work-dir", str(tmp_path), "--keep-running"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out = _Output(proc)
    pids: dict[str, int] = {}
    try:
        for name in ("ra1", "ra2", "ra3", "py1", "py2"):
            found = out.wait_for(rf"^{name}\s+\| started pid (\d+): ", 60)
            pids[name] = int(found.group(1))
        out.wait_for(r"^form\s+\| started pid \d+", 60)
        out.wait_for(
            rf"^form\s+\| form: smoke test passed: 5 members \(3 Erlang, 2 Python\), "
            rf"leader \{{smoke,'(ra|py)[123]{suffix}@127.0.0.1'\}}",
            60,
        )
        out.wait_for(r"^form\s+\| exited with status 0$", 30)
        out.wait_for(r"nodes keep running", 10)
        assert all(_alive(pid) for pid in pids.values())
        # While it runs, `pyra status` on a Python node shows its server of the 5-member cluster.
        status = subprocess.run(
            [
                sys.executable,
                "-m",
                "pyra_dist",
                "status",
                "--node",
                f"py1{suffix}@127.0.0.1",
                "--cookie",
                cookie,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        rows = status.stdout.splitlines()
        assert rows[-1] == f"1 servers on py1{suffix}@127.0.0.1"
        assert rows[1].split()[:2] == ["smoke", "smoke"]
        assert rows[1].split()[-1].count("{smoke,") == 5
        # Ctrl-C: the launcher stops every node it started, by pid, and exits with the one-shot's 0.
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    lines = out.rest(5)
    for name, pid in pids.items():
        assert f"{name.ljust(4)} | stopped (status 0)" in lines, "\n".join(lines[-40:])
        assert not _alive(pid)
    names = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10, check=False)
    assert suffix not in names.stdout
    assert sorted(p.name for p in (tmp_path / "volumes").iterdir()) == [f"{n}-data" for n in sorted(NODES)]
    # Second `up` on the same volumes: every server (Erlang and Python) restarts from its data
    # dir, the one-shot finds the cluster instead of forming it, and the state carries on.
    again = subprocess.run(
        [*argv, "--work-dir", str(tmp_path)], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert again.returncode == 0, again.stdout[-4000:]
    assert re.search(
        r"^form\s+\| form: cluster smoke already has servers running on \[.*\] "
        r"\(restarted from their data dirs\): not formed again$",
        again.stdout,
        re.M,
    ), again.stdout
    for name in ("ra1", "ra2", "ra3"):
        assert f"{name.ljust(4)} | restarted smoke: ok" in again.stdout.splitlines()
    for name in ("py1", "py2"):
        assert (
            f"{name.ljust(4)} | restarted smoke from {tmp_path}/volumes/{name}-data/{name}{suffix}@127.0.0.1"
            in (again.stdout.splitlines())
        )
    assert re.search(r"smoke test passed: 5 members \(3 Erlang, 2 Python\), .* state 26$", again.stdout, re.M)
