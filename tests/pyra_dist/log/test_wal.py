"""The shared WAL: group commit, notifications, rollover, options, recovery and injected faults.

Test names follow Ra's ``ra_log_wal_SUITE`` where a Ra test exists.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from log_support import FaultyFileOps, FullSizeRandom, SystemFactory

from pyra_dist.log import LogCorrupt, LogSystem, SystemConfig, WalFailed, WalSyncMethod, WalWriteStrategy
from pyra_dist.log import format as fmt
from pyra_dist.log.wal import (
    PRE_ALLOCATE_CHUNK,
    WalError,
    WalEvent,
    WalFileReport,
    WalWritten,
    list_wal_files,
    read_wal_file,
)


class Events:
    """Collects WAL events delivered on the WAL thread."""

    def __init__(self) -> None:
        self.items: list[WalEvent] = []
        self._cond = threading.Condition()

    def __call__(self, ev: WalEvent) -> None:
        with self._cond:
            self.items.append(ev)
            self._cond.notify_all()

    def wait_for(self, n: int) -> list[WalEvent]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= n, 30)
            return list(self.items)


def payload(uid: str, index: int, term: int) -> bytes:
    return f"{uid}:{index}:{term}:".encode() * 2


def write_entries(system: LogSystem, uid: str, first: int, last: int, term: int = 1) -> None:
    for i in range(first, last + 1):
        system.wal.write(uid, i, term, payload(uid, i, term))


def gated_batch(system: LogSystem, ops: FaultyFileOps) -> threading.Event:
    """Make the WAL thread block inside the next fdatasync; returns the event that releases it."""
    gate = threading.Event()
    ops.in_sync.clear()
    ops.sync_gate = gate
    return gate


def test_one_write_and_one_fdatasync_per_batch_of_many_servers(
    open_system: SystemFactory, ops: FaultyFileOps
) -> None:
    system = open_system(ops)
    events = Events()
    for uid in ("a", "b", "c"):
        system.wal.register(uid, events)
    gate = gated_batch(system, ops)
    write_entries(system, "a", 1, 1)
    assert ops.in_sync.wait(30)
    writes0, syncs0 = ops.writes, ops.fdatasyncs
    for i in range(2, 102):
        for uid in ("a", "b", "c"):
            system.wal.write(uid, i - 1 if uid != "a" else i, 1, b"x" * 16)
    gate.set()
    assert system.wal.wait_durable(30)
    # The blocked first batch's fdatasync completes, then 300 entries cost one write + one sync.
    assert (ops.writes - writes0, ops.fdatasyncs - syncs0) == (1, 2)
    assert events.wait_for(4) == [
        WalWritten("a", ((1, 1, 1),)),
        WalWritten("a", ((2, 101, 1),)),
        WalWritten("b", ((1, 100, 1),)),
        WalWritten("c", ((1, 100, 1),)),
    ]
    assert system.wal.metrics.batches == 2


def test_consecutive_terms_in_batch_should_result_in_two_written_events(
    open_system: SystemFactory, ops: FaultyFileOps
) -> None:
    system = open_system(ops)
    events = Events()
    system.wal.register("a", events)
    gate = gated_batch(system, ops)
    write_entries(system, "a", 1, 1)
    assert ops.in_sync.wait(30)
    write_entries(system, "a", 2, 5, term=1)
    write_entries(system, "a", 6, 8, term=2)
    write_entries(system, "a", 7, 7, term=3)  # an overwrite inside the batch
    gate.set()
    assert events.wait_for(2)[1] == WalWritten("a", ((2, 5, 1), (6, 8, 2), (7, 7, 3)))


def test_rollover_at_wal_max_entries_moves_entries_to_segments_and_deletes_old_wal(
    open_system: SystemFactory, tmp_path: Path
) -> None:
    system = open_system(wal_max_entries=10, segment_max_entries=8)
    log = system.open_server_log("a")
    for i in range(1, 26):
        log.append([(i, 1, payload("a", i, 1))])
        system.wal.wait_durable(30)
    assert system.segment_writer.wait_idle(30)
    assert [p.name for p in list_wal_files(tmp_path / "n1")] == ["00000003.wal"]
    assert [p.name for p in (tmp_path / "n1" / "a").glob("*.segment")] != []
    assert len(system._stores["a"].memtable) == 5
    assert log.fetch(1, 25) == [(i, 1, payload("a", i, 1)) for i in range(1, 26)]


def test_rollover_at_wal_max_size_bytes(open_system: SystemFactory, tmp_path: Path) -> None:
    system = open_system(wal_max_size_bytes=1000)
    log = system.open_server_log("a")
    for i in range(1, 41):
        log.append([(i, 1, b"p" * 100)])
        system.wal.wait_durable(30)
    assert system.segment_writer.wait_idle(30)
    assert system.wal.metrics.rollovers == 5
    assert log.fetch(1, 40) == [(i, 1, b"p" * 100) for i in range(1, 41)]


def test_first_wal_file_after_start_rolls_over_at_a_random_size_from_half_the_maximum(
    open_system: SystemFactory,
) -> None:
    system = open_system(rng=FullSizeRandom(low=True), wal_max_size_bytes=1000)
    log = system.open_server_log("a")
    for i in range(1, 41):
        log.append([(i, 1, b"p" * 100)])
        assert system.wal.wait_durable(30)
    # first file: 500 bytes (4 entries), then 1000 bytes (8 entries) per file
    assert system.wal.metrics.rollovers == 5


@pytest.mark.parametrize(
    ("method", "expected"),
    [(WalSyncMethod.DATASYNC, (1, 0)), (WalSyncMethod.SYNC, (0, 1)), (WalSyncMethod.NONE, (0, 0))],
)
def test_wal_sync_method_selects_the_sync_call(
    open_system: SystemFactory, ops: FaultyFileOps, method: WalSyncMethod, expected: tuple[int, int]
) -> None:
    system = open_system(ops, wal_sync_method=method)
    datasyncs0, fsyncs0 = ops.fdatasyncs, ops.fsyncs
    write_entries(system, "a", 1, 1)
    assert system.wal.wait_durable(30)
    assert (ops.fdatasyncs - datasyncs0, ops.fsyncs - fsyncs0) == expected


def test_o_sync_strategy_opens_the_file_with_o_dsync_and_makes_no_sync_calls(
    open_system: SystemFactory, ops: FaultyFileOps
) -> None:
    system = open_system(ops, wal_write_strategy=WalWriteStrategy.O_SYNC)
    assert ops.open_flags[-1] & os.O_DSYNC == os.O_DSYNC
    datasyncs0, fsyncs0 = ops.fdatasyncs, ops.fsyncs
    write_entries(system, "a", 1, 3)
    assert system.wal.wait_durable(30)
    assert (ops.fdatasyncs - datasyncs0, ops.fsyncs - fsyncs0) == (0, 0)


def test_checksums_off_writes_zero_data_crc(open_system: SystemFactory) -> None:
    system = open_system(wal_compute_checksums=False)
    write_entries(system, "a", 1, 1)
    assert system.wal.wait_durable(30)
    path = system.wal.current_file
    assert path is not None
    buf = path.read_bytes()
    assert buf[:8] == b"PYWA\x01\x00\x00\x00"
    entry_offset = 8 + fmt.WAL_RECORD.size + 1  # after the DECLARE record of uid "a"
    assert fmt.WAL_RECORD.unpack_from(buf, entry_offset)[1] == 0


def test_pre_allocated_wal_recovers_and_ignores_its_zero_tail(
    open_system: SystemFactory, tmp_path: Path
) -> None:
    system = open_system(wal_pre_allocate=True, wal_max_size_bytes=64 * 1024)
    path = system.wal.current_file
    assert path is not None and path.stat().st_size == 64 * 1024
    log = system.open_server_log("a")
    log.append([(1, 1, b"one"), (2, 1, b"two")])
    assert system.wal.wait_durable(30)
    system.close()
    again = open_system()
    assert again.recovery.torn_tails == []
    assert again.open_server_log("a").fetch(1, 2) == [(1, 1, b"one"), (2, 1, b"two")]


class FallocateRecorder(FaultyFileOps):
    """Real file operations that also record each ``fallocate(offset, length)``."""

    def __init__(self) -> None:
        super().__init__()
        self.fallocates: list[tuple[int, int]] = []

    def fallocate(self, fd: int, offset: int, length: int) -> None:
        self.fallocates.append((offset, length))
        super().fallocate(fd, offset, length)


def test_pre_allocated_wal_grows_one_chunk_at_a_time_and_recovers_across_chunks(
    open_system: SystemFactory,
) -> None:
    ops = FallocateRecorder()
    system = open_system(ops, wal_pre_allocate=True)
    chunk = PRE_ALLOCATE_CHUNK
    assert ops.fallocates == [(0, chunk)]
    log = system.open_server_log("a")
    big = [(i, 1, bytes([i]) * 65536) for i in range(1, 71)]  # 70 x 64 KiB: crosses the first chunk
    for entry in big:
        log.append([entry])
        assert system.wal.wait_durable(30)
    assert ops.fallocates == [(0, chunk), (chunk, chunk)]
    path = system.wal.current_file
    assert path is not None and path.stat().st_size == 2 * chunk
    system.close()
    again = open_system()
    assert again.recovery.torn_tails == []
    assert again.open_server_log("a").fetch(1, 70) == big


@pytest.mark.skipif(not hasattr(os, "RWF_DSYNC"), reason="needs pwritev2 flags (Linux)")
def test_with_real_file_operations_a_batch_is_written_and_synced_by_one_pwritev_with_rwf_dsync(
    open_system: SystemFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    real = os.pwritev

    def short_pwritev(fd: int, buffers: list[bytes], offset: int, flags: int = 0) -> int:
        # Report a short write of 10 bytes: the WAL must write the rest and sync it itself.
        calls.append((offset, flags))
        return real(fd, [bytes(buffers[0])[:10]], offset, flags)

    monkeypatch.setattr(os, "pwritev", short_pwritev)
    system = open_system()
    log = system.open_server_log("a")
    for i in (1, 2):
        log.append([(i, 1, payload("a", i, 1))])
        assert system.wal.wait_durable(30)
    assert [flags for _, flags in calls] == [os.RWF_DSYNC, os.RWF_DSYNC]
    assert calls[0][0] == fmt.WAL_HEADER.size
    assert (system.wal.metrics.batches, system.wal.metrics.syncs) == (2, 2)
    system.close()
    assert open_system().open_server_log("a").fetch(1, 2) == [(i, 1, payload("a", i, 1)) for i in (1, 2)]


def _three_entry_wal(tmp_path: Path) -> tuple[Path, list[int]]:
    """A closed WAL file holding entries 1..3 of uid "a"; returns it and the record offsets."""
    system = LogSystem.open(SystemConfig(data_dir=tmp_path / "src"), "n1")
    log = system.open_server_log("a")
    for i in (1, 2, 3):
        log.append([(i, 1, payload("a", i, 1))])
        assert system.wal.wait_durable(30)
    path = system.wal.current_file
    system.close()
    assert path is not None
    return path, [r.offset for r in read_wal_file(path)]


def _recover_from(tmp_path: Path, data: bytes, name: str) -> LogSystem:
    node_dir = tmp_path / name / "n1"
    (node_dir / "a").mkdir(parents=True)  # a server's directory exists from its first write
    (node_dir / "00000001.wal").write_bytes(data)
    return LogSystem.open(SystemConfig(data_dir=tmp_path / name), "n1")


def _entries(system: LogSystem) -> list[tuple[int, int, bytes]]:
    log = system.open_server_log("a")
    return log.fetch(1, 10)


def test_recover_with_partial_last_entry_at_every_byte(tmp_path: Path) -> None:
    path, offsets = _three_entry_wal(tmp_path)
    data = path.read_bytes()
    expected = [(i, 1, payload("a", i, 1)) for i in (1, 2)]
    for cut in range(offsets[2], len(data)):
        system = _recover_from(tmp_path, data[:cut], f"cut{cut}")
        try:
            assert _entries(system) == expected, cut
            assert len(system.recovery.torn_tails) == (1 if cut > offsets[2] else 0)
        finally:
            system.close()


def test_bit_flip_in_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    path, offsets = _three_entry_wal(tmp_path)
    data = path.read_bytes()
    length_field = range(offsets[2] + 8, offsets[2] + 12)
    for pos in range(offsets[2], len(data)):
        if pos in length_field:
            continue
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        system = _recover_from(tmp_path, bytes(flipped), f"flip{pos}")
        try:
            assert _entries(system) == [(i, 1, payload("a", i, 1)) for i in (1, 2)], pos
        finally:
            system.close()


def test_checksum_failure_in_middle_of_file_should_fail_naming_file_and_offset(tmp_path: Path) -> None:
    path, offsets = _three_entry_wal(tmp_path)
    data = path.read_bytes()
    for pos in range(offsets[1], offsets[2]):
        flipped = bytearray(data)
        flipped[pos] ^= 0x01
        target = tmp_path / f"mid{pos}.wal"
        target.write_bytes(bytes(flipped))
        with pytest.raises(LogCorrupt) as info:
            list(read_wal_file(target))
        assert (info.value.path, info.value.offset) == (target, offsets[1]), pos
    node_dir = tmp_path / "sys" / "n1"
    node_dir.mkdir(parents=True)
    shutil.copy(tmp_path / f"mid{offsets[1] + 40}.wal", node_dir / "00000001.wal")
    with pytest.raises(LogCorrupt, match=rf"00000001.wal: corrupt at byte offset {offsets[1]}"):
        LogSystem.open(SystemConfig(data_dir=tmp_path / "sys"), "n1")


def test_wal_dump_report_describes_a_torn_tail(tmp_path: Path) -> None:
    path, offsets = _three_entry_wal(tmp_path)
    cut = tmp_path / "cut.wal"
    cut.write_bytes(path.read_bytes()[: offsets[2] + 5])
    report = WalFileReport(cut, 0)
    assert [r.index for r in read_wal_file(cut, report)] == [1, 2]
    assert (report.valid_end, report.torn_tail) == (
        offsets[2],
        f"partial record header at offset {offsets[2]}",
    )


def test_short_writes_are_completed(open_system: SystemFactory, ops: FaultyFileOps) -> None:
    ops.short_writes = True
    system = open_system(ops, wal_max_entries=7, segment_max_entries=4)
    log = system.open_server_log("a")
    for i in range(1, 31):
        log.append([(i, 2, payload("a", i, 2))])
        assert system.wal.wait_durable(30)
    assert system.segment_writer.wait_idle(30)
    system.close()
    again = open_system()
    assert again.open_server_log("a").fetch(1, 30) == [(i, 2, payload("a", i, 2)) for i in range(1, 31)]


def test_enospc_fails_the_wal_and_loses_nothing_acknowledged(
    open_system: SystemFactory, ops: FaultyFileOps
) -> None:
    system = open_system(ops)
    events = Events()
    log = system.open_server_log("a", events)
    log.append([(i, 1, payload("a", i, 1)) for i in range(1, 11)])
    first = events.wait_for(1)
    assert log.handle_wal_event(first[0]) == (1, 10)
    wal_fd_open = True
    ops.enospc_on_write = lambda fd: wal_fd_open
    log.append([(11, 1, payload("a", 11, 1))])
    failed = events.wait_for(2)[1]
    assert isinstance(failed, WalError) and "No space left on device" in failed.error
    with pytest.raises(WalFailed):
        log.handle_wal_event(failed)
    with pytest.raises(WalFailed):
        system.wal.write("a", 12, 1, b"late")
    system.close()
    again = open_system()
    assert again.open_server_log("a").fetch(1, 20) == [(i, 1, payload("a", i, 1)) for i in range(1, 11)]


def test_fdatasync_failure_is_never_acknowledged(open_system: SystemFactory, ops: FaultyFileOps) -> None:
    system = open_system(ops)
    events = Events()
    log = system.open_server_log("a", events)
    log.append([(1, 1, b"acked")])
    assert log.handle_wal_event(events.wait_for(1)[0]) == (1, 1)
    ops.fail_fdatasync = True
    log.append([(2, 1, b"never acked")])
    assert events.wait_for(2)[1] == WalError(
        "a", f"wal write to {system.wal.current_file} failed: [Errno 5] Input/output error (injected)"
    )
    assert log.last_written == 1
    system.close()
    again = open_system()
    assert again.open_server_log("a").fetch(1, 1) == [(1, 1, b"acked")]


def test_enospc_in_the_segment_writer_keeps_the_wal_file_and_loses_nothing(
    open_system: SystemFactory, ops: FaultyFileOps, tmp_path: Path
) -> None:
    system = open_system(ops, wal_max_entries=5)
    log = system.open_server_log("a")
    ops.enospc_on_pwrite = True
    for i in range(1, 8):
        log.append([(i, 1, payload("a", i, 1))])
        assert system.wal.wait_durable(30)
    assert not system.segment_writer.wait_idle(30)
    assert system.segment_writer.failed is not None and "No space left" in system.segment_writer.failed
    assert [p.name for p in list_wal_files(tmp_path / "n1")] == ["00000001.wal", "00000002.wal"]
    assert log.fetch(1, 7) == [(i, 1, payload("a", i, 1)) for i in range(1, 8)]
    system.close()
    again = open_system()
    assert again.open_server_log("a").fetch(1, 7) == [(i, 1, payload("a", i, 1)) for i in range(1, 8)]
