"""Clocks and the node-level timer service that drives every server's timers.

Owns: the ``Clock`` protocol (what the I/O side needs from time), ``LoopClock`` (the asyncio loop's
monotonic clock) and ``TimerService``: one heap of deadlines for all servers of a system, armed on
the loop as a *single* ``call_at`` handle for the earliest deadline.

Must not: own per-server asyncio handles (thousands of idle servers must cost nothing: Ra has no
per-cluster timers while idle, see ra-internals §8.1/§8.2), call into a core, or read the wall clock
directly (tests inject a clock).

Theory of operation: a server asks for a timer with ``start(owner, kind, after_s)``. Starting a timer
of a kind that is already armed replaces it (gen_statem ``state_timeout`` semantics); ``cancel``
forgets it. Stale heap entries are skipped lazily on expiry (their generation no longer matches),
so both operations are O(log n) and never touch the loop unless the earliest deadline moves earlier.
When the loop handle fires, every due timer is popped and delivered through the owner's
``timer_fired(kind)`` callback, in deadline order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Hashable
from typing import Protocol


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled (``asyncio.TimerHandle`` satisfies it)."""

    def cancel(self) -> None:
        """Cancel the callback; a no-op if it already ran."""


class Clock(Protocol):
    """Monotonic time and deadline callbacks, in seconds."""

    def time(self) -> float:
        """Return the current monotonic time in seconds."""

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once the clock reaches ``when``."""


class LoopClock:
    """The running asyncio loop's clock (``loop.time`` / ``loop.call_at``)."""

    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def time(self) -> float:
        """Return ``loop.time()``."""
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        """Schedule ``callback`` with ``loop.call_at``."""
        return self._loop.call_at(when, callback)


class TimerOwner(Protocol):
    """What the timer service calls back when a timer of an owner expires."""

    def timer_fired(self, kind: Hashable) -> None:
        """Deliver the expiry of the timer ``kind`` (must not block)."""


class TimerService:
    """All timers of all servers of one system, on one loop handle.

    Args:
        clock: the clock to read and to schedule the single wake-up on.
    """

    __slots__ = ("_armed", "_armed_at", "_clock", "_heap", "_live", "_seq")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # (deadline, seq, owner, kind); an entry is live only if _live[(owner, kind)] == seq.
        self._heap: list[tuple[float, int, TimerOwner, Hashable]] = []
        self._live: dict[tuple[TimerOwner, Hashable], int] = {}
        self._seq = itertools.count()
        self._armed: TimerHandle | None = None
        self._armed_at = float("inf")

    @property
    def clock(self) -> Clock:
        """The clock the service runs on."""
        return self._clock

    def __len__(self) -> int:
        """Number of live (armed, not cancelled) timers."""
        return len(self._live)

    def start(self, owner: TimerOwner, kind: Hashable, after_s: float) -> None:
        """Arm (or re-arm) ``owner``'s timer ``kind`` to fire ``after_s`` seconds from now."""
        deadline = self._clock.time() + after_s
        seq = next(self._seq)
        self._live[(owner, kind)] = seq
        heapq.heappush(self._heap, (deadline, seq, owner, kind))
        if len(self._heap) > 4 * len(self._live) + 1024:
            # Re-arming (e.g. on every append) leaves stale entries behind: compact now and then.
            self._heap = [e for e in self._heap if self._live.get((e[2], e[3])) == e[1]]
            heapq.heapify(self._heap)
        if deadline < self._armed_at:
            self._arm(deadline)

    def cancel(self, owner: TimerOwner, kind: Hashable) -> None:
        """Forget ``owner``'s timer ``kind`` (no-op if not armed). The heap entry is dropped lazily."""
        self._live.pop((owner, kind), None)
        if not self._live and self._armed is not None:
            # Nothing left: do not keep a wake-up for an idle node.
            self._armed.cancel()
            self._armed = None
            self._armed_at = float("inf")
            self._heap.clear()

    def cancel_all(self, owner: TimerOwner) -> None:
        """Forget every timer of ``owner`` (used when a server stops)."""
        for key in [k for k in self._live if k[0] is owner]:
            self.cancel(owner, key[1])

    def is_armed(self, owner: TimerOwner, kind: Hashable) -> bool:
        """Whether ``owner`` has a live timer ``kind``."""
        return (owner, kind) in self._live

    def close(self) -> None:
        """Drop every timer and the loop handle."""
        if self._armed is not None:
            self._armed.cancel()
        self._armed = None
        self._armed_at = float("inf")
        self._heap.clear()
        self._live.clear()

    def _arm(self, deadline: float) -> None:
        if self._armed is not None:
            self._armed.cancel()
        self._armed_at = deadline
        self._armed = self._clock.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._armed = None
        self._armed_at = float("inf")
        now = self._clock.time()
        heap = self._heap
        live = self._live
        due: list[tuple[TimerOwner, Hashable]] = []
        while heap and heap[0][0] <= now:
            _, seq, owner, kind = heapq.heappop(heap)
            if live.get((owner, kind)) == seq:
                del live[(owner, kind)]
                due.append((owner, kind))
        # Skip stale entries at the top so the next wake-up is a real deadline.
        while heap and live.get((heap[0][2], heap[0][3])) != heap[0][1]:
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])
        for owner, kind in due:
            owner.timer_fired(kind)
