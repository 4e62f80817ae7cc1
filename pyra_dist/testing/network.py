"""A seeded, lossy, reordering message network for the simulator.

Owns: what happens to a message between ``send`` and delivery: per-message drop, duplication and
random delay (which reorders messages on a link, as Ra tolerates: its AER replies carry enough
state to be idempotent), directed link blocks for partitions, and dropping everything addressed to
a crashed server. Delivery is a callback scheduled on the `FakeClock`.
Must not: draw randomness from anywhere but the ``random.Random`` it is given, or look at the
messages it carries (it is generic over the message type).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pyra_dist.testing.clock import FakeClock

__all__ = ["NetworkConfig", "NetworkStats", "SimNetwork"]

A = TypeVar("A", bound=Hashable)  # an address (a server id)
M = TypeVar("M")  # a message


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkConfig:
    """Fault rates of a `SimNetwork`.

    Attributes:
        drop: probability that a message is lost.
        duplicate: probability that a delivered message is delivered a second time (later).
        min_delay_ms: shortest transit time.
        max_delay_ms: longest transit time (uniform in between; a spread reorders messages).
    """

    drop: float = 0.0
    duplicate: float = 0.0
    min_delay_ms: int = 1
    max_delay_ms: int = 10


@dataclass(slots=True)
class NetworkStats:
    """Counters for reports."""

    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    blocked: int = 0


class SimNetwork(Generic[A, M]):
    """Point-to-point links between addresses with seeded faults.

    A message is checked against the partition both when it is sent and when it would be
    delivered, so a partition also swallows messages already in flight (a cut TCP connection).
    """

    def __init__(
        self,
        clock: FakeClock,
        rng: random.Random,
        deliver: Callable[[A, A, M], None],
        config: NetworkConfig | None = None,
    ) -> None:
        """Args:
        clock: schedules deliveries.
        rng: the only source of randomness.
        deliver: called as ``deliver(src, dst, msg)`` at delivery time.
        config: fault rates (default: reliable, 1-10 ms delays).
        """
        self._clock = clock
        self._rng = rng
        self._deliver = deliver
        self.config = config or NetworkConfig()
        self._blocked: set[tuple[A, A]] = set()
        self._down: set[A] = set()
        # Incarnation per address: bumped when a server goes down so in-flight messages die.
        self._epoch: dict[A, int] = {}
        self.stats = NetworkStats()

    # -- topology -------------------------------------------------------------------------------

    def block(self, src: A, dst: A) -> None:
        """Cut the one-way link ``src -> dst``."""
        self._blocked.add((src, dst))

    def unblock(self, src: A, dst: A) -> None:
        """Restore the one-way link ``src -> dst``."""
        self._blocked.discard((src, dst))

    def partition(self, groups: Iterable[Iterable[A]]) -> None:
        """Replace all blocks by a partition: links between members of different groups are cut.

        Args:
            groups: disjoint groups; addresses in no group (clients) keep all their links.
        """
        sets = [frozenset(g) for g in groups]
        members = frozenset().union(*sets) if sets else frozenset()
        self._blocked.clear()
        for g in sets:
            for a in g:
                for b in members - g:
                    self._blocked.add((a, b))

    def isolate(self, addr: A, others: Iterable[A]) -> None:
        """Cut every link between ``addr`` and ``others`` in both directions."""
        for o in others:
            if o != addr:
                self._blocked.add((addr, o))
                self._blocked.add((o, addr))

    def heal(self) -> None:
        """Remove every block."""
        self._blocked.clear()

    def blocked_links(self) -> frozenset[tuple[A, A]]:
        """Returns: the currently cut one-way links."""
        return frozenset(self._blocked)

    def set_down(self, addr: A) -> None:
        """Mark ``addr`` crashed: messages to it are dropped, including those in flight."""
        self._down.add(addr)
        self._epoch[addr] = self._epoch.get(addr, 0) + 1

    def set_up(self, addr: A) -> None:
        """Mark ``addr`` running again (messages sent before the crash stay lost)."""
        self._down.discard(addr)

    def connected(self, src: A, dst: A) -> bool:
        """Whether a message from ``src`` to ``dst`` would currently get through."""
        # Fast path first: most of the time nothing is cut or down.
        if self._down and dst in self._down:
            return False
        return not self._blocked or (src, dst) not in self._blocked

    # -- traffic --------------------------------------------------------------------------------

    def send(self, src: A, dst: A, msg: M, *, duplicable: bool = True) -> None:
        """Send one message; it may be dropped, delayed, duplicated or reordered.

        A message to oneself is delivered after the minimum delay without faults.

        Args:
            src: sender.
            dst: receiver.
            msg: the message.
            duplicable: False for traffic that must never be duplicated (client calls: a duplicated
                command would be applied twice, which no Erlang link does).
        """
        self.stats.sent += 1
        cfg = self.config
        if src == dst:
            self._schedule(src, dst, msg, cfg.min_delay_ms)
            return
        if not self.connected(src, dst):
            self.stats.blocked += 1
            return
        if cfg.drop and self._rng.random() < cfg.drop:
            self.stats.dropped += 1
            return
        self._schedule(src, dst, msg, self._rng.randint(cfg.min_delay_ms, cfg.max_delay_ms))
        if duplicable and cfg.duplicate and self._rng.random() < cfg.duplicate:
            self.stats.duplicated += 1
            self._schedule(src, dst, msg, self._rng.randint(cfg.min_delay_ms, 2 * cfg.max_delay_ms))

    def _schedule(self, src: A, dst: A, msg: M, delay: int) -> None:
        epoch = self._epoch.get(dst, 0)

        def arrive() -> None:
            if self._epoch.get(dst, 0) != epoch or not self.connected(src, dst):
                self.stats.blocked += 1
                return
            self.stats.delivered += 1
            self._deliver(src, dst, msg)

        self._clock.call_later(delay, arrive)
