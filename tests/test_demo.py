"""``pyra demo`` (the README's main job) runs as a real subprocess and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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


def test_pyra_node_reports_clearly_that_it_is_not_available_yet() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyra_dist", "node", "--name", "x@localhost"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, "not available yet" in proc.stdout) == (2, True)
