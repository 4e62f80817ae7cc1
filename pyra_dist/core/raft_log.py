"""The core's view of its own log: the durable ``LogView`` plus an unstable tail of unwritten entries.

Owns: the split between entries the log confirmed as written (``LogWritten``) and entries the core
asked to append but that are not durable yet (etcd's ``log_unstable``), and the effects that change
the log (``AppendToLog``, ``TruncateLog``). Must not: read the view above the last written index
(the driver may apply writes lazily) or ever report an unwritten index as written (ra-internals
§9.2; landscape §2.4, "a late written event could confirm unwritten entries").
"""

from __future__ import annotations

from pyra_dist.core.effects import AppendToLog, TruncateLog
from pyra_dist.core.log_view import LogView
from pyra_dist.types import Entry, Index, SnapshotMeta, Term


class RaftLog:
    """Durable prefix (read through ``LogView``) + unstable suffix (kept here)."""

    def __init__(self, view: LogView) -> None:
        """Wrap ``view``; everything it holds at construction counts as written (recovery)."""
        self.view = view
        # Invariant: every entry in self._unstable has index > self._written_index, and the list is
        # contiguous starting at self._written_index + 1.
        self._unstable: list[Entry] = []
        self._written_index, self._written_term = view.last_index_term()

    # -- reads ------------------------------------------------------------------------------------

    def last_index_term(self) -> tuple[Index, Term]:
        """Return the last ``(index, term)`` including unwritten entries."""
        if self._unstable:
            last = self._unstable[-1]
            return last.index, last.term
        return self._written_index, self._written_term

    @property
    def last_index(self) -> Index:
        """The last index including unwritten entries."""
        return self.last_index_term()[0]

    def last_written(self) -> tuple[Index, Term]:
        """Return the last ``(index, term)`` the log confirmed as durable."""
        return self._written_index, self._written_term

    def snapshot_meta(self) -> SnapshotMeta | None:
        """The durable snapshot's meta."""
        return self.view.snapshot_meta()

    def snapshot_index(self) -> Index:
        """The snapshot index, 0 without a snapshot."""
        meta = self.view.snapshot_meta()
        return meta.index if meta else 0

    def first_index(self) -> Index:
        """The first index that ``fetch`` can return (snapshot index + 1)."""
        return self.snapshot_index() + 1

    def term_at(self, index: Index) -> Term | None:
        """Return the term at ``index`` (unwritten entries included), None if unknown."""
        if index > self._written_index:
            pos = index - self._written_index - 1
            return self._unstable[pos].term if pos < len(self._unstable) else None
        return self.view.term_at(index)

    def fetch(self, from_index: Index, to_index: Index) -> list[Entry]:
        """Return entries ``from_index..to_index`` (inclusive; fewer if the range leaves the log)."""
        out: list[Entry] = []
        if from_index <= self._written_index:
            out = self.view.fetch(from_index, min(to_index, self._written_index))
        if to_index > self._written_index and self._unstable:
            lo = max(from_index - self._written_index - 1, 0)
            hi = to_index - self._written_index
            out.extend(self._unstable[lo:hi])
        return out

    def entry(self, index: Index) -> Entry | None:
        """Return the entry at ``index`` or None."""
        got = self.fetch(index, index)
        return got[0] if got else None

    # -- writes -----------------------------------------------------------------------------------

    def append(self, entries: list[Entry]) -> AppendToLog:
        """Record ``entries`` as unstable (replacing anything at or above the first) and return the effect.

        Raises:
            ValueError: if the entries would leave a gap.
        """
        first = entries[0].index
        if first > self.last_index + 1:
            raise ValueError(f"gap: appending {first} after {self.last_index}")
        self._cut_from(first)
        self._unstable.extend(entries)
        return AppendToLog(entries=tuple(entries))

    def truncate(self, last_index: Index) -> TruncateLog:
        """Drop everything above ``last_index`` and return the effect."""
        self._cut_from(last_index + 1)
        return TruncateLog(last_index=last_index)

    def _cut_from(self, index: Index) -> None:
        if index <= self._written_index:
            # Overwriting durable entries: what remains durable is the prefix below ``index``.
            self._unstable = []
            self._written_index = index - 1
            term = self.view.term_at(self._written_index)
            self._written_term = term if term is not None else 0
        else:
            del self._unstable[index - self._written_index - 1 :]

    def written(self, to_index: Index, term: Term) -> bool:
        """Handle ``LogWritten``; return True if the written index advanced.

        The event is trusted only if our log still holds ``(to_index, term)``: entries with the same
        index and term are the same entry (Raft §5.3, Log Matching), so a late event for entries that
        were overwritten since cannot confirm their unwritten replacements.
        """
        if to_index <= self._written_index or self.term_at(to_index) != term:
            return False
        drop = to_index - self._written_index
        self._unstable = self._unstable[drop:]
        self._written_index, self._written_term = to_index, term
        return True

    def reset_to_snapshot(self, meta: SnapshotMeta) -> None:
        """After ``InstallSnapshot``: the log is empty above the snapshot."""
        self._unstable = []
        self._written_index, self._written_term = meta.index, meta.term

    def unstable_count(self) -> int:
        """Number of appended entries not yet confirmed written."""
        return len(self._unstable)


__all__ = ["RaftLog"]
