"""The read-only view of a server's durable log that the core consults, and an in-memory implementation.

Owns: the ``LogView`` Protocol (what the core may read), the ``SnapshotCodec`` Protocol (how a machine
state becomes the bytes of ``install_snapshot_rpc`` chunks) and ``InMemoryLogView`` (a list-backed log
for tests and the simulator). Must not: decide anything about Raft; writes happen only when the
driver executes ``AppendToLog``/``TruncateLog``/``WriteSnapshot``/``InstallSnapshot`` effects.

Contract between core and ``LogView`` (etcd's ``Storage`` shape, split as its TODO suggests):
* At construction everything the view holds is durable (recovery reads only what survived).
* Afterwards the core reads indexes ``<=`` its last written index only, i.e. what some ``LogWritten``
  confirmed; entries it appended but that are not yet confirmed live in the core's own unstable tail.
  A view may therefore apply writes lazily or eagerly; both are fine.
* ``term_at(0) == 0``; ``term_at(snapshot.index) == snapshot.term``; below the snapshot: ``None``.
* After ``InstallSnapshot`` (synchronous) the view holds no entry above or below ``meta.index`` and
  ``snapshot_meta()`` returns ``meta``. After ``SnapshotWritten`` it returns the new meta and entries
  up to its index may be gone. A ``WriteSnapshot`` that completes after a newer snapshot was
  installed (or written) must leave the newer one in place.
"""

from __future__ import annotations

import pickle
from typing import Protocol

from pyra_dist.types import Entry, Index, SnapshotMeta, Term


class LogView(Protocol):
    """What the Raft core reads from the durable log."""

    def last_index_term(self) -> tuple[Index, Term]:
        """Return the last entry's ``(index, term)``, the snapshot's if the log is empty, else ``(0, 0)``."""
        ...

    def term_at(self, index: Index) -> Term | None:
        """Return the term of the entry at ``index`` (0 for index 0), or None if unknown/compacted."""
        ...

    def fetch(self, from_index: Index, to_index: Index) -> list[Entry]:
        """Return entries ``from_index..to_index`` inclusive (fewer if the range leaves the log)."""
        ...

    def snapshot_meta(self) -> SnapshotMeta | None:
        """Return the current snapshot's meta, or None."""
        ...

    def snapshot_state(self) -> object:
        """Return the current snapshot's machine state (only called when ``snapshot_meta()`` is not None)."""
        ...


class SnapshotCodec(Protocol):
    """Turns machine states into the byte stream that ``install_snapshot_rpc`` chunks carry.

    For Erlang interop the edge supplies a codec producing ``<<Crc:32, term_to_binary(State)>>``
    with Ra 2.2.0's CRC over the meta (ra-internals §2.5); the core only slices and joins bytes.
    """

    def encode(self, meta: SnapshotMeta, state: object) -> bytes:
        """Return the transfer bytes for ``state`` at ``meta``."""
        ...

    def decode(self, meta: SnapshotMeta, data: bytes) -> object:
        """Return the state encoded in ``data``; raise ``ValueError`` if corrupt."""
        ...


class PickleSnapshotCodec:
    """A Python-only codec (pickle) for clusters without Erlang members, tests and the simulator."""

    def encode(self, meta: SnapshotMeta, state: object) -> bytes:
        """Return ``pickle.dumps(state)``."""
        return pickle.dumps(state)

    def decode(self, meta: SnapshotMeta, data: bytes) -> object:
        """Return ``pickle.loads(data)``; raises ``ValueError`` on corrupt data."""
        try:
            return pickle.loads(data)
        except Exception as exc:  # pickle raises many kinds
            raise ValueError(f"corrupt snapshot data: {exc!r}") from exc


class InMemoryLogView:
    """A log held in memory: entries above the snapshot plus the snapshot itself.

    Mutators mirror the effects (``append`` for ``AppendToLog`` and so on); the simulator applies them
    when it decides a write became durable.
    """

    def __init__(
        self, entries: list[Entry] | None = None, snapshot: tuple[SnapshotMeta, object] | None = None
    ) -> None:
        """Create a log from ``entries`` (contiguous, above the snapshot) and an optional snapshot."""
        self._snapshot = snapshot
        # Invariant: self._entries[i].index == self._offset + i, and self._offset == snapshot index + 1.
        self._offset: Index = snapshot[0].index + 1 if snapshot else 1
        self._entries: list[Entry] = list(entries or [])
        if self._entries and self._entries[0].index != self._offset:
            raise ValueError("entries must start right after the snapshot")

    # -- LogView ----------------------------------------------------------------------------

    def last_index_term(self) -> tuple[Index, Term]:
        """See ``LogView.last_index_term``."""
        if self._entries:
            last = self._entries[-1]
            return last.index, last.term
        if self._snapshot is not None:
            return self._snapshot[0].index, self._snapshot[0].term
        return 0, 0

    def term_at(self, index: Index) -> Term | None:
        """See ``LogView.term_at``."""
        if index == 0:
            return 0
        if self._snapshot is not None and index == self._snapshot[0].index:
            return self._snapshot[0].term
        pos = index - self._offset
        if 0 <= pos < len(self._entries):
            return self._entries[pos].term
        return None

    def fetch(self, from_index: Index, to_index: Index) -> list[Entry]:
        """See ``LogView.fetch``."""
        lo = max(from_index, self._offset) - self._offset
        hi = to_index - self._offset + 1
        if hi <= lo:
            return []
        return self._entries[lo:hi]

    def snapshot_meta(self) -> SnapshotMeta | None:
        """See ``LogView.snapshot_meta``."""
        return self._snapshot[0] if self._snapshot else None

    def snapshot_state(self) -> object:
        """See ``LogView.snapshot_state``."""
        if self._snapshot is None:
            raise LookupError("no snapshot")
        return self._snapshot[1]

    # -- mutators (the driver's side) -------------------------------------------------------------

    def append(self, entries: tuple[Entry, ...] | list[Entry]) -> None:
        """Execute ``AppendToLog``: replace everything at or above ``entries[0].index``.

        Raises:
            ValueError: if the entries would leave a gap.
        """
        if not entries:
            return
        first = entries[0].index
        if first < self._offset:
            # Entries already covered by the snapshot are dropped.
            entries = [e for e in entries if e.index >= self._offset]
            if not entries:
                return
            first = entries[0].index
        pos = first - self._offset
        if pos > len(self._entries):
            raise ValueError(f"gap: appending {first} after {self._offset + len(self._entries) - 1}")
        del self._entries[pos:]
        self._entries.extend(entries)

    def truncate(self, last_index: Index) -> None:
        """Execute ``TruncateLog``: drop entries above ``last_index``."""
        pos = max(last_index - self._offset + 1, 0)
        del self._entries[pos:]

    def write_snapshot(self, meta: SnapshotMeta, state: object) -> None:
        """Execute ``WriteSnapshot``: keep the snapshot and drop entries up to ``meta.index``."""
        current = self._snapshot[0].index if self._snapshot else 0
        if meta.index <= current:
            return
        keep = [e for e in self._entries if e.index > meta.index]
        self._snapshot = (meta, state)
        self._offset = meta.index + 1
        self._entries = keep

    def install_snapshot(self, meta: SnapshotMeta, state: object) -> None:
        """Execute ``InstallSnapshot``: the snapshot replaces the whole log."""
        self._snapshot = (meta, state)
        self._offset = meta.index + 1
        self._entries = []

    def copy(self) -> InMemoryLogView:
        """Return an independent copy (used to model crash/restart)."""
        view = InMemoryLogView(snapshot=self._snapshot)
        view._offset = self._offset
        view._entries = list(self._entries)
        return view


__all__ = ["InMemoryLogView", "LogView", "PickleSnapshotCodec", "SnapshotCodec"]
