"""The write-ahead log shared by every server of one system: group commit on one writer thread.

Owns: WAL files (``NNNNNNNN.wal`` in the system's WAL directory), the writer thread that turns
queued appends into one ``write`` plus one sync per batch, the per-server written notifications,
rollover, and reading a WAL file back (``read_wal_file``, used by recovery and ``wal-dump``).
Must not: decide Raft, read memtables or segments (rollover hands the file to the segment
writer through a callback), or call back into a server's state from the writer thread (the
notification callbacks are the caller's, and must be thread-safe).

Theory of operation (Ra ``ra_log_wal``, ra-internals §7.2):

* ``Wal.write(uid, index, term, payload)`` appends to an in-memory queue and returns at once.
* The writer thread drains up to ``wal_max_batch_size`` queued writes, encodes them into one
  buffer, does one ``write(2)`` and one ``fdatasync``/``fsync`` (per ``wal_sync_method`` and
  ``wal_write_strategy``), then calls each writer's callback once with ``WalWritten`` carrying
  the ``(from, to, term)`` runs of that writer now durable. One sync covers every server's
  writes: that is the group commit.
* A writer's first record in a file is preceded by a DECLARE record binding a small per-file
  writer number to its uid (Ra's per-file writer cache).
* Overwrites (a follower rewriting a suffix) are ordinary records with an index at or below the
  writer's last one; readers apply "later records win, and truncate everything after them".
* When the file reaches ``wal_max_size_bytes`` or ``wal_max_entries`` the writer rolls over to
  the next file and hands the old one, with each writer's index range in it, to ``on_rollover``
  (the segment writer), which deletes it once every range is safe in segments.
* Any I/O error fails the WAL permanently: pending and later writes get ``WalError``; nothing
  that was not synced is ever reported written.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from pyra_dist.log import format as fmt
from pyra_dist.log.config import SystemConfig, WalSyncMethod, WalWriteStrategy
from pyra_dist.log.errors import LogCorrupt, WalFailed
from pyra_dist.log.fileops import FileOps, OsFileOps, pwrite_all, write_all


@dataclass(frozen=True, slots=True)
class WalWritten:
    """Entries of one writer are durable: Ra's ``{ra_log_event, {written, {From, To, Term}}}``.

    ``runs`` are ``(from_index, to_index, term)`` in write order; a batch holding a term change
    or an overwrite yields several runs (Ra test
    ``consecutive_terms_in_batch_should_result_in_two_written_events``).
    """

    uid: str
    runs: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True)
class WalError:
    """The WAL failed; writes of ``uid`` not yet reported written never will be."""

    uid: str
    error: str


WalEvent: TypeAlias = WalWritten | WalError
WalCallback: TypeAlias = Callable[[WalEvent], None]


@dataclass(frozen=True, slots=True)
class RolledOver:
    """A closed WAL file, per uid the ``(lowest, highest)`` entry index written into it, and per
    uid the lowest ``TruncateLog`` point (entries above it are gone) recorded in it."""

    path: Path
    ranges: dict[str, tuple[int, int]]
    truncations: dict[str, int] = field(default_factory=dict)
    resets: dict[str, int] = field(default_factory=dict)
    """Per uid, the highest index written with Ra's truncate flag: everything below it is gone."""


@dataclass(slots=True)
class WalMetrics:
    """Counters of one WAL (Ra exposes the same through seshat with ``metrics_labels``)."""

    labels: dict[str, str]
    batches: int = 0
    entries: int = 0
    bytes_written: int = 0
    syncs: int = 0
    rollovers: int = 0


def wal_file_name(number: int) -> str:
    """``00000001.wal``: Ra's 8-digit counter names (ra-internals §7.1)."""
    return f"{number:08d}.wal"


def list_wal_files(wal_dir: Path) -> list[Path]:
    """The ``*.wal`` files of ``wal_dir`` in write order (leftover ``.tmp`` files are ignored)."""
    return sorted(p for p in wal_dir.glob("*.wal") if p.stem.isdigit())


_OP_ENTRY = 0
_OP_ENTRY_TRUNCATE = 1
_OP_TRUNCATE = 2

_Write: TypeAlias = tuple[str, int, int, bytes, int]
"""(uid, index, term, payload, op) as queued by ``Wal.write`` / ``Wal.truncate``."""


PRE_ALLOCATE_CHUNK = 4 * 1024 * 1024
"""With ``wal_pre_allocate``, files are reserved ahead of the write position in chunks of this size
(at most ``wal_max_size_bytes`` at creation): each chunk costs one metadata update, instead of one per
synced batch for a growing file, while a reader of the file never has more than one chunk of zeros
to skip."""


@dataclass(slots=True)
class _OpenFile:
    path: Path
    fd: int
    size: int
    allocated: int = 0
    entries: int = 0
    writers: dict[str, int] = field(default_factory=dict)
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    truncations: dict[str, int] = field(default_factory=dict)
    resets: dict[str, int] = field(default_factory=dict)


class Wal:
    """One system's WAL and its writer thread (Ra ``ra_log_wal``).

    Construct with ``Wal.open`` (creates the next file and starts the thread); stop with
    ``close`` (drains the queue first). Thread-safe: ``write`` may be called from any thread.
    """

    def __init__(
        self,
        config: SystemConfig,
        wal_dir: Path,
        next_number: int,
        on_rollover: Callable[[RolledOver], None],
        ops: FileOps,
        first_file_max_size: int | None = None,
    ) -> None:
        self._config = config
        # Ra starts the first file after a restart with a random size limit between half and
        # all of wal_max_size_bytes, so that the systems of a node do not all roll over (and
        # flush) at the same moment; later files use the configured size.
        self._size_limit = first_file_max_size or config.wal_max_size_bytes
        self._dir = wal_dir
        self._next_number = next_number
        self._on_rollover = on_rollover
        self._ops = ops
        self._log = config.logger
        self._cond = threading.Condition()
        self._queue: deque[_Write] = deque()
        self._callbacks: dict[str, WalCallback] = {}
        self._closing = False
        self._failed: str | None = None
        # Writes are numbered as they are queued; ``_durable_seq`` trails ``_queued_seq`` and
        # lets ``wait_durable`` block until everything queued before it is synced (or failed).
        self._queued_seq = 0
        self._durable_seq = 0
        self._file: _OpenFile | None = None
        self._pre_allocate = config.wal_pre_allocate and config.wal_sync_method is WalSyncMethod.DATASYNC
        # Write and datasync in one call where the OS offers it (Linux pwritev2 flags). Only for the
        # plain OS file operations: injected ones (tests) see the separate write and sync calls.
        self._dsync_write = (
            type(self._ops) is OsFileOps
            and hasattr(os, "RWF_DSYNC")
            and config.wal_sync_method is WalSyncMethod.DATASYNC
            and config.wal_write_strategy is WalWriteStrategy.DEFAULT
        )
        self._thread: threading.Thread | None = None
        self.metrics = WalMetrics(labels=dict(config.metrics_labels))

    @classmethod
    def open(
        cls,
        config: SystemConfig,
        wal_dir: Path,
        next_number: int,
        on_rollover: Callable[[RolledOver], None],
        ops: FileOps | None = None,
        first_file_max_size: int | None = None,
    ) -> Wal:
        """Create WAL file number ``next_number`` in ``wal_dir`` and start the writer thread.

        Args:
            config: the system's config.
            wal_dir: where the files go.
            next_number: the number of the first file.
            on_rollover: receives each closed file (on the WAL thread).
            ops: file operations.
            first_file_max_size: size limit of the first file (default ``wal_max_size_bytes``).

        Raises:
            OSError: the file could not be created.
        """
        wal = cls(config, wal_dir, next_number, on_rollover, ops or OsFileOps(), first_file_max_size)
        wal._file = wal._create_file()
        wal._thread = threading.Thread(target=wal._run, name=f"pyra-wal-{config.name}", daemon=True)
        wal._thread.start()
        return wal

    # -- public API ------------------------------------------------------------------------

    def register(self, uid: str, callback: WalCallback) -> None:
        """Route this writer's notifications to ``callback`` (called on the WAL thread)."""
        with self._cond:
            self._callbacks[uid] = callback

    def unregister(self, uid: str) -> None:
        """Stop notifying ``uid`` (its already queued writes are still written)."""
        with self._cond:
            self._callbacks.pop(uid, None)

    def write(self, uid: str, index: int, term: int, payload: bytes, truncate: bool = False) -> None:
        """Queue one entry; its writer is notified once it is durable.

        Args:
            uid: the server's uid.
            index: the entry's index; at or below the writer's last index means overwrite.
            term: the entry's term.
            payload: the command's external-term bytes, stored as given.
            truncate: Ra's truncate flag (first write after a snapshot install).

        Raises:
            WalFailed: the WAL has failed or is closed.
        """
        self._enqueue((uid, index, term, payload, _OP_ENTRY_TRUNCATE if truncate else _OP_ENTRY))

    def write_many(
        self, uid: str, entries: Sequence[tuple[int, int, bytes]], truncate_first: bool = False
    ) -> None:
        """Queue several entries of one writer under one lock (same semantics as ``write``).

        Raises:
            WalFailed: the WAL has failed or is closed.
        """
        items: list[_Write] = [(uid, i, t, p, _OP_ENTRY) for i, t, p in entries]
        if truncate_first and items:
            items[0] = (*items[0][:4], _OP_ENTRY_TRUNCATE)
        with self._cond:
            if self._failed is not None:
                raise WalFailed(self._failed)
            if self._closing:
                raise WalFailed("wal is closed")
            was_empty = not self._queue
            self._queue.extend(items)
            self._queued_seq += len(items)
            if was_empty:
                self._cond.notify_all()

    def truncate(self, uid: str, last_index: int) -> None:
        """Queue a truncation: every entry of ``uid`` above ``last_index`` is discarded.

        Ordered with the writer's ``write`` calls; not notified (nothing becomes readable).

        Raises:
            WalFailed: the WAL has failed or is closed.
        """
        self._enqueue((uid, last_index, 0, b"", _OP_TRUNCATE))

    def _enqueue(self, item: _Write) -> None:
        with self._cond:
            if self._failed is not None:
                raise WalFailed(self._failed)
            if self._closing:
                raise WalFailed("wal is closed")
            self._queue.append(item)
            self._queued_seq += 1
            if len(self._queue) == 1:
                self._cond.notify_all()

    def wait_durable(self, timeout: float | None = None) -> bool:
        """Block until every write queued before this call is durable; False on timeout/failure."""
        with self._cond:
            target = self._queued_seq
            ok = self._cond.wait_for(lambda: self._durable_seq >= target or self._failed is not None, timeout)
            return ok and self._failed is None

    @property
    def failed(self) -> str | None:
        """The reason the WAL failed, or None while healthy."""
        return self._failed

    @property
    def current_file(self) -> Path | None:
        """The file currently written to."""
        f = self._file
        return f.path if f is not None else None

    def close(self) -> None:
        """Write what is queued, stop the thread and close the file (no rollover)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self._file is not None:
            self._ops.close(self._file.fd)
            self._file = None

    # -- writer thread ---------------------------------------------------------------------

    def _create_file(self) -> _OpenFile:
        # Ra creates the file as .tmp, syncs its header and renames it, so a *.wal always starts
        # with a complete header (ra-internals §7.2).
        cfg = self._config
        path = self._dir / wal_file_name(self._next_number)
        self._next_number += 1
        tmp = path.with_name(path.name + ".tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        if cfg.wal_write_strategy is WalWriteStrategy.O_SYNC:
            flags |= os.O_DSYNC if cfg.wal_sync_method is WalSyncMethod.DATASYNC else os.O_SYNC
        fd = self._ops.open(tmp, flags)
        try:
            header = fmt.encode_wal_header(cfg.wal_compute_checksums)
            write_all(self._ops, fd, header)
            allocated = 0
            if self._pre_allocate:
                # Pre-allocated blocks make fdatasync skip the size update; only datasync
                # benefits, as fsync writes the metadata anyway (Ra: wal_pre_allocate).
                allocated = min(cfg.wal_max_size_bytes, PRE_ALLOCATE_CHUNK)
                self._ops.fallocate(fd, 0, allocated)
            self._ops.fsync(fd)
            self._ops.rename(tmp, path)
            self._ops.fsync_dir(self._dir)
        except BaseException:
            self._ops.close(fd)
            raise
        return _OpenFile(path=path, fd=fd, size=len(header), allocated=allocated)

    def _run(self) -> None:
        max_batch = self._config.wal_max_batch_size
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                n = min(len(self._queue), max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
                callbacks = dict(self._callbacks)
            try:
                self._write_batch(batch, callbacks)
            except OSError as exc:
                self._fail(batch, callbacks, exc)
                return

    def _write_batch(self, batch: list[_Write], callbacks: dict[str, WalCallback]) -> None:
        cfg = self._config
        f = self._file
        assert f is not None
        checksums = cfg.wal_compute_checksums
        parts: list[bytes] = []
        runs: dict[str, list[list[int]]] = {}
        encode = fmt.encode_wal_record
        for uid, index, term, payload, op in batch:
            writer = f.writers.get(uid)
            if writer is None:
                writer = f.writers[uid] = len(f.writers)
                parts.append(encode(fmt.WAL_KIND_DECLARE, 0, writer, 0, 0, uid.encode(), checksums))
            if op == _OP_TRUNCATE:
                parts.append(encode(fmt.WAL_KIND_TRUNCATE, 0, writer, index, 0, b"", checksums))
                point = f.truncations.get(uid)
                f.truncations[uid] = index if point is None else min(point, index)
                continue
            flags = 0
            if op == _OP_ENTRY_TRUNCATE:
                flags = fmt.WAL_ENTRY_TRUNCATE
                f.resets[uid] = max(f.resets.get(uid, 0), index)
            parts.append(encode(fmt.WAL_KIND_ENTRY, flags, writer, index, term, payload, checksums))
            lo_hi = f.ranges.get(uid)
            f.ranges[uid] = (index, index) if lo_hi is None else (min(lo_hi[0], index), max(lo_hi[1], index))
            uid_runs = runs.get(uid)
            if uid_runs is None:
                runs[uid] = [[index, index, term]]
            else:
                last = uid_runs[-1]
                if last[2] == term and last[1] + 1 == index:
                    last[1] = index
                else:
                    uid_runs.append([index, index, term])
        data = b"".join(parts)
        if self._pre_allocate and f.size + len(data) > f.allocated:
            # Reserve the next chunk (the sync below makes the new size durable once per chunk).
            end = max(f.size + len(data), f.allocated + PRE_ALLOCATE_CHUNK)
            self._ops.fallocate(f.fd, f.allocated, end - f.allocated)
            f.allocated = end
        strategy = cfg.wal_write_strategy
        if self._dsync_write:
            # One syscall writes and syncs the batch (pwritev with RWF_DSYNC is a per-write
            # O_DSYNC: the same guarantee as write + fdatasync). The writer thread then needs the
            # GIL once per batch instead of twice, which matters while the event loop is busy.
            written = os.pwritev(f.fd, [data], f.size, os.RWF_DSYNC)
            if written < len(data):
                pwrite_all(self._ops, f.fd, data[written:], f.size + written)
                self._ops.fdatasync(f.fd)
            self.metrics.syncs += 1
            self._notify(runs, callbacks)
        elif strategy is WalWriteStrategy.SYNC_AFTER_NOTIFY:
            write_all(self._ops, f.fd, data)
            self._notify(runs, callbacks)
            self._sync(f.fd)
        else:
            write_all(self._ops, f.fd, data)
            if strategy is WalWriteStrategy.DEFAULT:
                self._sync(f.fd)
            self._notify(runs, callbacks)
        f.size += len(data)
        f.entries += len(batch)
        m = self.metrics
        m.batches += 1
        m.entries += len(batch)
        m.bytes_written += len(data)
        if f.size >= self._size_limit or (
            cfg.wal_max_entries is not None and f.entries >= cfg.wal_max_entries
        ):
            self._roll_over()
        # Counted after a rollover so that ``wait_durable`` also waits for the rollover hand-off.
        with self._cond:
            self._durable_seq += len(batch)
            self._cond.notify_all()

    def _sync(self, fd: int) -> None:
        method = self._config.wal_sync_method
        if method is WalSyncMethod.DATASYNC:
            self._ops.fdatasync(fd)
        elif method is WalSyncMethod.SYNC:
            self._ops.fsync(fd)
        else:
            return
        self.metrics.syncs += 1

    def _notify(self, runs: dict[str, list[list[int]]], callbacks: dict[str, WalCallback]) -> None:
        for uid, uid_runs in runs.items():
            cb = callbacks.get(uid)
            if cb is not None:
                try:
                    cb(WalWritten(uid, tuple((r[0], r[1], r[2]) for r in uid_runs)))
                except Exception:
                    # A broken callback must not stop the WAL for every other server.
                    self._log.exception("wal %s: written callback of %s failed", self._config.name, uid)

    def _roll_over(self) -> None:
        old = self._file
        assert old is not None
        self._ops.close(old.fd)
        self._file = None
        self._size_limit = self._config.wal_max_size_bytes
        self._file = self._create_file()
        self.metrics.rollovers += 1
        self._log.debug(
            "wal %s: rolled over %s -> %s", self._config.name, old.path.name, self._file.path.name
        )
        self._on_rollover(RolledOver(old.path, dict(old.ranges), dict(old.truncations), dict(old.resets)))

    def _fail(self, batch: list[_Write], callbacks: dict[str, WalCallback], exc: OSError) -> None:
        reason = f"wal write to {self.current_file} failed: {exc}"
        self._log.error("wal %s: %s; no further writes accepted", self._config.name, reason)
        with self._cond:
            self._failed = reason
            pending = batch + list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for uid in dict.fromkeys(w[0] for w in pending):
            cb = callbacks.get(uid)
            if cb is not None:
                cb(WalError(uid, reason))


# ---------------------------------------------------------------------------------------------
# Reading a WAL file back (recovery and wal-dump)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WalRecord:
    """One decoded entry or truncation record of a WAL file.

    ``kind`` is ``WAL_KIND_ENTRY`` or ``WAL_KIND_TRUNCATE`` (then ``index`` is the last index kept
    and ``term``/``payload`` are empty).
    """

    offset: int
    kind: int
    uid: str
    index: int
    term: int
    truncate: bool
    payload: bytes


@dataclass(slots=True)
class WalFileReport:
    """What reading a WAL file found: where valid data ends and why (for logs and wal-dump)."""

    path: Path
    size: int
    valid_end: int = 0
    torn_tail: str | None = None
    """Why the bytes from ``valid_end`` on were dropped (None if the file ended cleanly)."""


def _all_zero(buf: bytes, start: int) -> bool:
    return buf.count(0, start) == len(buf) - start


def read_wal_file(path: Path, report: WalFileReport | None = None) -> Iterator[WalRecord]:
    """Yield the entry records of one WAL file in order.

    A damaged last record (a torn write, a partial header, a zero-filled pre-allocated tail, a
    checksum failure with nothing but zeros after it) ends the iteration and is described in
    ``report.torn_tail``; recovery then truncates it. Damage followed by more data is fatal.

    Args:
        path: the ``.wal`` file.
        report: filled in with the valid length and the torn-tail reason, if given.

    Raises:
        LogCorrupt: bad magic/version, or a checksum failure in the middle of the file (the
            exception names the file and the byte offset of the bad record).
    """
    buf = path.read_bytes()
    rep = report if report is not None else WalFileReport(path, len(buf))
    rep.size = len(buf)
    hsize = fmt.WAL_HEADER.size
    if len(buf) < hsize:
        # Files are renamed into place only after their header is synced (see _create_file).
        raise LogCorrupt(path, 0, f"file shorter than the {hsize}-byte header")
    magic, version, flags, _ = fmt.WAL_HEADER.unpack_from(buf, 0)
    if magic != fmt.WAL_MAGIC or version != fmt.WAL_VERSION:
        raise LogCorrupt(path, 0, f"not a pyra WAL file (magic {magic!r}, version {version})")
    checksums = bool(flags & fmt.WAL_FLAG_CHECKSUMS)
    writers: dict[int, str] = {}
    rsize = fmt.WAL_RECORD.size
    pos = hsize
    n = len(buf)
    view = memoryview(buf)
    while pos < n:
        rep.valid_end = pos
        if pos + rsize > n:
            rep.torn_tail = f"partial record header at offset {pos}"
            return
        hcrc, dcrc, dlen, kind, rflags, _res, writer, index, term = fmt.WAL_RECORD.unpack_from(buf, pos)
        if hcrc == 0 and kind == 0 and _all_zero(buf, pos):
            # The unused, zero-filled part of a pre-allocated file: a clean end.
            return
        end = pos + rsize + dlen
        if zlib.crc32(view[pos + 4 : pos + rsize]) != hcrc:
            # The length field cannot be trusted, but if it points exactly at the end of the file
            # (only another field flipped), or only zeros follow, this is the last record.
            if end == n or _all_zero(buf, pos + rsize):
                rep.torn_tail = f"torn record header at offset {pos}"
                return
            raise LogCorrupt(path, pos, "record header checksum mismatch with data after it")
        if end > n:
            rep.torn_tail = f"record at offset {pos} runs past end of file (torn write)"
            return
        if checksums and zlib.crc32(view[pos + rsize : end]) != dcrc:
            if _all_zero(buf, end):
                rep.torn_tail = f"data checksum mismatch in last record at offset {pos}"
                return
            raise LogCorrupt(path, pos, "record data checksum mismatch with data after it")
        data = bytes(view[pos + rsize : end])
        if kind == fmt.WAL_KIND_DECLARE:
            if dlen > fmt.WAL_MAX_UID_LEN or writer in writers:
                raise LogCorrupt(path, pos, f"bad writer declaration for writer {writer}")
            writers[writer] = data.decode()
        elif kind in (fmt.WAL_KIND_ENTRY, fmt.WAL_KIND_TRUNCATE):
            uid = writers.get(writer)
            if uid is None:
                raise LogCorrupt(path, pos, f"record of undeclared writer {writer}")
            yield WalRecord(pos, kind, uid, index, term, bool(rflags & fmt.WAL_ENTRY_TRUNCATE), data)
        else:
            raise LogCorrupt(path, pos, f"unknown record kind {kind}")
        pos = end
    rep.valid_end = pos


def next_wal_number(wal_dir: Path) -> int:
    """One more than the highest existing WAL file number (1 for an empty directory)."""
    files = list_wal_files(wal_dir)
    return int(files[-1].stem) + 1 if files else 1
