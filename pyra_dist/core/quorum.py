"""Majority arithmetic for Ra 2.2.0: commit index, query index and vote counting.

Owns: pure functions over per-member numbers. Must not: know about roles or messages.
Ra 2.2.0 counts every member (there are no non-voters before 2.7, ra-internals §10).
"""

from __future__ import annotations

from collections.abc import Iterable


def quorum_size(members: int) -> int:
    """Return ``floor(N/2) + 1``, the votes needed among ``members`` servers (Raft §5.2).

    Args:
        members: number of servers in the configuration (>= 1).

    Returns:
        The majority size.
    """
    return members // 2 + 1


def agreed_value(values: Iterable[int]) -> int:
    """Return the largest value that a majority of members has reached.

    Sorting descending and taking position ``quorum - 1`` is Ra's "median" commit rule: at least
    ``quorum`` members hold a value >= the result (Raft §5.3, "replicated on a majority").

    Args:
        values: one number per member (match indexes with the leader's written index, or query indexes).

    Returns:
        The majority-agreed value (0 for an empty input).
    """
    ordered = sorted(values, reverse=True)
    if not ordered:
        return 0
    return ordered[quorum_size(len(ordered)) - 1]


def has_quorum(granted: int, members: int) -> bool:
    """Return True if ``granted`` votes form a majority of ``members`` (Raft §5.2)."""
    return granted >= quorum_size(members)


__all__ = ["agreed_value", "has_quorum", "quorum_size"]
