"""Durable server meta: term, vote and last applied (Ra ``ra_log_meta``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from log_support import FaultyFileOps

from pyra_dist.log import LogCorrupt
from pyra_dist.log import format as fmt
from pyra_dist.log.meta import MetaStore, ServerMeta


def test_vote_is_synced_before_store_sync_returns(tmp_path: Path) -> None:
    ops = FaultyFileOps()
    store = MetaStore(tmp_path, ops)
    store.recover()
    syncs = ops.fdatasyncs
    store.store_sync(5, ("s2", "ra2@vm"))
    assert ops.fdatasyncs == syncs + 1
    assert MetaStore(tmp_path).recover() == ServerMeta(5, ("s2", "ra2@vm"), 0)


def test_failed_sync_raises_so_the_vote_is_not_granted(tmp_path: Path) -> None:
    ops = FaultyFileOps()
    store = MetaStore(tmp_path, ops)
    store.recover()
    ops.fail_fdatasync = True
    with pytest.raises(OSError, match="Input/output error"):
        store.store_sync(1, ("s1", "n"))


def test_last_applied_is_written_without_sync_and_never_goes_backwards(tmp_path: Path) -> None:
    ops = FaultyFileOps()
    store = MetaStore(tmp_path, ops)
    store.recover()
    store.store_sync(3, None)
    syncs = ops.fdatasyncs
    store.store_last_applied(40)
    store.store_last_applied(12)
    assert ops.fdatasyncs == syncs
    assert MetaStore(tmp_path).recover() == ServerMeta(3, None, 40)


def test_torn_newest_slot_falls_back_to_the_last_synced_copy(tmp_path: Path) -> None:
    store = MetaStore(tmp_path)
    store.recover()
    store.store_sync(7, ("s1", "n"))  # slot 0
    store.store_last_applied(9)  # slot 1, not synced
    store.close()
    buf = bytearray((tmp_path / "meta").read_bytes())
    buf[fmt.META_SLOT_SIZE + 20] ^= 0xFF
    (tmp_path / "meta").write_bytes(bytes(buf))
    assert MetaStore(tmp_path).recover() == ServerMeta(7, ("s1", "n"), 0)


def test_meta_with_no_valid_slot_is_fatal(tmp_path: Path) -> None:
    (tmp_path / "meta").write_bytes(b"garbage" * 10)
    with pytest.raises(LogCorrupt, match="neither meta slot is valid"):
        MetaStore(tmp_path).recover()
