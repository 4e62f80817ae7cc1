"""FakeClock: manual time, FIFO order at equal times, cancellation."""

from __future__ import annotations

import pytest

from pyra_dist.testing.clock import FakeClock


def test_callbacks_run_in_due_order_and_fifo_at_equal_times() -> None:
    clock = FakeClock()
    ran: list[tuple[int, str]] = []
    clock.call_later(5, lambda: ran.append((clock.now_ms, "b")))
    clock.call_later(1, lambda: ran.append((clock.now_ms, "a")))
    clock.call_later(5, lambda: ran.append((clock.now_ms, "c")))
    assert clock.advance(10) == 3
    assert ran == [(1, "a"), (5, "b"), (5, "c")]
    assert clock.now_ms == 10


def test_callback_scheduled_for_now_runs_within_the_same_advance() -> None:
    clock = FakeClock()
    ran: list[int] = []

    def outer() -> None:
        clock.call_later(0, lambda: ran.append(clock.now_ms))

    clock.call_later(2, outer)
    assert clock.advance(2) == 2
    assert ran == [2]


def test_cancelled_callback_never_runs_and_is_not_pending() -> None:
    clock = FakeClock()
    ran: list[str] = []
    handle = clock.call_later(3, lambda: ran.append("x"))
    handle.cancel()
    assert (clock.pending(), clock.next_deadline(), clock.advance(5), ran) == (0, None, 0, [])


def test_run_next_jumps_to_the_next_deadline_only() -> None:
    clock = FakeClock(start_ms=100)
    clock.call_later(7, lambda: None)
    clock.call_later(9, lambda: None)
    assert clock.run_next() is True
    assert (clock.now_ms, clock.monotonic(), clock.next_deadline()) == (107, 0.107, 109)
    assert clock.run_next(limit_ms=108) is False


def test_time_never_goes_back() -> None:
    clock = FakeClock(start_ms=10)
    with pytest.raises(ValueError, match="time cannot go back from 10 to 5"):
        clock.advance_to(5)
    with pytest.raises(ValueError, match="negative delay -1"):
        clock.call_later(-1, lambda: None)
