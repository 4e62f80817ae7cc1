"""Glue between the storage engine (``pyra_dist.log``) and the asyncio servers.

Owns: ``SystemStorage`` (one ``LogSystem`` per system, plus the inbox that moves WAL notifications
from the WAL writer thread onto the event loop with one wake-up per WAL batch) and ``ServerStorage``
(one server's ``CoreLogView`` + meta, turning ``WalWritten`` into the core's ``LogWritten`` and
running vote syncs off the loop).

Must not: decide Raft, reorder a server's writes, or report an index written that the WAL did not
sync (``ServerLog.handle_wal_event`` decides what a notification confirms).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from pyra_dist.core.events import Event, LogWriteFailed, LogWritten, SnapshotWritten
from pyra_dist.core.log_view import PickleSnapshotCodec, SnapshotCodec
from pyra_dist.log.config import SystemConfig
from pyra_dist.log.core_view import CoreLogView, EntryCodec, PickleEntryCodec
from pyra_dist.log.errors import WalFailed
from pyra_dist.log.meta import ServerMeta
from pyra_dist.log.server_log import ServerLog
from pyra_dist.log.system import LogSystem
from pyra_dist.log.wal import WalEvent
from pyra_dist.types import Entry, Index, ServerId, SnapshotMeta, Term


class SystemStorage:
    """The storage of one system as the asyncio side sees it. Open with ``SystemStorage.open``.

    Args:
        logs: the opened storage engine.
        entry_codec: how commands become log bytes (pickle here; the Erlang edge injects ETF).
        snapshot_codec: how machine states become snapshot bytes.
    """

    def __init__(self, logs: LogSystem, entry_codec: EntryCodec, snapshot_codec: SnapshotCodec) -> None:
        self.logs = logs
        self.entry_codec = entry_codec
        self.snapshot_codec = snapshot_codec
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: Executor | None = None
        # Filled by the WAL thread, drained on the loop; one call_soon_threadsafe per burst.
        self._inbox: deque[tuple[ServerStorage, WalEvent]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    @classmethod
    def open(
        cls,
        config: SystemConfig,
        node: str,
        entry_codec: EntryCodec | None = None,
        snapshot_codec: SnapshotCodec | None = None,
    ) -> SystemStorage:
        """Recover and start the system's WAL and segment writer (blocking: call in a thread)."""
        return cls(
            LogSystem.open(config, node),
            entry_codec if entry_codec is not None else PickleEntryCodec(),
            snapshot_codec if snapshot_codec is not None else PickleSnapshotCodec(),
        )

    def attach(self, loop: asyncio.AbstractEventLoop, executor: Executor) -> None:
        """Deliver WAL notifications on ``loop``; run vote syncs on ``executor``."""
        self._loop = loop
        self._executor = executor

    def open_server(self, uid: str, server_dir: Path) -> ServerStorage:
        """Open (recover) the log and meta of server ``uid`` (blocking: call in a thread)."""
        storage = ServerStorage(self, uid)
        storage.open()
        return storage

    def forget_server(self, uid: str) -> None:
        """Delete a server's storage (``force_delete_server``; blocking)."""
        self.logs.delete_server(uid)

    def close(self) -> None:
        """Drain the WAL and stop the storage threads (blocking)."""
        self.logs.close()

    # -- WAL thread -> loop ----------------------------------------------------------------------

    def post(self, storage: ServerStorage, event: WalEvent) -> None:
        """Called on the WAL thread: queue ``event`` and wake the loop once per burst."""
        self._inbox.append((storage, event))
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # loop closed between the check and the call
                pass

    def _drain(self) -> None:
        with self._lock:
            self._scheduled = False
        inbox = self._inbox
        touched: dict[ServerStorage, None] = {}
        while inbox:
            storage, event = inbox.popleft()
            storage.wal_event(event)
            touched[storage] = None
        for storage in touched:
            storage.flush_written()

    async def sync_meta(self, fn: Callable[[], None]) -> None:
        """Run a durable meta write off the loop and wait for it."""
        assert self._loop is not None
        await self._loop.run_in_executor(self._executor, fn)


class ServerStorage:
    """One server's log and meta, as used by its ``ServerProcess`` (the ``MetaWriter`` side too)."""

    __slots__ = ("_closed", "_deliver", "_pending", "_system", "log", "meta", "uid")

    def __init__(self, system: SystemStorage, uid: str) -> None:
        self._system = system
        self.uid = uid
        self.log: CoreLogView | None = None
        self.meta = ServerMeta()
        self._deliver: Callable[[Event], None] | None = None
        # (from_index, to_index, term) confirmed by WAL events since the last flush.
        self._pending: tuple[Index, Index, Term] | None = None
        self._closed = False

    def open(self) -> None:
        """Recover this server's log and meta (blocking)."""
        system = self._system
        server_log = system.logs.open_server_log(self.uid, lambda ev: system.post(self, ev))
        self.log = _ServerLogView(server_log, system.entry_codec, system.snapshot_codec, self)
        self.meta = server_log.server_meta

    def bind(self, deliver: Callable[[Event], None]) -> None:
        """Send this server's I/O completions (``LogWritten``, ...) to ``deliver`` (its mailbox)."""
        self._deliver = deliver

    def wal_event(self, event: WalEvent) -> None:
        """On the loop: apply one WAL notification to the log (see ``ServerLog.handle_wal_event``)."""
        if self._closed or self.log is None:
            return
        server_log = self.log.log
        before = server_log.last_written
        try:
            advanced = server_log.handle_wal_event(event)
        except WalFailed as exc:
            if self._deliver is not None:
                self._deliver(LogWriteFailed(reason=str(exc)))
            return
        if advanced is not None:
            term, index = advanced
            start = self._pending[0] if self._pending is not None else before + 1
            self._pending = (min(start, index), index, term)

    def flush_written(self) -> None:
        """Deliver one ``LogWritten`` for everything confirmed since the last flush."""
        pending = self._pending
        self._pending = None
        if pending is not None and self._deliver is not None and not self._closed:
            self._deliver(LogWritten(from_index=pending[0], to_index=pending[1], term=pending[2]))

    def snapshot_written(self, meta: SnapshotMeta) -> None:
        """Report a finished ``WriteSnapshot``."""
        if self._deliver is not None and not self._closed:
            self._deliver(SnapshotWritten(index=meta.index, term=meta.term))

    # -- MetaWriter ----------------------------------------------------------------------------

    async def persist(self, term: Term, voted_for: ServerId | None) -> None:
        """Durably store term and vote (fsync on the system's executor) before returning."""
        assert self.log is not None
        server_log = self.log.log
        vote = (voted_for.name, voted_for.node) if voted_for is not None else None
        await self._system.sync_meta(lambda: server_log.persist_meta(term, vote))

    def last_applied(self, index: Index) -> None:
        """Record last_applied without a sync."""
        if self.log is not None and not self._closed:
            self.log.log.persist_last_applied(index)

    def close(self) -> None:
        """Stop receiving notifications and close the meta file; entries stay with the system."""
        if self._closed:
            return
        self._closed = True
        if self.log is not None:
            self.log.log.close()


class _ServerLogView(CoreLogView):
    """``CoreLogView`` plus a cache of recently appended entries, and ``SnapshotWritten`` reporting.

    The leader reads the entries it has just appended (to replicate them once they are written) and
    followers re-read them to apply: keeping the last ``RECENT`` ``Entry`` objects spares decoding
    them again (Ra keeps recent entries in memory tables for the same reason). The cache mirrors the
    log exactly: overwrites and truncations drop the affected indexes.
    """

    RECENT = 8192

    def __init__(
        self, log: ServerLog, entries: EntryCodec, snapshots: SnapshotCodec, owner: ServerStorage
    ) -> None:
        super().__init__(log, entries, snapshots)
        self._owner = owner
        # Invariant: keys are exactly range(self._lo, self._hi + 1), all <= log.last_index.
        self._recent: dict[Index, Entry] = {}
        self._lo = 1
        self._hi = 0

    def fetch(self, from_index: Index, to_index: Index) -> list[Entry]:
        """See ``LogView.fetch``; served from the cache when it holds the whole range."""
        to_index = min(to_index, self.log.last_index)
        if from_index >= self._lo and to_index <= self._hi:
            recent = self._recent
            return [recent[i] for i in range(from_index, to_index + 1)]
        if self._lo <= to_index <= self._hi and from_index < self._lo:
            head = super().fetch(from_index, self._lo - 1)
            recent = self._recent
            head.extend(recent[i] for i in range(self._lo, to_index + 1))
            return head
        return super().fetch(from_index, to_index)

    def append(self, entries: tuple[Entry, ...] | list[Entry]) -> None:
        """``AppendToLog``: write through to the log, remember the entries."""
        super().append(entries)
        if not entries:
            return
        first = entries[0].index
        recent = self._recent
        if not recent or first > self._hi + 1 or first < self._lo:
            recent.clear()
            self._lo = first
        else:
            for i in range(first, self._hi + 1):
                del recent[i]
        for entry in entries:
            recent[entry.index] = entry
        self._hi = entries[-1].index
        while self._hi - self._lo >= self.RECENT:
            del recent[self._lo]
            self._lo += 1

    def truncate(self, last_index: Index) -> None:
        """``TruncateLog``."""
        super().truncate(last_index)
        self._drop_above(last_index)

    def _drop_above(self, last_index: Index) -> None:
        recent = self._recent
        while self._hi > last_index and self._hi >= self._lo:
            del recent[self._hi]
            self._hi -= 1
        if not recent:
            self._lo, self._hi = 1, 0

    def write_snapshot(self, meta: SnapshotMeta, state: object) -> None:
        """``WriteSnapshot``: write synchronously, then feed ``SnapshotWritten`` back."""
        super().write_snapshot(meta, state)
        recent = self._recent
        while self._lo <= min(meta.index, self._hi):
            del recent[self._lo]
            self._lo += 1
        if not recent:
            self._lo, self._hi = 1, 0
        self._owner.snapshot_written(meta)

    def install_snapshot(self, meta: SnapshotMeta, state: object) -> None:
        """``InstallSnapshot``: the snapshot replaces the whole log."""
        super().install_snapshot(meta, state)
        self._recent.clear()
        self._lo, self._hi = 1, 0
