"""The storage of one Ra system: its WAL, its segment writer and its servers' stores.

Owns: the system directory layout (``<data_dir>/<node>/``, WAL files there or in
``wal_data_dir``, one ``<uid>/`` directory per server), recovery at start (replay every WAL file
into memtables, flush each to segments, delete it; Ra's ``ra_log_wal`` init, ra-internals §7.2),
and opening ``ServerLog``s. Must not: decide Raft or run an event loop; everything here is
synchronous (the asyncio driver calls ``open``/``close`` in a worker thread if it must not block).
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pyra_dist.log.config import SystemConfig
from pyra_dist.log.errors import ConfigError
from pyra_dist.log.fileops import FileOps, OsFileOps
from pyra_dist.log.format import WAL_KIND_TRUNCATE
from pyra_dist.log.memtable import Memtable
from pyra_dist.log.segment import SegmentSet
from pyra_dist.log.segment_writer import SegmentWriter, ServerStore, flush_rolled_over
from pyra_dist.log.wal import RolledOver, Wal, WalCallback, WalFileReport, list_wal_files, read_wal_file

if TYPE_CHECKING:
    from pyra_dist.log.server_log import ServerLog


@dataclass(slots=True)
class RecoveryReport:
    """What ``LogSystem.open`` recovered and how long it took (also logged)."""

    wal_files: int = 0
    records: int = 0
    torn_tails: list[str] = field(default_factory=list)
    seconds: float = 0.0


class LogSystem:
    """One system's storage engine. Open with ``LogSystem.open``; close with ``close``."""

    def __init__(self, config: SystemConfig, system_dir: Path, wal_dir: Path, ops: FileOps) -> None:
        self.config = config
        self.system_dir = system_dir
        self.wal_dir = wal_dir
        self.ops = ops
        self._lock = threading.Lock()
        self._stores: dict[str, ServerStore] = {}
        self.segment_writer = SegmentWriter(self._lookup, ops, config.logger)
        self._wal: Wal | None = None
        self.recovery = RecoveryReport()

    @classmethod
    def open(
        cls, config: SystemConfig, node: str, ops: FileOps | None = None, rng: random.Random | None = None
    ) -> LogSystem:
        """Recover the system's WAL files into segments and start the WAL and segment writer.

        Args:
            config: the system's storage config.
            node: the node name (Ra joins ``data_dir`` with it).
            ops: file operations (tests inject faults here).
            rng: picks the first WAL file's size limit in [max/2, max] as Ra does (default: a
                fresh ``random.Random()``).

        Returns:
            The running system; ``recovery`` describes what was recovered.

        Raises:
            LogCorrupt: a WAL or segment file is corrupt other than in its torn tail.
            OSError: the directories cannot be created or written.
        """
        system_dir = config.system_dir(node)
        wal_dir = config.wal_dir(node)
        system = cls(config, system_dir, wal_dir, ops or OsFileOps())
        system_dir.mkdir(parents=True, exist_ok=True)
        wal_dir.mkdir(parents=True, exist_ok=True)
        next_number = system._recover()
        system.segment_writer.start(config.name)
        size = config.wal_max_size_bytes
        first_size = (rng or random.Random()).randint(max(size // 2, 1), size)
        system._wal = Wal.open(
            config, wal_dir, next_number, system.segment_writer.enqueue, system.ops, first_size
        )
        return system

    def _recover(self) -> int:
        log = self.config.logger
        started = time.monotonic()
        files = list_wal_files(self.wal_dir)
        for leftover in self.wal_dir.glob("*.wal.tmp"):
            leftover.unlink()
        rep = self.recovery
        for path in files:
            report = WalFileReport(path, 0)
            ranges: dict[str, tuple[int, int]] = {}
            truncations: dict[str, int] = {}
            resets: dict[str, int] = {}
            for rec in read_wal_file(path, report):
                if rec.uid not in self._stores and not (self.system_dir / rec.uid).is_dir():
                    # A server's directory is created before its first write and removed by
                    # delete_server: records of a deleted server are dropped, not resurrected.
                    continue
                store = self.store(rec.uid)
                rep.records += 1
                if rec.kind == WAL_KIND_TRUNCATE:
                    store.log_end = min(store.log_end, rec.index)
                    store.memtable.truncate_from(rec.index + 1)
                    store.segments.truncate_from(rec.index + 1)
                    point = truncations.get(rec.uid)
                    truncations[rec.uid] = rec.index if point is None else min(point, rec.index)
                    continue
                if rec.truncate:
                    # Ra's truncate flag: the writer's table restarts here (after a snapshot).
                    store.memtable.clear()
                    resets[rec.uid] = max(resets.get(rec.uid, 0), rec.index)
                store.log_end = rec.index
                store.memtable.insert(rec.index, rec.term, rec.payload)
                lo_hi = ranges.get(rec.uid)
                ranges[rec.uid] = (
                    (rec.index, rec.index)
                    if lo_hi is None
                    else (min(lo_hi[0], rec.index), max(lo_hi[1], rec.index))
                )
            if report.torn_tail is not None:
                rep.torn_tails.append(f"{path.name}: {report.torn_tail}")
                log.warning("wal %s: %s: dropped torn tail: %s", self.config.name, path, report.torn_tail)
            # Flush this file before reading the next, exactly as a rollover would.
            flush_rolled_over(RolledOver(path, ranges, truncations, resets), self._lookup, self.ops, log)
            rep.wal_files += 1
        rep.seconds = time.monotonic() - started
        log.info(
            "wal %s: recovered %d records from %d WAL files in %.3f s",
            self.config.name,
            rep.records,
            rep.wal_files,
            rep.seconds,
        )
        return int(files[-1].stem) + 1 if files else 1

    def _lookup(self, uid: str) -> ServerStore | None:
        with self._lock:
            return self._stores.get(uid)

    def store(self, uid: str) -> ServerStore:
        """The store of ``uid``, opening its segments (creating its directory) on first use.

        Raises:
            ConfigError: ``uid`` is not a safe directory name.
            LogCorrupt: a segment file has a bad header.
        """
        if not uid or "/" in uid or uid in (".", "..") or len(uid.encode()) > 255:
            raise ConfigError(f"uid must be a non-empty file-name-safe string, got {uid!r}")
        with self._lock:
            store = self._stores.get(uid)
            if store is None:
                directory = self.system_dir / uid
                directory.mkdir(parents=True, exist_ok=True)
                cfg = self.config
                segments = SegmentSet.open(
                    directory, cfg.segment_max_entries, cfg.segment_compute_checksums, self.ops
                )
                seg_range = segments.range()
                log_end = seg_range[1] if seg_range is not None else 0
                store = self._stores[uid] = ServerStore(uid, directory, Memtable(), segments, log_end)
            return store

    @property
    def wal(self) -> Wal:
        """The running WAL."""
        assert self._wal is not None, "LogSystem.open starts the WAL"
        return self._wal

    def open_server_log(self, uid: str, on_event: WalCallback | None = None) -> ServerLog:
        """Open (recovering if it exists) the log of server ``uid``.

        Args:
            uid: the server's uid (its directory name).
            on_event: called on the WAL thread with this server's ``WalWritten``/``WalError``;
                an asyncio driver passes e.g. ``lambda ev: loop.call_soon_threadsafe(q.put_nowait, ev)``.

        Returns:
            The server's log.

        Raises:
            LogCorrupt: the server's meta, snapshot or segment files are corrupt.
        """
        from pyra_dist.log.server_log import ServerLog

        return ServerLog.open(self, uid, on_event)

    def delete_server(self, uid: str) -> None:
        """Forget a server and delete its directory (Ra ``force_delete_server``)."""
        self.wal.unregister(uid)
        with self._lock:
            store = self._stores.pop(uid, None)
        if store is not None:
            store.segments.close()
        shutil.rmtree(self.system_dir / uid, ignore_errors=True)

    def close(self) -> None:
        """Drain and stop the WAL and the segment writer, close every file."""
        if self._wal is not None:
            self._wal.close()
        self.segment_writer.close()
        with self._lock:
            for store in self._stores.values():
                store.segments.close()
