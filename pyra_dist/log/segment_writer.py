"""The segment writer: moves entries of a rolled-over WAL file into per-server segments.

Owns: ``ServerStore`` (a server's memtable plus its segment set, shared with its ``ServerLog``)
and ``SegmentWriter``, one background thread per system that, for each rolled-over WAL file in
order, appends every server's entries of that file to the server's segments, syncs them, drops
them from the memtable and only then deletes the WAL file (Ra ``ra_log_segment_writer``,
ra-internals §7.2). Must not: read WAL files (recovery replays them into memtables first) or
decide Raft.

If a flush fails (ENOSPC, EIO) the writer stops and keeps every remaining WAL file: the entries
stay readable from memory and a restart recovers them from the WAL.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyra_dist.log.fileops import FileOps
from pyra_dist.log.memtable import Memtable
from pyra_dist.log.segment import SegmentSet
from pyra_dist.log.wal import RolledOver


@dataclass(slots=True)
class ServerStore:
    """One server's storage shared between its ``ServerLog`` and the segment writer."""

    uid: str
    directory: Path
    memtable: Memtable
    segments: SegmentSet
    log_end: int = 0
    """The server's current last index, set *before* entries enter the memtable. A flushed
    truncation writes its segment tombstone just above it: every segment entry above the log's
    current end is stale, while entries below it may already hold newer data flushed early."""


def flush_rolled_over(
    job: RolledOver, lookup: Callable[[str], ServerStore | None], ops: FileOps, logger: logging.Logger
) -> int:
    """Flush every server's entries of one WAL file into segments, then delete the file.

    Args:
        job: the WAL file and the per-uid ranges and truncations it holds.
        lookup: finds a server's store by uid (None: the server was deleted; skip it).
        ops: file operations.
        logger: where to log.

    Returns:
        The number of entries written to segments.

    Raises:
        OSError: a segment write or sync failed; the WAL file is then kept.
    """
    written = 0
    for uid in dict.fromkeys([*job.resets, *job.truncations, *job.ranges]):
        store = lookup(uid)
        if store is None:
            continue
        lo_hi = job.ranges.get(uid)
        taken = store.memtable.take_range(*lo_hi) if lo_hi is not None else []
        entries = [(i, e[0], e[1]) for i, e in taken]
        truncate_above = None
        if uid in job.truncations:
            truncate_above = max(store.log_end, entries[-1][0] if entries else 0)
        try:
            reset = job.resets.get(uid)
            floor = reset - 1 if reset is not None else None
            store.segments.append(entries, truncate_above=truncate_above, floor=floor)
        except OSError:
            if lookup(uid) is None:
                continue  # the server was deleted while we flushed it
            raise
        store.memtable.drop_flushed(taken)
        written += len(entries)
    ops.unlink(job.path)
    ops.fsync_dir(job.path.parent)
    logger.debug("segment writer: flushed %d entries of %s and deleted it", written, job.path.name)
    return written


class SegmentWriter:
    """The system's segment writer thread (start with ``start``, stop with ``close``)."""

    def __init__(
        self, lookup: Callable[[str], ServerStore | None], ops: FileOps, logger: logging.Logger
    ) -> None:
        self._lookup = lookup
        self._ops = ops
        self._log = logger
        self._cond = threading.Condition()
        self._jobs: deque[RolledOver] = deque()
        self._busy = False
        self._closing = False
        self.failed: str | None = None
        self._thread: threading.Thread | None = None

    def start(self, name: str) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name=f"pyra-segment-writer-{name}", daemon=True)
        self._thread.start()

    def enqueue(self, job: RolledOver) -> None:
        """Schedule a rolled-over WAL file (called on the WAL thread)."""
        with self._cond:
            self._jobs.append(job)
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every scheduled file is flushed (False on timeout or after a failure)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: (not self._jobs and not self._busy) or self.failed is not None, timeout
            )
            return ok and self.failed is None

    def close(self) -> None:
        """Finish scheduled flushes and stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._busy = True
            try:
                flush_rolled_over(job, self._lookup, self._ops, self._log)
            except OSError as exc:
                with self._cond:
                    self.failed = f"flushing {job.path} failed: {exc}"
                    self._busy = False
                    self._cond.notify_all()
                self._log.error("segment writer: %s; keeping this and later WAL files", self.failed)
                return
            with self._cond:
                self._busy = False
                self._cond.notify_all()
