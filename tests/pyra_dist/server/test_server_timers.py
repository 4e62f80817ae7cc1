"""TimerService: every server's timers on one loop handle, armed only while some timer is live."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from pyra_dist.server.timers import TimerService


class ManualClock:
    """Seconds that move only when told; records the single wake-up the service arms."""

    def __init__(self) -> None:
        self.now = 0.0
        self.scheduled: list[tuple[float, Callable[[], None], list[bool]]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        cancelled = [False]
        self.scheduled.append((when, callback, cancelled))
        return Handle(cancelled)

    def live(self) -> list[float]:
        return [when for when, _, cancelled in self.scheduled if not cancelled[0]]

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while True:
            due = [s for s in self.scheduled if not s[2][0] and s[0] <= self.now]
            if not due:
                return
            for entry in due:
                self.scheduled.remove(entry)
                entry[1]()


class Handle:
    def __init__(self, cancelled: list[bool]) -> None:
        self._cancelled = cancelled

    def cancel(self) -> None:
        self._cancelled[0] = True


class Owner:
    def __init__(self, name: str, fired: list[tuple[str, Hashable]]) -> None:
        self.name = name
        self.fired = fired

    def timer_fired(self, kind: Hashable) -> None:
        self.fired.append((self.name, kind))


def test_timers_of_many_owners_share_one_loop_wake_up_for_the_earliest_deadline() -> None:
    clock, fired = ManualClock(), []
    service = TimerService(clock)
    owners = [Owner(f"s{i}", fired) for i in range(100)]
    for i, owner in enumerate(owners):
        service.start(owner, "election", 1.0 + i / 100)

    assert (len(service), clock.live()) == (100, [1.0])
    clock.advance(1.005)
    assert fired == [("s0", "election")]
    assert clock.live() == [1.01]


def test_restarting_a_timer_replaces_it_and_cancel_forgets_it() -> None:
    clock, fired = ManualClock(), []
    service = TimerService(clock)
    a, b = Owner("a", fired), Owner("b", fired)
    service.start(a, "election", 0.5)
    service.start(a, "election", 2.0)
    service.start(b, "tick", 1.0)
    service.cancel(b, "tick")

    clock.advance(1.5)
    assert fired == []
    clock.advance(0.5)
    assert fired == [("a", "election")]
    assert not service.is_armed(a, "election")


def test_an_idle_service_keeps_no_wake_up_armed() -> None:
    clock = ManualClock()
    service = TimerService(clock)
    owner = Owner("a", [])
    service.start(owner, "election", 1.0)
    service.start(owner, "other", 3.0)
    service.cancel_all(owner)

    assert (len(service), clock.live()) == (0, [])


def test_due_timers_fire_in_deadline_order_within_one_wake_up() -> None:
    clock, fired = ManualClock(), []
    service = TimerService(clock)
    for name, after in (("c", 0.3), ("a", 0.1), ("b", 0.2)):
        service.start(Owner(name, fired), "t", after)

    clock.advance(1.0)
    assert fired == [("a", "t"), ("b", "t"), ("c", "t")]
    assert clock.live() == []


def test_rearming_very_often_keeps_the_heap_bounded() -> None:
    clock = ManualClock()
    service = TimerService(clock)
    owner = Owner("a", [])
    for k in range(20_000):
        service.start(owner, "election", 1.0 + k / 1e6)
    assert len(service._heap) <= 4 * len(service) + 1025
