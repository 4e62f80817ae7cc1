"""A manual, deterministic clock with a timer queue (trio's ``MockClock`` model, in Ra's milliseconds).

Owns: simulated time and the ordered queue of callbacks scheduled on it. Callbacks due at the same
millisecond run in the order they were scheduled, so a run depends only on what was scheduled.
Must not: read the wall clock, sleep, or run a callback before its due time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["FakeClock", "TimerHandle"]


@dataclass(slots=True, eq=False)
class TimerHandle:
    """A scheduled callback; ``cancel()`` makes it a no-op (asyncio ``TimerHandle`` style)."""

    when: int
    callback: Callable[[], None] = field(repr=False)
    cancelled: bool = False

    def cancel(self) -> None:
        """Prevent the callback from running; cancelling twice is harmless."""
        self.cancelled = True


class FakeClock:
    """Simulated milliseconds plus a heap of scheduled callbacks.

    Time moves only through `advance`, `advance_to` or `run_next`. A callback may schedule more
    callbacks, including at the current time; those run in the same `advance` call.
    """

    def __init__(self, start_ms: int = 0) -> None:
        """Args:
        start_ms: the initial time.
        """
        self._now = start_ms
        self._seq = 0
        # (when, scheduling sequence, handle): the sequence makes same-time order FIFO.
        self._heap: list[tuple[int, int, TimerHandle]] = []

    @property
    def now_ms(self) -> int:
        """Current simulated time in milliseconds."""
        return self._now

    def monotonic(self) -> float:
        """Current simulated time in seconds (for code written against ``time.monotonic``)."""
        return self._now / 1000.0

    def call_at(self, when_ms: int, callback: Callable[[], None]) -> TimerHandle:
        """Schedule ``callback`` at absolute time ``when_ms`` (the past means "now").

        Returns:
            A handle that can cancel it.
        """
        handle = TimerHandle(max(when_ms, self._now), callback)
        heapq.heappush(self._heap, (handle.when, self._seq, handle))
        self._seq += 1
        return handle

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> TimerHandle:
        """Schedule ``callback`` ``delay_ms`` from now.

        Raises:
            ValueError: ``delay_ms`` is negative.
        """
        if delay_ms < 0:
            raise ValueError(f"negative delay {delay_ms}")
        return self.call_at(self._now + delay_ms, callback)

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)

    def next_deadline(self) -> int | None:
        """Returns: the due time of the next live callback, or None when nothing is scheduled."""
        self._drop_cancelled()
        return self._heap[0][0] if self._heap else None

    def pending(self) -> int:
        """Returns: the number of scheduled callbacks that are not cancelled."""
        return sum(1 for _, _, h in self._heap if not h.cancelled)

    def run_next(self, limit_ms: int | None = None) -> bool:
        """Jump to the next due callback and run it (exactly one).

        Args:
            limit_ms: do nothing if the next callback is due after this time.

        Returns:
            True if a callback ran.
        """
        self._drop_cancelled()
        if not self._heap or (limit_ms is not None and self._heap[0][0] > limit_ms):
            return False
        when, _, handle = heapq.heappop(self._heap)
        self._now = max(self._now, when)
        handle.cancelled = True
        handle.callback()
        return True

    def advance_to(self, when_ms: int) -> int:
        """Run every callback due up to ``when_ms``, then set the time to it.

        Returns:
            The number of callbacks run.

        Raises:
            ValueError: ``when_ms`` is in the past.
        """
        if when_ms < self._now:
            raise ValueError(f"time cannot go back from {self._now} to {when_ms}")
        ran = 0
        while self.run_next(when_ms):
            ran += 1
        self._now = when_ms
        return ran

    def advance(self, delta_ms: int) -> int:
        """`advance_to` ``now + delta_ms``."""
        return self.advance_to(self._now + delta_ms)
