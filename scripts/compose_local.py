"""Start the topology of ``docker-compose.yml`` as local processes on 127.0.0.1 (no Docker needed).

Owns: reading a compose file (the subset ``docker-compose.yml`` uses: ``${VAR}`` interpolation,
``command``, ``environment``, ``volumes``, network ``aliases``, ``healthcheck``, ``depends_on``
conditions, ``restart: "no"`` one-shots, ``stop_grace_period``), mapping each service to a local
process by the fixed rules below, and running them: start in dependency order, run health
checks, stream output prefixed by the service name (as ``docker compose up`` does), wait for the
one-shot services, then stop every process it started, by pid (SIGTERM, SIGKILL after the grace
period), also on SIGINT/SIGTERM.

Container -> local mapping (the only differences from the compose file):

* ``alive@host`` where ``host`` is a network alias -> ``alive{suffix}@127.0.0.1``; a value equal to
  an alias (``PYRA_CTL_HOST: form.pyra``) -> ``127.0.0.1``. Erlang nodes are long names either way.
* ``/opt/pyra`` (the image's ``WORKDIR``, a copy of this repository) -> the repository root.
* a volume's mount target (``/data``) -> ``{work_dir}/volumes/{volume}``.
* the program ``pyra`` -> ``{python} -m pyra_dist`` (this checkout's console script).
* every process gets ``RA_EBIN`` = Ra 2.2.0's ebin dirs (``erl_interop.testing.ra_ebin_dirs()``),
  which ``scripts/erlang/pyra_compose.escript`` puts on the code path.

Must not: kill anything it did not start, or touch Docker. Usage::

    ERLANG_COOKIE=secret python3 scripts/compose_local.py [--suffix S] [--work-dir D]
        [--keep-running] [--print] [docker-compose.yml]

Exit status: the worst exit status of the one-shot services (0 when every one passed), 1 when a
node failed to start or become healthy, 2 for a compose file it cannot use, 130 on SIGINT before
the one-shots finished.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import IO, Any, TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE_ROOT = "/opt/pyra"
"""The Dockerfile's ``WORKDIR``: where the images hold their copy of this repository."""
LOCAL_HOST = "127.0.0.1"


class ComposeError(Exception):
    """The compose file uses something this launcher cannot map, or a variable is missing."""


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A service's ``healthcheck``: ``test`` is the argv after ``CMD``; times in seconds."""

    test: tuple[str, ...]
    interval_s: float
    timeout_s: float
    retries: int
    start_period_s: float


@dataclass(frozen=True, slots=True)
class Service:
    """One compose service, as the compose file says (container view) or mapped (local view).

    ``volumes`` are ``(volume, mount target)`` pairs; ``depends_on`` are ``(service, condition)``.
    """

    name: str
    command: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    volumes: tuple[tuple[str, str], ...]
    aliases: tuple[str, ...]
    healthcheck: HealthCheck | None
    depends_on: tuple[tuple[str, str], ...]
    one_shot: bool
    stop_grace_s: float

    @property
    def node(self) -> str | None:
        """The distribution node this service runs: the first ``alive@host`` argument."""
        for arg in self.command:
            if re.fullmatch(r"[A-Za-z0-9_-]+@[A-Za-z0-9_.-]+", arg):
                return arg
        return None


@dataclass(frozen=True, slots=True)
class Topology:
    """The services of a compose file, in file order, and its networks."""

    services: tuple[Service, ...]
    networks: tuple[str, ...]

    def service(self, name: str) -> Service:
        """The service called ``name``.

        Raises:
            KeyError: no such service.
        """
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# Reading the compose file
# ---------------------------------------------------------------------------------------------

_VAR = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[?-])([^}]*))?\}|(\w+))")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable interpolation: ``$$``, ``$V``, ``${V}``, ``${V:-d}``, ``${V-d}``, ``${V:?e}``.

    Args:
        text: a string value of the compose file.
        env: the variables (the launcher's environment).

    Returns:
        ``text`` with every variable replaced.

    Raises:
        ComposeError: a required variable (``${V:?error}``) is unset or empty.
    """

    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        value = env.get(name)
        # ':' forms treat an empty value as missing, as compose does.
        missing = not value if op in (":-", ":?") else value is None
        if op and op.endswith("?") and missing:
            raise ComposeError(f"required variable {name} is missing a value: {arg}")
        if op and op.endswith("-") and missing:
            return arg
        return value or ""

    return _VAR.sub(one, text)


def _interpolate_all(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_all(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_all(v, env) for k, v in node.items()}
    return node


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_s(value: object, default: float) -> float:
    """A compose duration (``"1m30s"``, ``"500ms"``) in seconds; ``default`` when absent.

    Raises:
        ComposeError: not a duration.
    """
    if value is None:
        return default
    text = str(value)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ComposeError(f"not a duration: {text!r}")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _argv(value: object, what: str) -> tuple[str, ...]:
    # Only the exec form: a string would go through a shell in the container.
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ComposeError(f"{what}: only the list (exec) form is supported, got {value!r}")
    return tuple(str(v) for v in value)


def _service(name: str, spec: Mapping[str, Any]) -> Service:
    command = _argv(spec.get("command"), f"{name}.command")
    env_spec = spec.get("environment") or {}
    if isinstance(env_spec, list):
        env_spec = dict(item.split("=", 1) for item in env_spec)
    environment = tuple((str(k), "" if v is None else str(v)) for k, v in env_spec.items())
    volumes: list[tuple[str, str]] = []
    for vol in spec.get("volumes") or []:
        if not isinstance(vol, str) or vol.count(":") not in (1, 2):
            raise ComposeError(f"{name}.volumes: only short 'volume:/target' entries, got {vol!r}")
        source, target = vol.split(":")[:2]
        volumes.append((source, target))
    aliases: list[str] = []
    networks = spec.get("networks") or {}
    for net in networks.values() if isinstance(networks, dict) else []:
        aliases.extend((net or {}).get("aliases") or [])
    health = spec.get("healthcheck")
    check = None
    if health is not None:
        test = _argv(health.get("test"), f"{name}.healthcheck.test")
        if test[:1] != ("CMD",):
            raise ComposeError(f"{name}.healthcheck.test: only the [CMD, ...] form, got {test!r}")
        check = HealthCheck(
            test=test[1:],
            interval_s=duration_s(health.get("interval"), 30.0),
            timeout_s=duration_s(health.get("timeout"), 30.0),
            retries=int(health.get("retries", 3)),
            start_period_s=duration_s(health.get("start_period"), 0.0),
        )
    deps = spec.get("depends_on") or {}
    if isinstance(deps, list):
        deps = {d: {"condition": "service_started"} for d in deps}
    depends_on = tuple((str(d), str((c or {}).get("condition", "service_started"))) for d, c in deps.items())
    return Service(
        name=name,
        command=command,
        environment=environment,
        volumes=tuple(volumes),
        aliases=tuple(aliases),
        healthcheck=check,
        depends_on=depends_on,
        one_shot=str(spec.get("restart", "no")) == "no" and check is None,
        stop_grace_s=duration_s(spec.get("stop_grace_period"), 10.0),
    )


def load_compose(path: Path, env: Mapping[str, str]) -> Topology:
    """Read a compose file and interpolate it as ``docker compose`` does (the container view).

    Args:
        path: the compose file.
        env: the variables for interpolation.

    Returns:
        Its services in file order and its networks.

    Raises:
        ComposeError: unreadable, unsupported, or a required variable is missing.
    """
    import yaml  # type: ignore[import-untyped]

    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ComposeError(f"cannot read {path}: {exc}") from exc
    doc = _interpolate_all(raw, env)
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        raise ComposeError(f"{path}: no services")
    names = set(services)
    topo = Topology(
        services=tuple(_service(str(n), spec) for n, spec in services.items()),
        networks=tuple(str(n) for n in (doc.get("networks") or {})),
    )
    for svc in topo.services:
        for dep, condition in svc.depends_on:
            if dep not in names:
                raise ComposeError(f"{svc.name} depends on unknown service {dep}")
            if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                raise ComposeError(f"{svc.name}: unknown depends_on condition {condition}")
    return topo


# ---------------------------------------------------------------------------------------------
# Mapping to local processes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """Where and how the local processes run (see the mapping rules in the module docstring)."""

    work_dir: Path
    suffix: str = ""
    python: str = sys.executable
    repo_root: Path = REPO_ROOT
    ra_ebin: tuple[str, ...] = ()


def localize(topology: Topology, settings: LocalSettings) -> Topology:
    """Map every service of the container view to its local process (same nodes, same commands).

    Args:
        topology: what :func:`load_compose` read.
        settings: the local work dir, name suffix, Python, repository and Ra ebin dirs.

    Returns:
        The same services with local commands, health checks and environments.
    """
    aliases = {alias for svc in topology.services for alias in svc.aliases}
    node_re = re.compile(r"([A-Za-z0-9_-]+)@(" + "|".join(re.escape(a) for a in sorted(aliases)) + r")")

    def names(text: str) -> str:
        if text in aliases:
            return LOCAL_HOST
        if not aliases:
            return text
        return node_re.sub(lambda m: f"{m.group(1)}{settings.suffix}@{LOCAL_HOST}", text)

    def path(text: str, svc: Service) -> str:
        for volume, target in svc.volumes:
            if text == target or text.startswith(target.rstrip("/") + "/"):
                return str(settings.work_dir / "volumes" / volume) + text[len(target) :]
        if text == IMAGE_ROOT or text.startswith(IMAGE_ROOT + "/"):
            return str(settings.repo_root) + text[len(IMAGE_ROOT) :]
        return text

    def argv(args: tuple[str, ...], svc: Service) -> tuple[str, ...]:
        mapped = tuple(path(names(a), svc) for a in args)
        if mapped[:1] == ("pyra",):
            return (settings.python, "-m", "pyra_dist", *mapped[1:])
        return mapped

    local: list[Service] = []
    for svc in topology.services:
        env = [(k, path(names(v), svc)) for k, v in svc.environment]
        if settings.ra_ebin:
            env.append(("RA_EBIN", ":".join(settings.ra_ebin)))
        check = svc.healthcheck
        local.append(
            replace(
                svc,
                command=argv(svc.command, svc),
                environment=tuple(env),
                healthcheck=None if check is None else replace(check, test=argv(check.test, svc)),
            )
        )
    return replace(topology, services=tuple(local))


def start_order(topology: Topology) -> list[Service]:
    """Services ordered so that each comes after everything it depends on (file order otherwise).

    Raises:
        ComposeError: a dependency cycle.
    """
    done: list[Service] = []
    pending = list(topology.services)
    while pending:
        ready = [s for s in pending if all(d in {x.name for x in done} for d, _ in s.depends_on)]
        if not ready:
            raise ComposeError(f"dependency cycle among {[s.name for s in pending]}")
        done.append(ready[0])
        pending.remove(ready[0])
    return done


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


class Interrupted(Exception):
    """SIGINT or SIGTERM reached the launcher."""


class StartFailed(Exception):
    """A node exited or never became healthy."""


@dataclass
class _Running:
    service: Service
    proc: subprocess.Popen[bytes]
    reader: threading.Thread


class Launcher:
    """Runs a localized topology; :meth:`run` stops everything it started before returning."""

    def __init__(self, topology: Topology, settings: LocalSettings, out: TextIO) -> None:
        self.topology = topology
        self.settings = settings
        self.out = out
        self.running: dict[str, _Running] = {}
        self.healthy: set[str] = set()
        self.exit_codes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._width = max(len(s.name) for s in topology.services)

    def say(self, name: str, line: str) -> None:
        """Print one line prefixed with the service name, as ``docker compose up`` does."""
        with self._lock:
            self.out.write(f"{name.ljust(self._width)} | {line}\n")
            self.out.flush()

    def _env(self, svc: Service) -> dict[str, str]:
        env = dict(os.environ)
        env.update(svc.environment)
        return env

    def _pump(self, name: str, stream: IO[bytes], log: IO[bytes]) -> None:
        for raw in stream:
            log.write(raw)
            log.flush()
            self.say(name, raw.decode("utf-8", "replace").rstrip("\n"))
        log.close()

    def start(self, svc: Service) -> None:
        """Start one service as a child process in its own session (signals go through us)."""
        for volume, _ in svc.volumes:
            (self.settings.work_dir / "volumes" / volume).mkdir(parents=True, exist_ok=True)
        logs = self.settings.work_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            list(svc.command),
            cwd=self.settings.repo_root,
            env=self._env(svc),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        log = (logs / f"{svc.name}.log").open("ab")
        reader = threading.Thread(target=self._pump, args=(svc.name, proc.stdout, log), daemon=True)
        reader.start()
        self.running[svc.name] = _Running(svc, proc, reader)
        self.say(svc.name, f"started pid {proc.pid}: {' '.join(svc.command)}")

    def check_health(self, svc: Service) -> bool:
        """Run the service's health check once; True when it exits 0."""
        assert svc.healthcheck is not None
        try:
            done = subprocess.run(
                list(svc.healthcheck.test),
                cwd=self.settings.repo_root,
                env=self._env(svc),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=svc.healthcheck.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def wait_healthy(self, names: Sequence[str]) -> None:
        """Poll the health checks of ``names`` until each passes.

        Docker runs a check every ``interval``; here the first success is all that matters, so
        checks run every ``min(interval, 1 s)`` within Docker's budget
        (``start_period + retries * interval``).

        Raises:
            StartFailed: a service exited, or its budget ran out.
        """
        deadlines: dict[str, float] = {}
        for name in names:
            check = self.running[name].service.healthcheck
            assert check is not None
            deadlines[name] = time.monotonic() + check.start_period_s + check.retries * check.interval_s
        waiting = [n for n in names if n not in self.healthy]
        while waiting:
            for name in list(waiting):
                run = self.running[name]
                if run.proc.poll() is not None:
                    raise StartFailed(
                        f"{name} exited with status {run.proc.returncode} before it was healthy"
                    )
                if self.check_health(run.service):
                    self.healthy.add(name)
                    waiting.remove(name)
                    self.say(name, "healthy")
                elif time.monotonic() > deadlines[name]:
                    raise StartFailed(f"{name} did not become healthy")
            if waiting:
                intervals = [self.running[n].service.healthcheck for n in waiting]
                time.sleep(min([1.0, *(c.interval_s for c in intervals if c is not None)]))

    def wait_dependencies(self, svc: Service) -> None:
        """Block until every ``depends_on`` condition of ``svc`` holds.

        Raises:
            StartFailed: a dependency failed its condition.
        """
        healthy = [d for d, c in svc.depends_on if c == "service_healthy"]
        if healthy:
            self.wait_healthy(healthy)
        for dep, condition in svc.depends_on:
            if condition == "service_completed_successfully":
                code = self.running[dep].proc.wait()
                self.running[dep].reader.join()
                if code != 0:
                    raise StartFailed(f"{dep} exited with status {code}")

    def run(self, keep_running: bool = False) -> int:
        """Start everything, wait for the one-shots, stop everything (also when interrupted).

        Args:
            keep_running: after the one-shots, keep the nodes up until SIGINT/SIGTERM.

        Returns:
            The exit status (see the module docstring).
        """
        try:
            for svc in start_order(self.topology):
                self.wait_dependencies(svc)
                self.start(svc)
            for svc in self.topology.services:
                if svc.one_shot:
                    code = self.running[svc.name].proc.wait()
                    self.running[svc.name].reader.join()
                    self.exit_codes[svc.name] = code
                    self.say(svc.name, f"exited with status {code}")
            if keep_running and all(c == 0 for c in self.exit_codes.values()):
                self.say("-", "nodes keep running; Ctrl-C (SIGINT) or SIGTERM stops them")
                while True:
                    time.sleep(3600)
        except StartFailed as exc:
            self.say("-", f"FAILED: {exc}")
            return 1
        except (Interrupted, KeyboardInterrupt):
            self.say("-", "interrupted")
            if len(self.exit_codes) < sum(s.one_shot for s in self.topology.services):
                return 130
        finally:
            self.stop_all()
        return max(self.exit_codes.values(), default=0)

    def stop_all(self) -> None:
        """Stop every started process, newest first: SIGTERM, SIGKILL after its grace period."""
        for name, run in reversed(list(self.running.items())):
            if run.proc.poll() is None:
                self.say(name, f"stopping pid {run.proc.pid}")
                with contextlib.suppress(ProcessLookupError):
                    run.proc.terminate()
        for name, run in reversed(list(self.running.items())):
            try:
                run.proc.wait(run.service.stop_grace_s)
            except subprocess.TimeoutExpired:
                self.say(
                    name, f"still running after {run.service.stop_grace_s:.0f} s: SIGKILL pid {run.proc.pid}"
                )
                run.proc.kill()
                run.proc.wait()
            run.reader.join(5)
            self.say(name, f"stopped (status {run.proc.returncode})")


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def _work_dir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    tmp = Path(tempfile.mkdtemp(prefix="pyra-compose-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ra_ebin() -> tuple[str, ...]:
    sys.path.insert(0, str(REPO_ROOT))
    from erl_interop.testing import ra_ebin_dirs

    return tuple(ra_ebin_dirs())


def describe(topology: Topology) -> str:
    """The local plan as text: one block per service (what ``--print`` shows)."""
    lines: list[str] = []
    for svc in topology.services:
        kind = "one-shot" if svc.one_shot else f"node {svc.node}"
        lines.append(f"{svc.name} ({kind})")
        lines.append(f"  command: {' '.join(svc.command)}")
        for key, value in svc.environment:
            lines.append(f"  env {key}={value}")
        if svc.healthcheck is not None:
            lines.append(f"  health: {' '.join(svc.healthcheck.test)}")
        for dep, condition in svc.depends_on:
            lines.append(f"  after {dep}: {condition}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, read the compose file, run the local topology.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(
        prog="compose_local.py", description="Run docker-compose.yml's topology as local processes."
    )
    parser.add_argument("compose_file", nargs="?", type=Path, default=REPO_ROOT / "docker-compose.yml")
    parser.add_argument("--suffix", default="", help="appended to every node's alive part (unique names)")
    parser.add_argument("--work-dir", type=Path, default=None, help="volumes and logs (default: a temp dir)")
    parser.add_argument("--keep-running", action="store_true", help="keep the nodes up after the one-shots")
    parser.add_argument("--print", action="store_true", help="print the local plan and exit")
    args = parser.parse_args(argv)
    if args.suffix and not re.fullmatch(r"[A-Za-z0-9_-]+", args.suffix):
        parser.error("--suffix: letters, digits, '_' and '-' only (it becomes part of node names)")
    try:
        container = load_compose(args.compose_file, os.environ)
        with _work_dir(args.work_dir) as work:
            settings = LocalSettings(work_dir=work, suffix=args.suffix, ra_ebin=_ra_ebin())
            local = localize(container, settings)
            if args.print:
                print(describe(local))
                return 0
            signal.signal(signal.SIGTERM, _raise_interrupted)
            return Launcher(local, settings, sys.stdout).run(keep_running=args.keep_running)
    except (ComposeError, FileNotFoundError) as exc:
        print(f"compose_local: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
