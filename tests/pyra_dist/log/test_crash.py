"""Crash tests with real processes: a loaded writer is SIGKILLed at random moments, again and again.

After every kill the data directory is recovered in this process and every entry the writer had
been told was written must be there, intact (unless the writer itself later replaced it by a
rewind or a truncation, which it logs before doing so). The same directory is reused by the next
writer, so recoveries of recoveries are exercised too.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from crash_writer import UIDS, payload

from pyra_dist.log import LogSystem, SystemConfig

WRITER = Path(__file__).with_name("crash_writer.py")


@dataclass
class Acks:
    """The complete lines of one writer's ack file."""

    written: list[tuple[int, str, int, int]] = field(default_factory=list)
    replaced: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    snapshots: dict[str, int] = field(default_factory=dict)


def parse_acks(path: Path) -> Acks:
    acks = Acks()
    text = path.read_text()
    lines = text.split("\n")[:-1]  # the last line may have been cut by the kill
    for pos, line in enumerate(lines):
        kind, *rest = line.split()
        if kind == "W":
            acks.written.append((pos, rest[0], int(rest[1]), int(rest[2])))
        elif kind == "R":
            # entries from index on are replaced
            acks.replaced.setdefault(rest[0], []).append((pos, int(rest[1])))
        elif kind == "T":
            # entries above index are removed
            acks.replaced.setdefault(rest[0], []).append((pos, int(rest[1]) + 1))
        elif kind == "S":
            acks.snapshots[rest[0]] = int(rest[1])
    return acks


def run_writer_until_killed(data_dir: Path, ack_path: Path, seed: int, rng: random.Random) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), str(ack_path), str(seed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        deadline = time.monotonic() + 60
        while not (ack_path.exists() and ack_path.read_bytes().startswith(b"READY\n")):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "writer did not start"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.6))
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


def verify(data_dir: Path, acks: Acks) -> int:
    """Recover and check every acknowledged entry; returns how many acks were checked strictly."""
    system = LogSystem.open(SystemConfig(data_dir=data_dir), "n1")
    strict = 0
    try:
        for uid in UIDS:
            log = system.open_server_log(uid)
            snap = log.snapshot_meta()
            snap_index = snap.index if snap is not None else 0
            assert snap_index >= acks.snapshots.get(uid, 0)
            # Every entry held is intact and terms never decrease.
            entries = log.fetch(log.first_index, log.last_index)
            assert [e[0] for e in entries] == list(range(log.first_index, log.last_index + 1))
            for index, term, data in entries:
                assert data == payload(uid, index, term), (uid, index, term)
            assert [e[1] for e in entries] == sorted(e[1] for e in entries)
            for pos, ack_uid, index, term in acks.written:
                if ack_uid != uid or index <= snap_index:
                    continue
                if any(p > pos and k <= index for p, k in acks.replaced.get(uid, [])):
                    continue
                assert log.term_at(index) == term, (uid, index, term)
                strict += 1
            log.close()
    finally:
        system.close()
    return strict


def crash_many_times(tmp_path: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    checked = 0
    for round_no in range(kills):
        ack_path = tmp_path / f"acks{round_no}.txt"
        run_writer_until_killed(data_dir, ack_path, rng.randrange(1 << 30), rng)
        checked += verify(data_dir, parse_acks(ack_path))
    assert checked > 0


def test_acknowledged_entries_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    crash_many_times(tmp_path, kills=4, seed=1)


@pytest.mark.slow
def test_acknowledged_entries_survive_many_sigkills(tmp_path: Path) -> None:
    crash_many_times(tmp_path, kills=40, seed=2)
