"""ServerLog: written confirmations across overwrites and truncations, snapshots and recovery rules."""

from __future__ import annotations

from log_support import SystemFactory

from pyra_dist.log import SnapshotMetaRecord
from pyra_dist.log.wal import WalWritten, read_wal_file


def test_late_written_event_after_truncation_without_term_change_does_not_confirm_new_entries(
    open_system: SystemFactory,
) -> None:
    system = open_system()
    log = system.open_server_log("a")  # no callback: the test feeds the events itself
    log.append([(i, 4, b"old") for i in range(1, 11)])
    log.truncate(5)
    log.append([(6, 4, b"new"), (7, 4, b"new")])
    # The WAL's notification for the ten old entries arrives only now.
    assert log.handle_wal_event(WalWritten("a", ((1, 10, 4),))) == (4, 5)
    assert log.last_written == 5
    assert log.handle_wal_event(WalWritten("a", ((6, 7, 4),))) == (4, 7)


def test_written_event_for_overwritten_entries_confirms_only_the_unchanged_prefix(
    open_system: SystemFactory,
) -> None:
    system = open_system()
    log = system.open_server_log("a")
    log.append([(i, 1, b"t1") for i in range(1, 9)])
    log.append([(5, 2, b"t2")])
    assert log.handle_wal_event(WalWritten("a", ((1, 8, 1),))) == (1, 4)
    assert log.handle_wal_event(WalWritten("a", ((5, 5, 2),))) == (2, 5)


def test_snapshot_releases_segments_and_log_below_it(open_system: SystemFactory) -> None:
    system = open_system(wal_max_entries=4, segment_max_entries=4)
    log = system.open_server_log("a")
    for i in range(1, 21):
        log.append([(i, 1, b"e%d" % i)])
        assert system.wal.wait_durable(30)
    assert system.segment_writer.wait_idle(30)
    log.handle_wal_event(WalWritten("a", ((1, 20, 1),)))
    log.write_snapshot(SnapshotMetaRecord(13, 1, (("a", "n1"),), 0), b"S")
    assert (log.first_index, log.term_at(13), log.term_at(12), log.fetch(1, 14)) == (
        14,
        1,
        None,
        [(14, 1, b"e14")],
    )
    assert [p.name for p in (system.system_dir / "a").glob("*.segment")] != []
    assert all(int(p.stem) >= 4 for p in (system.system_dir / "a").glob("*.segment"))


def test_installed_snapshot_with_diverging_log_does_not_resurrect_old_entries_after_restart(
    open_system: SystemFactory,
) -> None:
    system = open_system()
    log = system.open_server_log("a")
    log.append([(i, 1, b"old") for i in range(1, 31)])
    assert system.wal.wait_durable(30)
    log.install_snapshot_state(SnapshotMetaRecord(10, 3, (), 0), b"S")
    assert system.wal.wait_durable(30)
    system.close()
    again = open_system().open_server_log("a")
    assert (again.last_index_term(), again.fetch(1, 40)) == ((10, 3), [])


def test_first_write_after_snapshot_install_carries_ras_truncate_flag(open_system: SystemFactory) -> None:
    system = open_system()
    log = system.open_server_log("a")
    log.append([(1, 1, b"x"), (2, 1, b"y")])
    log.install_snapshot_state(SnapshotMetaRecord(10, 2, (), 0), b"S")
    log.append([(11, 2, b"z"), (12, 2, b"w")])
    assert system.wal.wait_durable(30)
    path = system.wal.current_file
    assert path is not None
    records = [(r.kind, r.index, r.truncate) for r in read_wal_file(path)]
    assert records == [(2, 1, False), (2, 2, False), (2, 11, True), (2, 12, False)]


def test_deleted_server_is_not_resurrected_by_wal_recovery(open_system: SystemFactory) -> None:
    system = open_system()
    log = system.open_server_log("gone")
    log.append([(1, 1, b"x")])
    assert system.wal.wait_durable(30)
    system.delete_server("gone")
    system.close()
    again = open_system()
    assert not (again.system_dir / "gone").exists()
    assert (again.recovery.wal_files, again.recovery.records) == (1, 0)
