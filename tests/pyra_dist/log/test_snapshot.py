"""Snapshots: atomic write, validation on recovery, chunked read and accept, log release."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from pyra_dist.log import LogCorrupt, SnapshotMetaRecord
from pyra_dist.log.snapshot import SnapshotStore, encode_snapshot, read_snapshot_file

META = SnapshotMetaRecord(index=18, term=1, cluster=(("s1", "ra1@vm"), ("s2", "py@vm")), machine_version=2)


def test_snapshot_file_layout_and_crc(tmp_path: Path) -> None:
    data = encode_snapshot(META, b"STATE")
    assert data[:5] == b"PYSN\x01"
    assert int.from_bytes(data[8:12], "big") == zlib.crc32(data[12:])
    path = tmp_path / "snapshot.dat"
    path.write_bytes(data)
    meta, offset, _crc = read_snapshot_file(path)
    assert (meta, data[offset:]) == (META, b"STATE")


def test_snapshot_is_written_into_ra_named_directory_and_recovered(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    path = store.write(META, b"state-18")
    assert path == tmp_path / "snapshots" / "0000000000000001_0000000000000012" / "snapshot.dat"
    again = SnapshotStore(tmp_path)
    assert (again.recover(), again.read_state()) == (META, b"state-18")


def test_newer_snapshot_replaces_older_and_partial_leftovers_are_removed(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.write(META, b"old")
    newer = SnapshotMetaRecord(30, 2, META.cluster, 2)
    store.write(newer, b"new")
    (tmp_path / "snapshots" / "0000000000000003_0000000000000040.partial").mkdir()
    again = SnapshotStore(tmp_path)
    assert again.recover() == newer
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["0000000000000002_000000000000001E"]


def test_corrupt_newest_snapshot_falls_back_to_a_valid_older_one(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.write(META, b"old")
    old_dir = tmp_path / "snapshots" / "0000000000000001_0000000000000012"
    kept = (old_dir / "snapshot.dat").read_bytes()
    newer = SnapshotMetaRecord(30, 2, META.cluster, 2)
    path = store.write(newer, b"new")
    old_dir.mkdir()
    (old_dir / "snapshot.dat").write_bytes(kept)
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    again = SnapshotStore(tmp_path)
    assert (again.recover(), again.read_state()) == (META, b"old")
    assert not path.parent.exists()  # the invalid newer snapshot was deleted
    with pytest.raises(LogCorrupt, match="snapshot checksum mismatch"):
        read_snapshot_file(_corrupt(tmp_path))


def _corrupt(tmp_path: Path) -> Path:
    p = tmp_path / "c.dat"
    data = bytearray(encode_snapshot(META, b"x"))
    data[-1] ^= 1
    p.write_bytes(bytes(data))
    return p


def test_chunked_read_then_accept_installs_an_identical_snapshot(tmp_path: Path) -> None:
    sender = SnapshotStore(tmp_path / "leader")
    state = bytes(range(256)) * 40
    sender.write(META, state)
    chunks = list(sender.read_chunks(1000))
    assert [len(c) for c in chunks] == [1000] * 10 + [240]
    receiver = SnapshotStore(tmp_path / "follower")
    acceptor = receiver.begin_accept(META)
    for chunk in chunks:
        acceptor.accept_chunk(chunk)
    acceptor.complete(expected_crc=zlib.crc32(state))
    again = SnapshotStore(tmp_path / "follower")
    assert (again.recover(), again.read_state()) == (META, state)


def test_accept_with_wrong_crc_installs_nothing(tmp_path: Path) -> None:
    receiver = SnapshotStore(tmp_path)
    acceptor = receiver.begin_accept(META)
    acceptor.accept_chunk(b"abc")
    with pytest.raises(ValueError, match="snapshot state crc"):
        acceptor.complete(expected_crc=1)
    assert SnapshotStore(tmp_path).recover() is None


def test_interrupted_transfer_leaves_only_a_partial_directory_removed_on_recovery(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.write(META, b"current")
    acceptor = store.begin_accept(SnapshotMetaRecord(40, 3, (), 0))
    acceptor.accept_chunk(b"half of it")
    # the process dies here: no complete()
    again = SnapshotStore(tmp_path)
    assert (again.recover(), again.read_state(), again.installed) == (META, b"current", False)
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["0000000000000001_0000000000000012"]


def test_accepted_snapshot_is_flagged_installed(tmp_path: Path) -> None:
    acceptor = SnapshotStore(tmp_path).begin_accept(META)
    acceptor.accept_chunk(b"state")
    path = acceptor.complete()
    assert path.read_bytes()[5] == 1
    again = SnapshotStore(tmp_path)
    assert (again.recover(), again.read_state(), again.installed) == (META, b"state", True)
