"""One server's log: memtable + segments + snapshot + meta behind one bytes-level facade.

Owns: a server's view of its log (first/last index, last written index), executing the core's
log effects at the bytes level (append, truncate, write/install snapshot, persist meta), turning
WAL notifications into ``(term, index)`` written confirmations, and recovery of a server's state
(Ra ``ra_log``, ra-internals §7.6). Must not: decode commands (payloads are the command's
external-term bytes as they arrived; ``core_view.py`` adapts to the core's ``LogView``) or decide
Raft. Not thread-safe: one driver thread calls it; the WAL and segment writer threads only touch
the shared ``ServerStore`` (which locks).

Reads consult the memtable first, then segments, and never above ``last_index``: after an
overwrite the segments may still hold (or, while a flush is in flight, briefly regain) stale
entries above the new last index, and the memtable holds the newer version of every index it
has until that version itself is in segments.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from pyra_dist.log.errors import LogError, WalFailed
from pyra_dist.log.format import SnapshotMetaRecord
from pyra_dist.log.meta import MetaStore, ServerMeta
from pyra_dist.log.segment_writer import ServerStore
from pyra_dist.log.snapshot import SnapshotAcceptor, SnapshotStore
from pyra_dist.log.wal import Wal, WalCallback, WalError, WalEvent, WalWritten

if TYPE_CHECKING:
    from pyra_dist.log.system import LogSystem

RawEntry = tuple[int, int, bytes]
"""(index, term, payload) with the payload as the command's external-term bytes."""


class ServerLog:
    """The log of one server. Open through ``LogSystem.open_server_log``."""

    def __init__(self, system: LogSystem, store: ServerStore) -> None:
        self.uid = store.uid
        self._system = system
        self._store = store
        self._wal: Wal = system.wal
        self.snapshots = SnapshotStore(store.directory, system.ops)
        self.meta = MetaStore(store.directory, system.ops)
        # Invariants: entries exist for first_index..last_index (first_index = snapshot + 1);
        # last_written <= last_index and every entry up to last_written is durable.
        self.first_index = 1
        self.last_index = 0
        self.last_written = 0
        self._truncate_next = False
        self.failed: str | None = None
        # WAL notifications carry (from, to, term) runs, and a truncation without a term change
        # makes a late run for the old entries look like one for the new ones. So entries sent
        # to the WAL are counted, and every truncation leaves a barrier (entries sent before
        # it, highest index they may still confirm); the WAL notifies one writer in FIFO order.
        self._sent = 0
        self._confirmed = 0
        self._barriers: deque[tuple[int, int]] = deque()

    @classmethod
    def open(cls, system: LogSystem, uid: str, on_event: WalCallback | None = None) -> ServerLog:
        """Recover a server's log (see ``LogSystem.open_server_log``)."""
        log = cls(system, system.store(uid))
        log._recover()
        if on_event is not None:
            system.wal.register(uid, on_event)
        return log

    def _recover(self) -> None:
        self.meta.recover()
        snap = self.snapshots.recover()
        segments = self._store.segments
        memtable = self._store.memtable
        if snap is not None:
            # Raft §7: entries after the snapshot are kept only if they extend the snapshot's
            # last entry: the entry at its index (unless compacted away) has the snapshot's term
            # and the next entry is not from an older term. Otherwise (an installed snapshot
            # whose WAL truncation record was lost in the crash) the whole log is superseded.
            at = self._term_at_raw(snap.index)
            after = self._term_at_raw(snap.index + 1)
            diverges = (at is not None and at != snap.term) or (after is not None and after < snap.term)
            # A snapshot taken locally only compacted the log (entries after it always extend
            # it; the entry at its index may be an older version never rewritten in segments).
            if self.snapshots.installed and diverges:
                segments.truncate_from(snap.index + 1)
                memtable.clear()
            segments.release_below(snap.index)
            memtable.drop_below(snap.index)
            self.first_index = snap.index + 1
        last = snap.index if snap is not None else 0
        if memtable.bounds() is None:
            # Entries must follow the snapshot without a gap; anything after a gap (left by an
            # interrupted install or release) is not part of the log.
            run_end = segments.contiguous_last(self.first_index)
            seg_range = segments.range()
            if seg_range is not None and seg_range[1] > run_end:
                segments.truncate_from(run_end + 1)
        bounds = memtable.bounds()
        seg_range = segments.range()
        if bounds is not None:
            last = max(last, bounds[1])
        elif seg_range is not None:
            last = max(last, seg_range[1])
        self.last_index = last
        self._store.log_end = last
        if snap is not None and self.snapshots.installed and last == snap.index:
            # Nothing written since the install yet: the first write still carries Ra's
            # truncate flag (it becomes a segment floor hiding the replaced entries).
            self._truncate_next = True
        # Everything recovered from disk is durable; entries still in a memtable of a previous
        # incarnation in this process were queued to the WAL, which writes them in order.
        self.last_written = last if bounds is None else self._durable_guess(last)

    def _durable_guess(self, last: int) -> int:
        # Reopened in the same process: wait for the WAL so the memtable's entries are durable.
        self._wal.wait_durable()
        return last

    # -- reads (LogView at the bytes level) -------------------------------------------------

    def _term_at_raw(self, index: int) -> int | None:
        entry = self._store.memtable.get(index)
        if entry is not None:
            return entry[0]
        return self._store.segments.term_at(index)

    def last_index_term(self) -> tuple[int, int]:
        """``(last_index, its term)``; the snapshot's if the log is empty; ``(0, 0)`` if new."""
        term = self.term_at(self.last_index)
        return self.last_index, term if term is not None else 0

    def term_at(self, index: int) -> int | None:
        """Term of entry ``index``; 0 for index 0; the snapshot term at its index; else None."""
        if index == 0:
            return 0
        snap = self.snapshots.current
        if snap is not None and index == snap.index:
            return snap.term
        if index < self.first_index or index > self.last_index:
            return None
        return self._term_at_raw(index)

    def fetch(self, from_index: int, to_index: int) -> list[RawEntry]:
        """Entries ``from_index..to_index`` inclusive, clipped to the log.

        Raises:
            LogCorrupt: a segment read failed its checksum.
        """
        return list(self.iter_range(from_index, to_index))

    def iter_range(self, from_index: int, to_index: int) -> Iterator[RawEntry]:
        """Like ``fetch`` but lazy."""
        memtable = self._store.memtable
        segments = self._store.segments
        for i in range(max(from_index, self.first_index), min(to_index, self.last_index) + 1):
            entry = memtable.get(i)
            if entry is None:
                found = segments.read(i)
                if found is None:
                    raise LogError(f"{self.uid}: entry {i} missing from memtable and segments")
                entry = found
            yield i, entry[0], entry[1]

    def snapshot_meta(self) -> SnapshotMetaRecord | None:
        """Meta of the current snapshot."""
        return self.snapshots.current

    # -- writes --------------------------------------------------------------------------------

    def append(self, entries: Sequence[RawEntry]) -> None:
        """Write entries (ascending, contiguous); an index at or below ``last_index`` overwrites.

        The entries are readable at once and become durable when a later ``handle_wal_event``
        reports them.

        Raises:
            ValueError: the entries leave a gap, are not contiguous, or lie below the snapshot.
            WalFailed: the WAL has failed.
        """
        if not entries:
            return
        if self.failed is not None:
            raise WalFailed(self.failed)
        first = entries[0][0]
        if first > self.last_index + 1 or first < self.first_index:
            raise ValueError(
                f"{self.uid}: cannot append {first} to a log holding {self.first_index}..{self.last_index}"
            )
        for k in range(1, len(entries)):
            if entries[k][0] != first + k:
                raise ValueError(f"{self.uid}: entries not contiguous at {entries[k][0]}")
        if first <= self.last_index:
            self._store.segments.truncate_from(first)
            self._barrier(first - 1)
        memtable = self._store.memtable
        self._store.log_end = entries[-1][0]
        for index, term, payload in entries:
            memtable.insert(index, term, payload)
        self._wal.write_many(self.uid, entries, self._truncate_next)
        self._truncate_next = False
        self._sent += len(entries)
        self.last_index = entries[-1][0]

    def truncate(self, last_index: int) -> None:
        """Discard every entry above ``last_index`` (the core's ``TruncateLog``), durably in order.

        Raises:
            WalFailed: the WAL has failed.
        """
        if last_index >= self.last_index:
            return
        last_index = max(last_index, self.first_index - 1)
        # log_end first: the segment writer places the flushed tombstone just above log_end, and
        # it may flush this truncation before ``Wal.truncate`` returns; a stale (higher) log_end
        # would leave the discarded entries in segments, to be resurrected by recovery.
        self._store.log_end = last_index
        self._store.memtable.truncate_from(last_index + 1)
        self._store.segments.truncate_from(last_index + 1)
        self._wal.truncate(self.uid, last_index)
        self.last_index = last_index
        self._barrier(last_index)

    def _barrier(self, cap: int) -> None:
        self.last_written = min(self.last_written, cap)
        if self._sent > self._confirmed:
            self._barriers.append((self._sent, cap))

    def handle_wal_event(self, event: WalEvent) -> tuple[int, int] | None:
        """Apply a WAL notification; returns ``(term, index)`` if ``last_written`` advanced.

        A run whose entries were overwritten since is confirmed only up to the last index that
        still holds its term (Ra ``ra_log`` written handling; landscape §2.4).

        Raises:
            WalFailed: the event reports a WAL failure (the server must stop, as Ra's does).
        """
        match event:
            case WalError(error=error):
                self.failed = error
                raise WalFailed(error)
            case WalWritten(runs=runs):
                advanced = False
                barriers = self._barriers
                for lo, hi, term in runs:
                    self._confirmed += hi - lo + 1
                    while barriers and barriers[0][0] < self._confirmed:
                        barriers.popleft()
                    # Barriers set after these entries were sent cap what the run may confirm.
                    cap = min((c for _, c in barriers), default=hi)
                    i = min(hi, self.last_index, cap)
                    while i >= lo:
                        t = self.term_at(i)
                        if t == term:
                            if i > self.last_written:
                                self.last_written = i
                                advanced = True
                            break
                        if t is None or t < term:
                            break
                        i -= 1
                if advanced:
                    t = self.term_at(self.last_written)
                    return (t if t is not None else 0), self.last_written
                return None

    # -- meta ------------------------------------------------------------------------------

    def persist_meta(self, current_term: int, voted_for: tuple[str, str] | None) -> None:
        """Durably store term and vote before returning (PersistMeta; the vote is granted after).

        Raises:
            OSError: the write failed: the vote must not be granted.
        """
        self.meta.store_sync(current_term, voted_for)

    def persist_last_applied(self, index: int) -> None:
        """Record last_applied (not synced; Ra writes it asynchronously)."""
        self.meta.store_last_applied(index)

    @property
    def server_meta(self) -> ServerMeta:
        """The recovered/current meta."""
        return self.meta.meta

    # -- snapshots -------------------------------------------------------------------------

    def write_snapshot(self, meta: SnapshotMetaRecord, state: bytes) -> None:
        """Write a snapshot at ``meta.index`` and release the log up to it (log compaction).

        Entries above the snapshot stay. Older snapshots, segment files holding only entries at
        or below the index, and memtable entries at or below it are released.

        Raises:
            ValueError: the snapshot is not newer than the current one or beyond ``last_index``.
            OSError: the write failed (nothing is released).
        """
        current = self.snapshots.current
        if current is not None and meta.index <= current.index:
            raise ValueError(f"{self.uid}: snapshot {meta.index} not newer than {current.index}")
        if meta.index > self.last_written:
            raise ValueError(f"{self.uid}: snapshot {meta.index} beyond last written {self.last_written}")
        self.snapshots.write(meta, state)
        self._release_below(meta.index)

    def _release_below(self, index: int) -> None:
        self._store.segments.release_below(index)
        self._store.memtable.drop_below(index)
        self.first_index = index + 1

    def begin_accept(self, meta: SnapshotMetaRecord) -> SnapshotAcceptor:
        """Start receiving a snapshot from a leader; finish with ``install_snapshot``."""
        return self.snapshots.begin_accept(meta)

    def install_snapshot(self, acceptor: SnapshotAcceptor, expected_crc: int | None = None) -> None:
        """Install a fully received snapshot: it replaces the whole log (core ``InstallSnapshot``).

        Raises:
            ValueError: the received data does not match ``expected_crc``.
            OSError: the write failed.
        """
        meta = acceptor.meta
        acceptor.complete(expected_crc)
        self._reset_to_snapshot(meta)

    def install_snapshot_state(self, meta: SnapshotMetaRecord, state: bytes) -> None:
        """Install a snapshot given whole (no chunks): the snapshot replaces the whole log."""
        self.snapshots.write(meta, state, installed=True)
        self._reset_to_snapshot(meta)

    def _reset_to_snapshot(self, meta: SnapshotMetaRecord) -> None:
        store = self._store
        # Before the WAL truncation: its flush (possibly before wait_durable returns) puts the
        # segment tombstone at log_end + 1, which must be meta.index + 1, not the replaced end.
        store.log_end = meta.index
        store.memtable.clear()
        store.segments.truncate_from(meta.index + 1)
        if self.last_index > meta.index:
            # Durable before returning (InstallSnapshot is synchronous): after this, recovery
            # never sees the replaced entries above the snapshot.
            self._wal.truncate(self.uid, meta.index)
            self._wal.wait_durable()
        self._release_below(meta.index)
        self._barrier(meta.index)
        self.last_index = meta.index
        self._store.log_end = meta.index
        self.last_written = meta.index
        # Ra's truncate flag: the next write restarts this writer's table on recovery.
        self._truncate_next = True

    def read_snapshot_chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The current snapshot's state bytes in chunks (default ``snapshot_chunk_size``)."""
        return self.snapshots.read_chunks(chunk_size or self._system.config.snapshot_chunk_size)

    def close(self) -> None:
        """Stop receiving WAL notifications and close the meta file (the store stays with the system)."""
        self._wal.unregister(self.uid)
        self.meta.close()
