"""Hypothesis: random appends, overwrites, truncations, snapshots and restarts against a naive model.

Tiny WAL files (rollover every few entries) and segments (a few slots) make every operation race
with segment flushes, so the overwrite/truncation rules of memtables, segments and recovery are
all exercised. The model is a plain list.
"""

from __future__ import annotations

import queue
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyra_dist.log import LogSystem, ServerLog, SnapshotMetaRecord, SystemConfig, WalSyncMethod
from pyra_dist.log.wal import WalEvent


@dataclass
class Model:
    """The expected log: entries above the snapshot, and the snapshot (index, term)."""

    entries: list[tuple[int, int, bytes]] = field(default_factory=list)
    snapshot: tuple[int, int] = (0, 0)

    @property
    def last(self) -> tuple[int, int]:
        return (self.entries[-1][0], self.entries[-1][1]) if self.entries else self.snapshot


ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 6)),
        st.tuples(st.just("overwrite"), st.integers(0, 8)),
        st.tuples(st.just("truncate"), st.integers(0, 8)),
        st.tuples(st.just("snapshot"), st.integers(0, 8)),
        st.tuples(st.just("install"), st.integers(-8, 10)),
        st.tuples(st.just("restart"), st.just(0)),
    ),
    max_size=25,
)


class Harness:
    def __init__(self, directory: Path) -> None:
        self.cfg = SystemConfig(
            data_dir=directory, wal_max_entries=3, segment_max_entries=4, wal_sync_method=WalSyncMethod.NONE
        )
        self.open()

    def open(self) -> None:
        self.system = LogSystem.open(self.cfg, "n1")
        self.events: queue.SimpleQueue[WalEvent] = queue.SimpleQueue()
        self.log: ServerLog = self.system.open_server_log("u", self.events.put)

    def settle(self) -> None:
        assert self.system.wal.wait_durable(30)
        while not self.events.empty():
            self.log.handle_wal_event(self.events.get())

    def restart(self) -> None:
        self.system.close()
        self.open()


def payload(index: int, term: int, salt: int) -> bytes:
    return f"{index}/{term}/{salt}".encode()


@settings(max_examples=40, deadline=None)
@given(ops)
def test_disk_log_matches_a_naive_model_under_random_operations(operations: list[tuple[str, int]]) -> None:
    check_against_model(operations)


def test_snapshot_install_below_an_overwritten_suffix_survives_a_restart() -> None:
    # The lead's falsifying example: the install's WAL truncation rolls the WAL over, and its
    # flush must place the segment tombstone at the snapshot, not above the replaced entries.
    check_against_model(
        [
            ("append", 1),
            ("append", 1),
            ("append", 1),
            ("append", 1),
            ("append", 2),
            ("overwrite", 0),
            ("install", -4),
            ("restart", 0),
        ]
    )


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(ops)
def test_disk_log_matches_a_naive_model_under_many_random_operations(
    operations: list[tuple[str, int]],
) -> None:
    check_against_model(operations)


def check_against_model(operations: list[tuple[str, int]]) -> None:
    """Run ``operations`` on a fresh disk log and the model, comparing after every step."""
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp))
        model = Model()
        term = 1
        try:
            for salt, (op, n) in enumerate(operations):
                last_index, _ = model.last
                first = model.snapshot[0] + 1
                if op == "append":
                    new = [
                        (i, term, payload(i, term, salt)) for i in range(last_index + 1, last_index + 1 + n)
                    ]
                    h.log.append(new)
                    model.entries += new
                elif op == "overwrite" and model.entries:
                    at = max(first, last_index - n)
                    term += 1
                    new = [(i, term, payload(i, term, salt)) for i in range(at, at + 2)]
                    h.log.append(new)
                    model.entries = [e for e in model.entries if e[0] < at] + new
                elif op == "truncate" and model.entries:
                    to = max(first - 1, last_index - n)
                    h.log.truncate(to)
                    model.entries = [e for e in model.entries if e[0] <= to]
                elif op == "snapshot":
                    h.settle()
                    at = h.log.last_written - n
                    if at >= first:
                        snap_term = h.log.term_at(at)
                        assert snap_term is not None
                        h.log.write_snapshot(SnapshotMetaRecord(at, snap_term, (), 0), b"S")
                        model.snapshot = (at, snap_term)
                        model.entries = [e for e in model.entries if e[0] > at]
                elif op == "install":
                    at = max(first, last_index + n)
                    term += 1
                    h.log.install_snapshot_state(SnapshotMetaRecord(at, term, (), 0), b"I")
                    model.snapshot = (at, term)
                    model.entries = []
                elif op == "restart":
                    h.settle()
                    h.restart()
                h.settle()
                assert h.log.last_index_term() == model.last
                assert h.log.fetch(1, model.last[0] + 5) == model.entries
                assert h.log.last_written == model.last[0]
            h.restart()
            assert (h.log.last_index_term(), h.log.fetch(1, model.last[0] + 5)) == (model.last, model.entries)
        finally:
            h.system.close()
