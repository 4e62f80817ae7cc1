"""Per-server in-memory table of entries not yet moved into segments (Ra ``ra_mt`` / the ETS tables).

Owns: the recent entries of one server, readable immediately after ``insert``, with Raft's
overwrite rule (inserting at or below the last index first drops everything from that index on).
Must not: do I/O. It is shared between the server's thread (insert, read, truncate) and the
segment writer thread (``take_range`` / ``drop_flushed``), so every method takes the lock.

Entries are stored as ``(term, payload)`` tuples and ``drop_flushed`` compares them by identity:
an entry the segment writer copied and that a follower has overwritten since is a different
object, so the newer one stays in memory until its own WAL file is flushed.
"""

from __future__ import annotations

import threading

MemEntry = tuple[int, bytes]
"""(term, payload) of one entry."""


class Memtable:
    """The contiguous run ``[first, last]`` of one server's entries held in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, MemEntry] = {}
        # Invariant: the keys are exactly range(_first, _last + 1); empty iff _last < _first.
        self._first = 1
        self._last = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def bounds(self) -> tuple[int, int] | None:
        """``(first, last)`` held, or None when empty."""
        with self._lock:
            return (self._first, self._last) if self._entries else None

    def insert(self, index: int, term: int, payload: bytes) -> None:
        """Insert one entry; at or below the last index it overwrites and drops the suffix.

        An index above ``last + 1`` (a gap, after a snapshot install) restarts the table.
        """
        with self._lock:
            entries = self._entries
            if entries and index <= self._last:
                for i in range(max(index, self._first), self._last + 1):
                    del entries[i]
                self._last = index - 1
                if not entries:
                    self._first = index
            elif not entries or index != self._last + 1:
                entries.clear()
                self._first = index
            entries[index] = (term, payload)
            self._last = index
            if index < self._first:
                self._first = index

    def get(self, index: int) -> MemEntry | None:
        """The entry at ``index`` or None."""
        return self._entries.get(index)

    def truncate_from(self, index: int) -> None:
        """Drop every entry at or above ``index``."""
        with self._lock:
            for i in range(max(index, self._first), self._last + 1):
                del self._entries[i]
            if self._entries:
                self._last = min(self._last, index - 1)
            else:
                self._first, self._last = 1, 0

    def drop_below(self, index: int) -> None:
        """Drop every entry at or below ``index`` (released by a snapshot)."""
        with self._lock:
            for i in range(self._first, min(index, self._last) + 1):
                del self._entries[i]
            if self._entries:
                self._first = max(self._first, index + 1)
            else:
                self._first, self._last = 1, 0

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._entries.clear()
            self._first, self._last = 1, 0

    def take_range(self, lo: int, hi: int) -> list[tuple[int, MemEntry]]:
        """Copy the references of the entries held within ``[lo, hi]`` (for the segment writer)."""
        with self._lock:
            start = max(lo, self._first)
            end = min(hi, self._last)
            return [(i, self._entries[i]) for i in range(start, end + 1)]

    def drop_flushed(self, flushed: list[tuple[int, MemEntry]]) -> None:
        """Drop the entries now safe in segments, unless they were overwritten since.

        Flushed entries that are still current always form a prefix of the table (overwrites
        only replace suffixes), so the table stays contiguous.
        """
        with self._lock:
            entries = self._entries
            for i, entry in flushed:
                if i == self._first and entries.get(i) is entry:
                    del entries[i]
                    self._first = i + 1
            if not entries:
                self._first, self._last = 1, 0
