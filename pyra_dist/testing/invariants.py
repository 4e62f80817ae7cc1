"""Raft's safety properties, checked incrementally while a simulation runs.

Owns: `SafetyChecker`, which the simulator feeds with what it observes at the effect boundary of
every core (votes sent, leaders elected, entries written, entries applied, commit indexes, log
rewrites, client acknowledgements) and which records a `Violation` the moment a property breaks.
Must not: read a core's private state or trust the core's own bookkeeping; everything it checks is
derived from effects the simulator executed (so a broken core cannot hide its own mistakes).

Properties (Raft paper Figure 3 / §5.2-5.4, plus Ra-specific durability rules):
* election safety: at most one leader per term; and, stronger and immediate, no server grants
  ``request_vote`` to two candidates in one term.
* log matching: if two logs hold an entry with the same index and term, they hold the same command
  and the logs are identical up to it. Checked incrementally: every ``(index, term)`` ever written
  must always come with the same command *and the same previous term*; by induction over indexes
  that implies identical prefixes, at O(entries written) cost.
* leader completeness: a new leader's log holds every entry known to be committed.
* state machine safety: no two servers apply different commands at one index.
* commit durability: when an index is first applied anywhere, its entry is durable on a majority
  (this is what "committed" means; a core that commits without a majority, or applies before
  commit, fails here before any client notices).
* durability before replies (style R3): a granted vote leaves only after the vote is durable, and an
  ``append_entries_reply`` names as ``last_index``/``last_term`` an entry that is durable.
* committed entries are never rewritten: no server truncates or overwrites an entry at or below
  its own commit index (the PySyncObj duplicate-append bug, landscape §2.4).
* commit index and last applied never go back within one incarnation of a server.
* no acknowledged command lost: an acknowledged command's entry stays committed at its index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyra_dist.types import Command, Entry, Index, ServerId, Term

__all__ = ["SafetyChecker", "Violation"]


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken property: which one, and a human-readable description."""

    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


class SafetyChecker:
    """Accumulates observations and the violations they reveal (see the module docstring)."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self._leaders: dict[Term, ServerId] = {}
        self._votes: dict[tuple[ServerId, Term], ServerId] = {}
        # (index, term) -> (command, previous entry's term): the log-matching witness.
        self._written: dict[tuple[Index, Term], tuple[Command, Term | None]] = {}
        # index -> (term, command) of the first apply anywhere: state machine safety.
        self._applied: dict[Index, tuple[Term, object]] = {}
        # Entries known committed (index -> term): first applies and commit indexes of leaders.
        self.committed: dict[Index, Term] = {}
        self._last_applied: dict[ServerId, Index] = {}
        self._commit: dict[ServerId, Index] = {}
        self.acknowledged: dict[object, tuple[Index, Term]] = {}

    def _fail(self, invariant: str, detail: str) -> None:
        self.violations.append(Violation(invariant, detail))

    # -- elections ------------------------------------------------------------------------------

    def vote_granted(self, voter: ServerId, term: Term, candidate: ServerId) -> None:
        """``voter`` sent a granted ``request_vote_result`` for ``term`` to ``candidate``."""
        previous = self._votes.setdefault((voter, term), candidate)
        if previous != candidate:
            self._fail("election_safety", f"{voter} voted for {previous} and {candidate} in term {term}")

    def leader_elected(
        self, server: ServerId, term: Term, log_term_at: Callable[[Index], Term | None], snapshot_index: Index
    ) -> None:
        """``server`` became leader of ``term`` with a log whose terms are ``log_term_at``.

        Args:
            server: the new leader.
            term: its term.
            log_term_at: the term of the entry at an index of its log (written or not yet durable).
            snapshot_index: entries at or below this are covered by its snapshot.
        """
        previous = self._leaders.setdefault(term, server)
        if previous != server:
            self._fail("election_safety", f"two leaders in term {term}: {previous} and {server}")
        for index, committed_term in sorted(self.committed.items()):
            if index > snapshot_index and log_term_at(index) != committed_term:
                self._fail(
                    "leader_completeness",
                    f"{server} leads term {term} without committed entry {index}/{committed_term} "
                    f"(has term {log_term_at(index)})",
                )
                return

    def durable_before_reply(self, server: ServerId, rpc: object, durable: bool) -> None:
        """``server`` sends ``rpc``, which claims durable state (a granted vote, a written index).

        Args:
            server: the sender.
            rpc: the reply.
            durable: whether what it claims is durable at this moment.
        """
        if not durable:
            self._fail("durable_before_reply", f"{server} sent {rpc!r} before what it claims was durable")

    # -- logs -----------------------------------------------------------------------------------

    def entries_written(self, server: ServerId, entries: tuple[Entry, ...], prev_term: Term | None) -> None:
        """``server`` wrote ``entries``; ``prev_term`` is the term its log holds just before them.

        ``prev_term`` is None when the previous entry is compacted into a snapshot; the check then
        compares commands only.
        """
        before = prev_term
        for entry in entries:
            key = (entry.index, entry.term)
            seen = self._written.get(key)
            if seen is None or (seen[1] is None and before is not None):
                self._written[key] = (entry.command, before)
            elif seen[0] != entry.command or (before is not None and seen[1] != before):
                self._fail(
                    "log_matching",
                    f"{server} wrote {entry.index}/{entry.term} = {entry.command!r} after term {before}; "
                    f"elsewhere it is {seen[0]!r} after term {seen[1]}",
                )
                return
            before = entry.term

    def log_rewritten(
        self,
        server: ServerId,
        first_changed: Index,
        old_terms: dict[Index, Term],
        new_terms: dict[Index, Term],
    ) -> None:
        """``server`` replaced or dropped its entries from ``first_changed`` on.

        Args:
            server: the server.
            first_changed: lowest index whose entry may have changed.
            old_terms: index -> term before the write (indexes >= ``first_changed``).
            new_terms: index -> term after it.
        """
        commit = self._commit.get(server, 0)
        for index in range(first_changed, commit + 1):
            if index in old_terms and new_terms.get(index) != old_terms[index]:
                self._fail(
                    "committed_entry_rewritten",
                    f"{server} replaced entry {index}/{old_terms[index]} with {new_terms.get(index)} "
                    f"at or below its commit index {commit}",
                )
                return

    # -- commit and apply -----------------------------------------------------------------------

    def commit_index(
        self, server: ServerId, commit: Index, log_term_at: Callable[[Index], Term | None] | None
    ) -> None:
        """``server`` reports commit index ``commit``; leaders pass their log to mark entries committed."""
        previous = self._commit.get(server, 0)
        if commit < previous:
            self._fail("commit_monotonic", f"{server} commit index went back from {previous} to {commit}")
        self._commit[server] = max(commit, previous)
        if log_term_at is not None:
            for index in range(previous + 1, commit + 1):
                term = log_term_at(index)
                if term is not None:
                    self._mark_committed(server, index, term)

    def _mark_committed(self, server: ServerId, index: Index, term: Term) -> None:
        known = self.committed.setdefault(index, term)
        if known != term:
            self._fail("state_machine_safety", f"{server} commits {index}/{term}, committed as {known}")

    def applied(
        self, server: ServerId, index: Index, term: Term, command: object, durable_majority: bool | None
    ) -> None:
        """``server`` applied ``command`` of entry ``index``/``term`` to its machine.

        Args:
            server: the server.
            index: the entry's index.
            term: the entry's term.
            command: the user command.
            durable_majority: on the first apply of ``index`` anywhere, whether the entry was durable
                on a majority at that moment (None when the simulator could not tell).
        """
        last = self._last_applied.get(server, 0)
        if index <= last:
            self._fail("apply_order", f"{server} applied {index} after {last}")
        self._last_applied[server] = index
        first = self._applied.setdefault(index, (term, command))
        if first != (term, command):
            self._fail(
                "state_machine_safety",
                f"{server} applied {index}/{term} {command!r}; another applied {first[0]} {first[1]!r}",
            )
            return
        if durable_majority is False:
            self._fail("commit_durability", f"{server} applied {index}/{term} not durable on a majority")
        self._mark_committed(server, index, term)

    def is_applied_anywhere(self, index: Index) -> bool:
        """Whether some server already applied ``index``."""
        return index in self._applied

    def acknowledge(self, token: object, index: Index, term: Term) -> None:
        """A client got a successful reply for the command of entry ``index``/``term``."""
        self.acknowledged[token] = (index, term)
        if self.committed.get(index) != term:
            self._fail("acknowledged_lost", f"{token!r} acknowledged at {index}/{term} but not committed")

    def restarted(self, server: ServerId) -> None:
        """``server`` crashed and restarted: its volatile commit index and last applied start over."""
        self._last_applied.pop(server, None)
        self._commit.pop(server, None)

    def check_acknowledged(self) -> None:
        """Final check: every acknowledged command is still the committed entry at its index."""
        for token, (index, term) in sorted(self.acknowledged.items(), key=lambda kv: kv[1]):
            if self.committed.get(index) != term:
                self._fail("acknowledged_lost", f"acknowledged {token!r} at {index}/{term} lost")
