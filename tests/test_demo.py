"""``pyra demo`` (the README's main job) runs as a real subprocess and exits 0."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from erl_interop.testing import ErlPeer, ra_ebin_dirs


def test_pyra_demo_runs_the_walkthrough_and_exits_zero(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyra_dist", "demo", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "demo OK" in lines[-1]
    text = proc.stdout
    steps = (
        "started 3 nodes",
        "process_command(put apple=3) -> 'ok'",
        "add_member",
        "leave_and_terminate",
        "new leader",
        "all 204 acknowledged writes present after failover",
        "caught up",
    )
    for step in steps:
        assert step in text, text


def _start_node(name: str, cookie: str, data_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyra_dist", "node", "--name", name, "--cookie", cookie,
         "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # blocks until the node prints "ready" (or exits)
        if line.startswith("ready "):
            return proc
    raise AssertionError(f"pyra node exited with {proc.wait()}")


def _stop_node(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


@pytest.mark.erlang
def test_pyra_node_serves_an_erl_shell_and_restarts_its_servers_from_disk(
    tmp_path: Path, cookie: str, node_name: Callable[[str], str]
) -> None:
    py = f"{node_name('py')}@127.0.0.1"
    proc = _start_node(py, cookie, tmp_path)
    try:
        with ErlPeer(node_name("erl"), cookie, long_names=True, code_path=ra_ebin_dirs()) as shell:
            machine = "{simple, fun erlang:'+'/2, 0}"
            started = shell.eval(f"ra:start_cluster(default, qs, {machine}, [{{qs, '{py}'}}]).")
            assert started == f"{{ok,[{{qs,'{py}'}}],[]}}"
            assert shell.eval(f"ra:process_command({{qs, '{py}'}}, 5).") == f"{{ok,5,{{qs,'{py}'}}}}"
            status = subprocess.run(
                [sys.executable, "-m", "pyra_dist", "status", "--node", py, "--cookie", cookie],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert status.returncode == 0, status.stdout + status.stderr
            assert status.stdout.splitlines()[1].split()[:3] == ["qs", "qs", "leader"]
            assert _stop_node(proc).rstrip().endswith("stopped")

            proc = _start_node(py, cookie, tmp_path)
            assert shell.eval(f"ra:process_command({{qs, '{py}'}}, 7).") == f"{{ok,12,{{qs,'{py}'}}}}"
    finally:
        if proc.poll() is None:
            _stop_node(proc)
