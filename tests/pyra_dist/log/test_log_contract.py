"""One storage contract, run against the simulator's in-memory log and the disk log (openraft Suite habit).

Every test drives a backend only through the core's ``LogView`` reads and the mutators that
mirror the core's log effects, and ``restart`` models a crash-free restart (the disk backend
really closes and recovers its files).
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from pyra_dist.core.log_view import InMemoryLogView, PickleSnapshotCodec
from pyra_dist.log import LogSystem, SystemConfig
from pyra_dist.log.core_view import CoreLogView, PickleEntryCodec
from pyra_dist.log.wal import WalEvent
from pyra_dist.types import Entry, Noop, ServerId, SnapshotMeta, UsrCommand


class Backend(Protocol):
    """The contract: LogView reads plus effect mutators and a restart."""

    def last_index_term(self) -> tuple[int, int]: ...
    def term_at(self, index: int) -> int | None: ...
    def fetch(self, from_index: int, to_index: int) -> list[Entry]: ...
    def snapshot_meta(self) -> SnapshotMeta | None: ...
    def snapshot_state(self) -> object: ...
    def append(self, entries: list[Entry]) -> None: ...
    def truncate(self, last_index: int) -> None: ...
    def write_snapshot(self, meta: SnapshotMeta, state: object) -> None: ...
    def install_snapshot(self, meta: SnapshotMeta, state: object) -> None: ...
    def restart(self) -> Backend: ...


class MemoryBackend(InMemoryLogView):
    def restart(self) -> MemoryBackend:
        copy = MemoryBackend()
        copy._snapshot = self._snapshot
        copy._offset = self._offset
        copy._entries = list(self._entries)
        return copy


class DiskBackend:
    """CoreLogView over a ServerLog; every mutation waits until the WAL made it durable."""

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir
        self.system = LogSystem.open(
            SystemConfig(data_dir=data_dir, wal_max_entries=5, segment_max_entries=4), "n1"
        )
        self.events: queue.SimpleQueue[WalEvent] = queue.SimpleQueue()
        log = self.system.open_server_log("uid1", self.events.put)
        self.view = CoreLogView(log, PickleEntryCodec(), PickleSnapshotCodec())

    def __getattr__(self, name: str) -> object:
        return getattr(self.view, name)

    def _settle(self) -> None:
        assert self.system.wal.wait_durable(30)
        while not self.events.empty():
            self.view.log.handle_wal_event(self.events.get())

    def append(self, entries: list[Entry]) -> None:
        self.view.append(entries)
        self._settle()

    def truncate(self, last_index: int) -> None:
        self.view.truncate(last_index)
        self._settle()

    def restart(self) -> DiskBackend:
        self.system.close()
        return DiskBackend(self._dir)


@pytest.fixture(params=["memory", "disk"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    disk = DiskBackend(tmp_path)
    yield disk
    disk.system.close()


def entries(first: int, last: int, term: int) -> list[Entry]:
    return [Entry(i, term, UsrCommand(data=("cmd", i, term))) for i in range(first, last + 1)]


N1 = ServerId("n1", "vm")


def test_empty_log_reports_zero_and_no_snapshot(backend: Backend) -> None:
    assert (backend.last_index_term(), backend.term_at(0), backend.term_at(1)) == ((0, 0), 0, None)
    assert (backend.fetch(1, 10), backend.snapshot_meta()) == ([], None)


def test_appended_entries_are_read_back_in_order(backend: Backend) -> None:
    backend.append([Entry(1, 1, Noop(machine_version=0))])
    backend.append(entries(2, 12, 1))
    assert backend.last_index_term() == (12, 1)
    assert backend.fetch(1, 12) == [Entry(1, 1, Noop(machine_version=0)), *entries(2, 12, 1)]
    assert backend.fetch(11, 20) == entries(11, 12, 1)


def test_append_below_last_replaces_the_suffix(backend: Backend) -> None:
    backend.append(entries(1, 10, 1))
    backend.append(entries(6, 7, 2))
    assert backend.last_index_term() == (7, 2)
    assert backend.fetch(1, 10) == entries(1, 5, 1) + entries(6, 7, 2)
    assert (backend.term_at(5), backend.term_at(6), backend.term_at(8)) == (1, 2, None)


def test_truncate_discards_entries_above(backend: Backend) -> None:
    backend.append(entries(1, 10, 1))
    backend.truncate(4)
    assert (backend.last_index_term(), backend.fetch(1, 10)) == ((4, 1), entries(1, 4, 1))
    backend.append(entries(5, 6, 3))
    assert backend.fetch(1, 10) == entries(1, 4, 1) + entries(5, 6, 3)


def test_write_snapshot_compacts_the_log_below_it(backend: Backend) -> None:
    backend.append(entries(1, 12, 2))
    meta = SnapshotMeta(index=8, term=2, cluster=(N1,), machine_version=1)
    backend.write_snapshot(meta, {"state": 8})
    assert (backend.snapshot_meta(), backend.snapshot_state()) == (meta, {"state": 8})
    assert (backend.term_at(8), backend.term_at(7), backend.last_index_term()) == (2, None, (12, 2))
    assert backend.fetch(1, 12) == entries(9, 12, 2)


def test_install_snapshot_replaces_the_whole_log(backend: Backend) -> None:
    backend.append(entries(1, 12, 2))
    meta = SnapshotMeta(index=20, term=5, cluster=(N1,), machine_version=0)
    backend.install_snapshot(meta, ["installed"])
    assert (backend.last_index_term(), backend.fetch(1, 30), backend.term_at(20)) == ((20, 5), [], 5)
    backend.append(entries(21, 22, 5))
    assert backend.fetch(1, 30) == entries(21, 22, 5)


def test_everything_survives_a_restart(backend: Backend) -> None:
    backend.append(entries(1, 12, 1))
    backend.append(entries(10, 14, 2))
    backend.truncate(13)
    meta = SnapshotMeta(index=5, term=1, cluster=(N1,), machine_version=0)
    backend.write_snapshot(meta, "five")
    again = backend.restart()
    assert (again.snapshot_meta(), again.snapshot_state(), again.last_index_term()) == (meta, "five", (13, 2))
    assert again.fetch(1, 20) == entries(6, 9, 1) + entries(10, 13, 2)


def test_installed_snapshot_survives_a_restart_without_the_old_log(backend: Backend) -> None:
    backend.append(entries(1, 30, 1))
    meta = SnapshotMeta(index=10, term=3, cluster=(N1,), machine_version=0)
    backend.install_snapshot(meta, "ten")
    again = backend.restart()
    assert (again.snapshot_meta(), again.last_index_term(), again.fetch(1, 40)) == (meta, (10, 3), [])


def test_disk_view_persists_term_vote_and_last_applied(tmp_path: Path) -> None:
    disk = DiskBackend(tmp_path)
    disk.view.persist_meta(7, N1)
    disk.view.persist_last_applied(3)
    again = disk.restart()
    try:
        assert again.view.recovered_meta() == (7, N1, 3)
    finally:
        again.system.close()
