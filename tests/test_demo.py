"""``pyra demo`` (the README's main job) runs as a real subprocess and exits 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
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


@pytest.mark.erlang
def test_three_pyra_nodes_fail_over_when_the_leaders_node_is_killed(
    tmp_path: Path, cookie: str, node_name: Callable[[str], str]
) -> None:
    names = [f"{node_name('py')}@127.0.0.1" for _ in range(3)]
    procs = {name: _start_node(name, cookie, tmp_path) for name in names}
    try:
        with ErlPeer(node_name("erl"), cookie, long_names=True, code_path=ra_ebin_dirs()) as shell:
            ids = [f"{{kv, '{name}'}}" for name in names]
            machine = "{simple, fun erlang:'+'/2, 0}"
            started = shell.eval(f"element(1, ra:start_cluster(default, kv, {machine}, [{', '.join(ids)}])).")
            assert started == "ok"
            assert shell.eval(f"element(2, ra:process_command({ids[0]}, 5)).") == "5"
            leader = shell.eval(f"{{ok, _, {{_, L}}}} = ra:members({ids[1]}), L.")
            victim = leader.strip("'")
            procs[victim].kill()  # SIGKILL: no orderly stop
            procs[victim].wait(timeout=30)

            survivors = [sid for sid, name in zip(ids, names, strict=True) if name != victim]
            # Ra's client tries each survivor; a new leader must answer within Ra's election bounds.
            reply = "timeout"
            for _ in range(50):
                reply = shell.eval(f"ra:process_command([{', '.join(survivors)}], 7, 2000).")
                if reply.startswith("{ok"):
                    break
                time.sleep(0.2)
            assert reply.startswith("{ok,12,"), reply

            procs[victim] = _start_node(victim, cookie, tmp_path)
            restarted = f"{{kv, '{victim}'}}"
            state = "none"
            for _ in range(100):
                state = shell.eval(f"element(2, element(2, ra:local_query({restarted}, fun(S) -> S end))).")
                if state == "12":
                    break
                time.sleep(0.1)
            assert state == "12"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                _stop_node(proc)
