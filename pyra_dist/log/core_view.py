"""Adapter from the bytes-level ``ServerLog`` to the Raft core's ``LogView`` Protocol.

Owns: ``CoreLogView`` (decodes payload bytes into ``pyra_dist.types`` commands with an injected
``EntryCodec`` and snapshot states with the core's ``SnapshotCodec``) and conversions between the
core's ``SnapshotMeta`` and the log's ``SnapshotMetaRecord``. Must not: cache decoded entries
beyond one call or write anything except through the mutators mirroring the core's effects.
"""

from __future__ import annotations

import pickle
from typing import Protocol

from pyra_dist.core.log_view import SnapshotCodec
from pyra_dist.log.format import SnapshotMetaRecord
from pyra_dist.log.server_log import ServerLog
from pyra_dist.types import Command, Entry, Index, ServerId, SnapshotMeta, Term


class EntryCodec(Protocol):
    """Turns a command into the bytes stored in the log and back (the edge supplies ETF)."""

    def encode(self, command: Command) -> bytes:
        """Return the stored bytes of ``command``."""
        ...

    def decode(self, data: bytes) -> Command:
        """Return the command stored as ``data``."""
        ...


class PickleEntryCodec:
    """A Python-only codec for tests and Python-only clusters."""

    def encode(self, command: Command) -> bytes:
        """Return ``pickle.dumps(command)``."""
        return pickle.dumps(command)

    def decode(self, data: bytes) -> Command:
        """Return ``pickle.loads(data)``."""
        command: Command = pickle.loads(data)
        return command


def meta_to_record(meta: SnapshotMeta) -> SnapshotMetaRecord:
    """The log's form of the core's snapshot meta."""
    return SnapshotMetaRecord(
        meta.index, meta.term, tuple((s.name, s.node) for s in meta.cluster), meta.machine_version
    )


def record_to_meta(rec: SnapshotMetaRecord) -> SnapshotMeta:
    """The core's form of a stored snapshot meta."""
    return SnapshotMeta(
        rec.index, rec.term, tuple(ServerId(n, d) for n, d in rec.cluster), rec.machine_version
    )


class CoreLogView:
    """``LogView`` over a ``ServerLog``, plus mutators named after the core's log effects."""

    def __init__(self, log: ServerLog, entries: EntryCodec, snapshots: SnapshotCodec) -> None:
        self.log = log
        self._entries = entries
        self._snapshots = snapshots

    # -- LogView ---------------------------------------------------------------------------

    def last_index_term(self) -> tuple[Index, Term]:
        """See ``LogView.last_index_term``."""
        return self.log.last_index_term()

    def term_at(self, index: Index) -> Term | None:
        """See ``LogView.term_at``."""
        return self.log.term_at(index)

    def fetch(self, from_index: Index, to_index: Index) -> list[Entry]:
        """See ``LogView.fetch``."""
        decode = self._entries.decode
        return [Entry(i, t, decode(p)) for i, t, p in self.log.iter_range(from_index, to_index)]

    def snapshot_meta(self) -> SnapshotMeta | None:
        """See ``LogView.snapshot_meta``."""
        rec = self.log.snapshot_meta()
        return None if rec is None else record_to_meta(rec)

    def snapshot_state(self) -> object:
        """See ``LogView.snapshot_state``."""
        meta = self.snapshot_meta()
        if meta is None:
            raise LookupError("no snapshot")
        return self._snapshots.decode(meta, self.log.snapshots.read_state())

    # -- mutators (the driver executes the core's effects through these) ---------------------

    def append(self, entries: tuple[Entry, ...] | list[Entry]) -> None:
        """``AppendToLog``: encode and append (durable when the WAL reports it)."""
        encode = self._entries.encode
        self.log.append([(e.index, e.term, encode(e.command)) for e in entries])

    def truncate(self, last_index: Index) -> None:
        """``TruncateLog``."""
        self.log.truncate(last_index)

    def write_snapshot(self, meta: SnapshotMeta, state: object) -> None:
        """``WriteSnapshot`` (synchronous here; the driver then feeds ``SnapshotWritten``)."""
        self.log.write_snapshot(meta_to_record(meta), self._snapshots.encode(meta, state))

    def install_snapshot(self, meta: SnapshotMeta, state: object) -> None:
        """``InstallSnapshot``: the snapshot replaces the whole log."""
        self.log.install_snapshot_state(meta_to_record(meta), self._snapshots.encode(meta, state))

    def persist_meta(self, term: Term, voted_for: ServerId | None) -> None:
        """``PersistMeta``: durable before returning, so the vote may be sent afterwards (R3)."""
        self.log.persist_meta(term, None if voted_for is None else (voted_for.name, voted_for.node))

    def persist_last_applied(self, index: Index) -> None:
        """``PersistLastApplied`` (not synced)."""
        self.log.persist_last_applied(index)

    def recovered_meta(self) -> tuple[Term, ServerId | None, Index]:
        """``(current_term, voted_for, last_applied)`` as recovered (Ra recovery step 1)."""
        m = self.log.server_meta
        vote = None if m.voted_for is None else ServerId(*m.voted_for)
        return m.current_term, vote, m.last_applied
