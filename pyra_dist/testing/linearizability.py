"""Linearizability checking of client histories (Wing & Gong's search with Lowe's memoisation).

Owns: `check_linearizability`, which decides whether a history of concurrent operations can be
ordered into a legal sequential execution of a `Model` that respects real time, and the
`CheckResult` it returns.
Must not: trust a history's shape beyond what `Operation` promises, or run unbounded: every
search has a step budget and/or a deadline, and running out gives ``UNKNOWN``, never a verdict.

Theory of operation (the algorithm porcupine and Knossos' ``wgl`` implement):

* Every operation contributes a *call* and a *return* entry to one doubly linked list ordered by
  time. An indeterminate operation (``ret is None``) returns after everything else: it may be
  linearized anywhere after its call, and linearizing it last is the same as it never happening,
  so "maybe applied" needs no special case as long as the model accepts ``UNKNOWN`` outputs.
* The search walks the list from the front. At a call entry it tries to linearize that operation
  next: if the model accepts it, the call and its return are lifted out of the list, the old
  state is pushed on a stack, and the walk restarts from the front. Reaching a return entry means
  the operation that returns there has not been linearized although it must precede everything
  after it: backtrack (pop, unlift, try the next candidate). An empty list means success.
* Lowe's memoisation: the pair (set of linearized operations, model state) fully determines the
  rest of the search, so a pair seen before is never explored twice. The set is a Python int
  used as a bitset.
* Ties: when a return and a call carry the same time the call is ordered first, i.e. the two
  operations count as concurrent (the permissive reading, as in porcupine). Recorders that use
  a logical counter never tie.
* P-compositionality: `Model.partition` splits a history (per key for a map) and each part is
  searched alone; the history is linearizable iff every part is.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pyra_dist.testing.history import Operation
from pyra_dist.testing.models import Model

__all__ = ["CheckOutcome", "CheckResult", "check_linearizability"]

S = TypeVar("S", bound=Hashable)
I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741

# How many search steps run between two reads of the deadline clock.
_CLOCK_EVERY = 1024


class CheckOutcome(enum.Enum):
    """Verdict of a check."""

    OK = "ok"
    ILLEGAL = "illegal"
    UNKNOWN = "unknown"  # the budget ran out before a verdict


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult(Generic[I, O]):
    """What `check_linearizability` found.

    Attributes:
        outcome: the verdict.
        steps: search steps taken over all partitions.
        partitions: number of independently checked parts.
        failing: the operations of the first non-linearizable part (empty unless ILLEGAL).
        longest: the longest linearizable prefix found for that part, in linearization order;
            the next operation that should follow it is where the history goes wrong.
    """

    outcome: CheckOutcome
    steps: int
    partitions: int
    failing: list[Operation[I, O]] = field(default_factory=list)
    longest: list[Operation[I, O]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True only for a proven linearizable history."""
        return self.outcome is CheckOutcome.OK

    def explain(self, model: Model[S, I, O]) -> str:
        """A multi-line human report of a failure (empty for OK).

        Args:
            model: the model used for the check (renders operations).

        Returns:
            The report text.
        """
        if self.outcome is CheckOutcome.OK:
            return ""
        if self.outcome is CheckOutcome.UNKNOWN:
            return f"linearizability: unknown after {self.steps} steps (budget exhausted)"
        lines = [f"linearizability: ILLEGAL part with {len(self.failing)} operations"]
        lines.append("  longest linearizable prefix:")
        lines.extend(f"    {model.describe(op)}" for op in self.longest)
        rest = [op for op in self.failing if op not in self.longest]
        lines.append("  cannot be placed after it:")
        lines.extend(f"    {model.describe(op)}" for op in rest)
        return "\n".join(lines)


class _Entry:
    """A node of the call/return list. ``match`` is set on call entries only."""

    __slots__ = ("is_call", "match", "next", "op", "prev")

    def __init__(self, op: int, is_call: bool) -> None:
        self.op = op
        self.is_call = is_call
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


class _Budget:
    """Step and deadline accounting shared by the partitions of one check."""

    def __init__(self, max_steps: int | None, deadline: float | None, clock: Callable[[], float]) -> None:
        self.steps = 0
        self.max_steps = max_steps
        self.deadline = deadline
        self.clock = clock

    def spend(self) -> bool:
        """Count one step; False once the budget is exhausted."""
        self.steps += 1
        if self.max_steps is not None and self.steps > self.max_steps:
            return False
        return not (
            self.deadline is not None and self.steps % _CLOCK_EVERY == 0 and self.clock() > self.deadline
        )


def _build_list(ops: Sequence[Operation[I, O]]) -> _Entry:
    end = max([op.ret for op in ops if op.ret is not None] + [op.call for op in ops]) + 1
    keyed: list[tuple[int, int, int, _Entry]] = []
    for i, op in enumerate(ops):
        call = _Entry(i, True)
        ret = _Entry(i, False)
        call.match = ret
        # Sort key: time, then calls (0) before returns (1), then operation order for stability.
        keyed.append((op.call, 0, i, call))
        keyed.append((end if op.ret is None else op.ret, 1, i, ret))
    keyed.sort(key=lambda k: (k[0], k[1], k[2]))
    head = _Entry(-1, False)
    prev = head
    for _, _, _, entry in keyed:
        prev.next = entry
        entry.prev = prev
        prev = entry
    return head


def _lift(entry: _Entry) -> None:
    """Remove a call entry and its return entry from the list (the operation is linearized)."""
    match = entry.match
    assert entry.prev is not None and match is not None and match.prev is not None
    entry.prev.next = entry.next
    if entry.next is not None:
        entry.next.prev = entry.prev
    match_prev = match.prev
    match_prev.next = match.next
    if match.next is not None:
        match.next.prev = match_prev


def _unlift(entry: _Entry) -> None:
    """Undo `_lift` (both entries kept their own prev/next pointers)."""
    match = entry.match
    assert entry.prev is not None and match is not None and match.prev is not None
    match.prev.next = match
    if match.next is not None:
        match.next.prev = match
    entry.prev.next = entry
    if entry.next is not None:
        entry.next.prev = entry


def _check_part(
    model: Model[S, I, O], ops: Sequence[Operation[I, O]], budget: _Budget
) -> tuple[CheckOutcome, list[int]]:
    """Search one partition. Returns the outcome and, if ILLEGAL, the longest prefix found."""
    if not ops:
        return CheckOutcome.OK, []
    head = _build_list(ops)
    state: S = model.init()
    linearized = 0
    seen: set[tuple[int, S]] = set()
    stack: list[tuple[_Entry, S]] = []
    longest: list[int] = []
    entry = head.next
    while head.next is not None:
        if not budget.spend():
            return CheckOutcome.UNKNOWN, []
        assert entry is not None
        if entry.is_call:
            op = ops[entry.op]
            legal, new_state = model.step(state, op.input, op.output)
            if legal:
                new_linearized = linearized | (1 << entry.op)
                key = (new_linearized, new_state)
                if key not in seen:
                    seen.add(key)
                    stack.append((entry, state))
                    state = new_state
                    linearized = new_linearized
                    _lift(entry)
                    if len(stack) > len(longest):
                        longest = [e.op for e, _ in stack]
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # A return reached before its operation was linearized: backtrack.
            if not stack:
                return CheckOutcome.ILLEGAL, longest
            entry, state = stack.pop()
            linearized &= ~(1 << entry.op)
            _unlift(entry)
            entry = entry.next
    return CheckOutcome.OK, []


def check_linearizability(
    model: Model[S, I, O],
    history: Sequence[Operation[I, O]],
    *,
    max_steps: int | None = 1_000_000,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CheckResult[I, O]:
    """Decide whether ``history`` is linearizable with respect to ``model``.

    Args:
        model: the sequential specification.
        history: completed and indeterminate operations (see `Operation`).
        max_steps: search-step budget over all partitions (deterministic; None = unlimited).
        timeout: wall-clock seconds for the whole check (None = unlimited). Use ``max_steps`` where
            the result must be reproducible.
        clock: the clock ``timeout`` is measured with.

    Returns:
        OK, ILLEGAL (with the failing part and its longest linearizable prefix) or UNKNOWN when
        the budget ran out first. An ILLEGAL part found before the budget ran out wins.
    """
    budget = _Budget(max_steps, None if timeout is None else clock() + timeout, clock)
    parts = model.partition(history)
    unknown = False
    for part in parts:
        outcome, longest = _check_part(model, part, budget)
        if outcome is CheckOutcome.ILLEGAL:
            return CheckResult(
                outcome=outcome,
                steps=budget.steps,
                partitions=len(parts),
                failing=list(part),
                longest=[part[i] for i in longest],
            )
        if outcome is CheckOutcome.UNKNOWN:
            unknown = True
            break
    return CheckResult(
        outcome=CheckOutcome.UNKNOWN if unknown else CheckOutcome.OK,
        steps=budget.steps,
        partitions=len(parts),
    )
