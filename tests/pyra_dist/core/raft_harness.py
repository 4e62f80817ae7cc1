"""A tiny in-test harness: N ``RaftCore``s, in-memory logs, and a FIFO of messages delivered by hand.

Not the randomized simulator (``pyra_dist.testing``): deliveries are explicit and deterministic so
that scenario tests can state exactly which message goes where. Log writes are applied to the
``InMemoryLogView`` immediately but confirmed (``LogWritten``) only when the test delivers the
queued completion, so durability ordering stays visible.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pyra_dist.core.effects import (
    AppendToLog,
    CancelTimer,
    Effect,
    InstallSnapshot,
    PersistMeta,
    Reply,
    SendRpc,
    StartTimer,
    TruncateLog,
    WriteSnapshot,
)
from pyra_dist.core.events import (
    Event,
    LogWritten,
    PeerMessage,
    SnapshotWritten,
    TimerFired,
    TimerKey,
    TimerKind,
)
from pyra_dist.core.log_view import InMemoryLogView
from pyra_dist.core.machine import Machine
from pyra_dist.core.server import RaftCore
from pyra_dist.core.state import CoreConfig
from pyra_dist.machines.kv import KvMachine
from pyra_dist.types import Entry, Noop, Role, ServerId, UsrCommand

NODE = "py@vm"


def sid(name: str) -> ServerId:
    """``ServerId(name, "py@vm")``."""
    return ServerId(name, NODE)


@dataclass
class Cluster:
    """Cores keyed by id plus the in-flight queue; every effect is recorded per server."""

    cores: dict[ServerId, RaftCore]
    logs: dict[ServerId, InMemoryLogView]
    queue: deque[tuple[ServerId, Event]] = field(default_factory=deque)
    replies: list[tuple[object, object]] = field(default_factory=list)
    meta: dict[ServerId, tuple[int, ServerId | None]] = field(default_factory=dict)
    timers: dict[ServerId, dict[TimerKey, int]] = field(default_factory=dict)
    effects: list[tuple[ServerId, Effect]] = field(default_factory=list)
    down: set[ServerId] = field(default_factory=set)
    drop: Callable[[ServerId, Event], bool] | None = None

    def __getitem__(self, name: str) -> RaftCore:
        return self.cores[sid(name)]

    def handle(self, name: str | ServerId, event: Event) -> list[Effect]:
        """Feed ``event`` to one core and execute its effects (messages are queued, not delivered)."""
        server = sid(name) if isinstance(name, str) else name
        out = self.cores[server].handle(event)
        self.run(server, out)
        return out

    def run(self, server: ServerId, out: list[Effect]) -> None:
        """Execute effects of ``server`` the way a driver would (see pyra_dist.core.effects)."""
        log = self.logs[server]
        for eff in out:
            self.effects.append((server, eff))
            match eff:
                case SendRpc(to=to, rpc=rpc):
                    if to in self.cores:
                        self.queue.append((to, PeerMessage(sender=server, msg=rpc)))
                case AppendToLog(entries=entries):
                    log.append(entries)
                    last = entries[-1]
                    self.queue.append((server, LogWritten(entries[0].index, last.index, last.term)))
                case TruncateLog(last_index=last_index):
                    log.truncate(last_index)
                case PersistMeta(term=term, voted_for=voted_for):
                    self.meta[server] = (term, voted_for)
                case WriteSnapshot(meta=meta, state=state):
                    log.write_snapshot(meta, state)
                    self.queue.append((server, SnapshotWritten(meta.index, meta.term)))
                case InstallSnapshot(meta=meta, state=state):
                    log.install_snapshot(meta, state)
                case Reply(to=to, reply=reply):
                    self.replies.append((to, reply))
                case StartTimer(key=TimerKind.FLUSH_COMMANDS):
                    # Ra's self-cast flush_commands: handled after what is already queued.
                    self.queue.append((server, TimerFired(key=TimerKind.FLUSH_COMMANDS)))
                case StartTimer(key=key, after_ms=ms):
                    self.timers.setdefault(server, {})[key] = ms
                case CancelTimer(key=key):
                    self.timers.setdefault(server, {}).pop(key, None)
                case _:
                    pass

    def step(self) -> bool:
        """Deliver the oldest queued event; False if the queue is empty."""
        if not self.queue:
            return False
        to, event = self.queue.popleft()
        if to in self.down or (self.drop is not None and self.drop(to, event)):
            return True
        self.handle(to, event)
        return True

    def settle(self, max_steps: int = 10_000) -> int:
        """Deliver until the queue is empty; return the number of deliveries."""
        steps = 0
        while self.step():
            steps += 1
            assert steps < max_steps, "cluster did not settle"
        return steps

    def leader(self) -> RaftCore:
        """The unique leader of the highest term (a deposed leader that was cut off may linger)."""
        top = max(c.term for c in self.cores.values() if c.role == Role.LEADER)
        leaders = [c for c in self.cores.values() if c.role == Role.LEADER and c.term == top]
        assert len(leaders) == 1, [c.role for c in self.cores.values()]
        return leaders[0]

    def elect(self, name: str) -> RaftCore:
        """Trigger an election on ``name`` and deliver everything; return the leader."""
        from pyra_dist.core.events import TriggerElection

        self.handle(name, TriggerElection())
        self.settle()
        leader = self.leader()
        assert leader.id == sid(name)
        return leader

    def restart(self, name: str, machine: Machine | None = None) -> list[Effect]:
        """Crash and restart ``name`` from what is durable: its log view and persisted meta.

        Returns the effects of ``start()``.
        """
        server = sid(name)
        old = self.cores[server]
        term, voted_for = self.meta.get(server, (0, None))
        self.logs[server] = self.logs[server].copy()
        core = RaftCore(
            CoreConfig(
                server_id=server,
                cluster=old.config.cluster,
                machine=machine or old.config.machine,
                rng=random.Random(7),
                snapshot_interval=old.config.snapshot_interval,
            ),
            self.logs[server],
            (term, voted_for, old.last_applied),
        )
        self.cores[server] = core
        out = core.start()
        self.run(server, out)
        return out

    def states(self) -> dict[str, object]:
        """Machine state per server name."""
        return {s.name: c.machine_state for s, c in self.cores.items()}

    def effects_of(self, name: str) -> Iterator[Effect]:
        """Effects recorded for ``name``."""
        return (e for s, e in self.effects if s == sid(name))


def make_cluster(
    names: tuple[str, ...] = ("s1", "s2", "s3"),
    machine: Machine | None = None,
    seed: int = 1,
    initial: tuple[str, ...] | None = None,
    **config: object,
) -> Cluster:
    """Build a cluster of fresh servers (all started, none elected).

    ``initial`` names the initial members every server is configured with (default: all ``names``),
    so that servers outside it model members started later for ``add_member``.
    """
    ids = tuple(sid(n) for n in names)
    members = tuple(sid(n) for n in initial) if initial else ids
    logs = {i: InMemoryLogView() for i in ids}
    cores = {
        i: RaftCore(
            CoreConfig(
                server_id=i,
                cluster=members,
                machine=machine or KvMachine(),
                rng=random.Random(seed + k),
                **config,  # type: ignore[arg-type]
            ),
            logs[i],
        )
        for k, i in enumerate(ids)
    }
    cluster = Cluster(cores=cores, logs=logs)
    for i, core in cores.items():
        cluster.run(i, core.start())
    return cluster


class FixedRng(random.Random):
    """An rng whose ``randint`` returns the upper bound and whose tokens are 42 (exact assertions)."""

    def randint(self, a: int, b: int) -> int:
        return b

    def getrandbits(self, k: int) -> int:
        return 42


S1, S2, S3 = sid("s1"), sid("s2"), sid("s3")
LONG_MS = 10 * 100 + 1000  # uniform(10B) + P with FixedRng
SHORT_MS = 5 * 100 + 100  # uniform(5B) + B
REALLY_SHORT_MS = 100  # uniform(B)


def single(
    name: str = "s1",
    members: tuple[str, ...] = ("s1", "s2", "s3"),
    entries: list[Entry] | None = None,
    term: int = 0,
    voted_for: ServerId | None = None,
    last_applied: int = 0,
    machine: Machine | None = None,
    view: InMemoryLogView | None = None,
    **config: object,
) -> RaftCore:
    """One core in a given persisted state (``start()`` is not called, so no timer is armed)."""
    me = sid(name)
    return SoloCore(
        CoreConfig(
            server_id=me,
            cluster=tuple(sid(m) for m in members),
            machine=machine or KvMachine(),
            rng=FixedRng(),
            **config,  # type: ignore[arg-type]
        ),
        view if view is not None else InMemoryLogView(entries or []),
        (term, voted_for, last_applied),
    )


class SoloCore(RaftCore):
    """A core whose log effects are applied to its ``InMemoryLogView`` right away (a minimal driver)."""

    def handle(self, event: Event) -> list[Effect]:
        out = super().handle(event)
        view = self.log.view
        assert isinstance(view, InMemoryLogView)
        for eff in out:
            match eff:
                case AppendToLog(entries=entries):
                    view.append(entries)
                case TruncateLog(last_index=last_index):
                    view.truncate(last_index)
                case WriteSnapshot(meta=meta, state=state):
                    view.write_snapshot(meta, state)
                case InstallSnapshot(meta=meta, state=state):
                    view.install_snapshot(meta, state)
                case _:
                    pass
        return out


def usr(index: int, term: int, data: object = ("put", "k", 1)) -> Entry:
    """A ``'$usr'`` entry without reply."""
    return Entry(index, term, UsrCommand(data=data))


def noop(index: int, term: int) -> Entry:
    """A noop entry (machine version 0)."""
    return Entry(index, term, Noop(machine_version=0))
