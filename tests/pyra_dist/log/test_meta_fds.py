"""The meta file is opened per write: servers hold no descriptors between writes (O(1) fds per system).

A node hosting 1000 three-member clusters used to keep 3000+ meta descriptors open. These tests count
the process's real descriptors (``/proc/self/fd``) that point at meta files.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from log_support import FaultyFileOps

from pyra_dist import ra
from pyra_dist.log.meta import META_FILE, MetaStore, ServerMeta
from pyra_dist.machines import KvMachine
from pyra_dist.server import LocalNetwork, System
from pyra_dist.types import ServerId


def open_meta_fds(under: Path) -> list[str]:
    """The targets of this process's open descriptors that are meta files below ``under``."""
    targets: list[str] = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed between listdir and readlink (e.g. the listdir's own fd)
            continue
        if target.startswith(str(under)) and os.path.basename(target) == META_FILE:
            targets.append(target)
    return targets


class CountingFileOps(FaultyFileOps):
    """Counts opens, closes and directory syncs on top of the fault-injecting ops."""

    def __init__(self) -> None:
        super().__init__()
        self.opens = 0
        self.closes = 0
        self.dir_syncs: list[Path] = []

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        self.opens += 1
        return super().open(path, flags, mode)

    def close(self, fd: int) -> None:
        self.closes += 1
        super().close(fd)

    def fsync_dir(self, path: Path) -> None:
        self.dir_syncs.append(path)
        super().fsync_dir(path)


def test_meta_store_keeps_no_descriptor_open_between_writes(tmp_path: Path) -> None:
    ops = CountingFileOps()
    store = MetaStore(tmp_path, ops)
    store.recover()
    store.store_sync(2, ("s1", "n1@vm"))
    store.store_last_applied(7)
    store.store_sync(3, None)
    assert (open_meta_fds(tmp_path), ops.opens, ops.closes) == ([], 3, 3)
    assert MetaStore(tmp_path).recover() == ServerMeta(3, None, 7)


def test_recovering_an_existing_meta_file_syncs_it_and_closes_it(tmp_path: Path) -> None:
    MetaStore(tmp_path).store_sync(4, ("s2", "n2@vm"))
    ops = CountingFileOps()
    assert MetaStore(tmp_path, ops).recover() == ServerMeta(4, ("s2", "n2@vm"), 0)
    assert (open_meta_fds(tmp_path), ops.opens, ops.closes, ops.fdatasyncs) == ([], 1, 1, 1)


def test_a_new_meta_file_is_not_created_until_the_first_write(tmp_path: Path) -> None:
    store = MetaStore(tmp_path)
    assert store.recover() == ServerMeta()
    assert not store.path.exists()
    store.store_last_applied(1)
    assert MetaStore(tmp_path).recover() == ServerMeta(0, None, 1)


def test_only_the_first_synced_write_syncs_the_directory_entry(tmp_path: Path) -> None:
    ops = CountingFileOps()
    store = MetaStore(tmp_path, ops)
    store.recover()
    store.store_last_applied(3)  # not synced: the name need not be durable yet
    assert ops.dir_syncs == []
    store.store_sync(1, ("s1", "n1@vm"))
    store.store_sync(2, ("s1", "n1@vm"))
    assert (ops.dir_syncs, ops.fdatasyncs) == ([tmp_path], 2)


def test_a_failed_write_or_sync_leaves_no_descriptor_behind(tmp_path: Path) -> None:
    ops = CountingFileOps()
    store = MetaStore(tmp_path, ops)
    store.recover()
    ops.enospc_on_pwrite = True
    with pytest.raises(OSError, match="No space left"):
        store.store_sync(1, ("s1", "n1@vm"))
    ops.enospc_on_pwrite = False
    ops.fail_fdatasync = True
    with pytest.raises(OSError, match="Input/output error"):
        store.store_sync(1, ("s1", "n1@vm"))
    assert (open_meta_fds(tmp_path), ops.opens, ops.closes) == ([], 2, 2)


async def test_servers_of_running_systems_hold_no_meta_descriptors(tmp_path: Path) -> None:
    nodes = ("m1@localhost", "m2@localhost", "m3@localhost")
    network = LocalNetwork()
    systems = [await System.start("default", tmp_path, node, network=network) for node in nodes]
    for system in systems:
        await system.__aenter__()
    try:
        async with asyncio.timeout(60):
            for n in range(20):
                ids = [ServerId(f"c{n}", node) for node in nodes]
                await ra.start_cluster(systems[0], f"c{n}", KvMachine(), ids, timeout=30)
                await ra.process_command(systems[0], ids[0], ("put", "k", n), timeout=30)
            # Every one of the 60 servers voted (a synced meta write), and no meta fd stayed open.
            assert open_meta_fds(tmp_path) == []
            for system in systems:
                for process in system.processes():
                    on_disk = MetaStore(system.dir / process.uid).recover()
                    assert on_disk.current_term == process.core.current_term >= 1
            assert sum(len(system.processes()) for system in systems) == 60
    finally:
        for system in reversed(systems):
            await system.__aexit__(None, None, None)
