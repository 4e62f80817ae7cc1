"""A deterministic cluster simulator for the sans-IO Raft core (FoundationDB/TigerBeetle style).

Owns: `SimCluster`, which runs N `RaftCore`s on one `FakeClock` with a seeded lossy network
(`SimNetwork`), per-server durable/volatile storage, crash/restart, partitions, membership changes,
snapshots and clients, checks Raft's safety properties after every step (`SafetyChecker`) and the
clients' history for linearizability at the end; `run_seeds` and the command line
``python -m pyra_dist.testing.sim --seeds N [--seed S] [--servers K]``.
Must not: read the wall clock or any randomness but ``random.Random(seed)`` (same seed, same run,
byte for byte), or look inside a core beyond its read-only properties (``role``, ``current_term``,
``commit_index``, ``members``): every safety judgement is made from effects the simulator executed.

Theory of operation
-------------------
* One step = one event handled by one core. Everything that happens later (message delivery,
  disk completion, timers, ticks, client think time, faults) is a callback on the `FakeClock`; the
  loop pops them in (time, scheduling order) order.
* Storage follows the core's interpreter contract (``pyra_dist.core.effects``): ``AppendToLog``,
  ``TruncateLog`` and ``WriteSnapshot`` go into a per-server FIFO "disk" and become durable after a
  random delay, then the completion event (``LogWritten``/``SnapshotWritten``) is fed back;
  ``PersistMeta`` and ``InstallSnapshot`` are durable at once; ``PersistLastApplied`` lands after a
  delay on a separate channel (a different file in Ra). A crash throws away the core, its timers,
  the disk queue and everything in flight to it; a restart builds a new core from what is durable.
* Besides the durable log each server has a *shadow* log to which every write is applied when the
  effect is executed: that is the log the core believes it has, and the one the checker inspects.
* Clients issue register operations (`workload`) as ``process_command`` calls (``await_consensus``)
  or consistent queries, one at a time each, to the server they think leads, and follow redirects.
  A ``{redirect, _}`` answer means "not appended" (the op leaves the history); no answer before
  the client timeout makes it indeterminate.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
import traceback
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TypeAlias, assert_never

from pyra_dist.core.effects import (
    AppendToLog,
    CancelTimer,
    ClusterChanged,
    DemonitorServer,
    Effect,
    ForwardCommand,
    InstallSnapshot,
    MachineEffect,
    MonitorNode,
    MonitorServer,
    Notify,
    OkReply,
    PersistLastApplied,
    PersistMeta,
    Redirect,
    Rejected,
    Reply,
    RoleChanged,
    SendRpc,
    StartTimer,
    Stop,
    TruncateLog,
    WrapReply,
    WriteSnapshot,
)
from pyra_dist.core.events import (
    CommandRequest,
    Event,
    JoinRequest,
    LeaveRequest,
    LogWritten,
    NodeDown,
    NodeUp,
    PeerCallFailed,
    PeerDown,
    PeerMessage,
    QueryRequest,
    SnapshotWritten,
    Tick,
    TimerFired,
    TimerKey,
    TransferLeadershipRequest,
    TriggerElection,
)
from pyra_dist.core.log_view import InMemoryLogView, LogView
from pyra_dist.core.machine import ApplyMeta
from pyra_dist.core.messages import (
    AppendEntriesReply,
    InstallSnapshotRpc,
    PeerRpc,
    PreVoteRpc,
    RequestVoteResult,
    RequestVoteRpc,
)
from pyra_dist.core.server import RaftCore
from pyra_dist.core.state import CoreConfig
from pyra_dist.testing.clock import FakeClock, TimerHandle
from pyra_dist.testing.faults import Fault, FaultConfig, choose_fault
from pyra_dist.testing.history import HistoryRecorder
from pyra_dist.testing.invariants import SafetyChecker, Violation
from pyra_dist.testing.linearizability import CheckOutcome, check_linearizability
from pyra_dist.testing.models import KvModel, KvOp, Read
from pyra_dist.testing.network import NetworkConfig, SimNetwork
from pyra_dist.testing.workload import RecordingMachine, RegisterKvMachine, command_for, random_op
from pyra_dist.types import AFTER_LOG_APPEND, AWAIT_CONSENSUS, Entry, Index, Role, ServerId, Term

__all__ = [
    "PROFILES",
    "CoreFactory",
    "SimCluster",
    "SimConfig",
    "SimResult",
    "main",
    "replay_command",
    "run_seeds",
]

Meta: TypeAlias = tuple[Term, ServerId | None, Index]
CoreFactory: TypeAlias = Callable[[CoreConfig, LogView, Meta], RaftCore]
"""Builds a core; tests pass a subclass of `RaftCore` with a deliberately broken rule."""

Address: TypeAlias = Hashable  # a ServerId or a client name


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """Size and fault profile of one simulated history.

    Attributes:
        servers: initial cluster size (3, 5 or 7).
        clients: concurrent clients (each has at most one operation open).
        keys: register keys the clients use (each key is checked separately).
        duration_ms: simulated time during which clients and the nemesis act.
        settle_ms: time after ``duration_ms`` with every fault healed, so open calls finish.
        client_timeout_ms: a call without an answer after this long becomes indeterminate.
        think_ms: a client waits uniform(0, think_ms) between operations.
        consistent_reads: fraction of reads sent as consistent queries instead of commands.
        release_every: the machine emits ``release_cursor`` at every index divisible by this.
        snapshot_interval: the core's ``snapshot_interval`` (Ra: 4096): a release cursor takes a
            snapshot once it is this far past the last one; small, so snapshots happen constantly.
        disk_ms: (min, max) delay of a log write, a snapshot write and a last_applied write.
        disk_stall: probability that a log write stalls (a slow fsync); later writes queue behind it.
        disk_stall_ms: (min, max) duration of a stall.
        tick_ms: period of the ``Tick`` event (Ra's ``tick_timeout``).
        call_timeout_ms: a peer gen call (vote, pre-vote, snapshot chunk) without a result after
            this long is reported to the caller as ``PeerCallFailed``.
        detector_ms: period of the failure detector (aten stand-in) that emits NodeDown/NodeUp.
        network: message fault rates.
        faults: nemesis schedule; None disables faults.
        max_steps: hard cap on core steps (a livelock guard).
        check_steps: step budget of the linearizability check (deterministic timeout).
    """

    servers: int = 3
    clients: int = 3
    keys: int = 2
    duration_ms: int = 3000
    settle_ms: int = 4000
    client_timeout_ms: int = 2500
    think_ms: int = 60
    consistent_reads: float = 0.25
    release_every: int = 4
    snapshot_interval: int = 6
    disk_ms: tuple[int, int] = (1, 8)
    disk_stall: float = 0.01
    disk_stall_ms: tuple[int, int] = (100, 1500)
    tick_ms: int = 1000
    call_timeout_ms: int = 1000
    detector_ms: int = 250
    network: NetworkConfig = field(
        default_factory=lambda: NetworkConfig(drop=0.02, duplicate=0.02, min_delay_ms=1, max_delay_ms=15)
    )
    faults: FaultConfig | None = field(default_factory=FaultConfig)
    max_steps: int = 200_000
    check_steps: int = 200_000


@dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    """Outcome of one seeded history.

    Attributes:
        seed: the seed.
        servers: initial cluster size.
        steps: core steps executed.
        operations: client operations in the history (completed + indeterminate).
        violations: every safety violation and, last, a linearizability failure if any.
        trace_hash: SHA-256 over the trace (same seed -> same hash).
        trace: the full trace lines when the run was traced, else empty.
        linearizable: the checker's verdict.
    """

    seed: int
    servers: int
    steps: int
    operations: int
    violations: tuple[Violation, ...]
    trace_hash: str
    trace: tuple[str, ...]
    linearizable: CheckOutcome

    @property
    def ok(self) -> bool:
        """No violation (an UNKNOWN linearizability verdict is not a violation)."""
        return not self.violations


@dataclass(frozen=True, slots=True)
class GetKey:
    """A consistent-query function reading one register (a dataclass so traces are reproducible)."""

    key: Hashable

    def __call__(self, state: object) -> object:
        assert isinstance(state, dict)
        return state.get(self.key)


@dataclass(frozen=True, slots=True)
class CallResult:
    """A peer's answer to a gen call, travelling back to the caller with the call's token."""

    token: object
    message: PeerMessage


@dataclass(frozen=True, slots=True)
class ClientReplyMsg:
    """A server's reply travelling back to a client over the network."""

    to: object
    reply: object


class _Server:
    """One simulated server: durable storage, shadow log, the running core and its timers."""

    def __init__(self, server_id: ServerId, cluster: tuple[ServerId, ...]) -> None:
        self.id = server_id
        self.cluster = cluster  # the configuration it was started with
        self.durable = InMemoryLogView()
        self.shadow = InMemoryLogView()
        self.meta: tuple[Term, ServerId | None] = (0, None)
        self.durable_last_applied: Index = 0
        self.core: RaftCore | None = None
        self.incarnation = 0
        self.disk_epoch = 0
        self.disk_free_at = 0  # FIFO disk: the next write completes no earlier than this
        self.meta_free_at = 0
        self.timers: dict[TimerKey, TimerHandle] = {}
        self.monitored_servers: set[ServerId] = set()
        self.monitored_nodes: dict[str, bool] = {}
        self.removed = False  # left the cluster for good
        self.restart_pending = False

    @property
    def up(self) -> bool:
        return self.core is not None and self.core.role != Role.STOPPED


@dataclass(slots=True)
class _Client:
    name: str
    hint: ServerId | None = None
    op_id: int | None = None
    op: KvOp | None = None
    token: object = None
    timeout: TimerHandle | None = None
    seq: int = 0


def _default_factory(config: CoreConfig, log: LogView, meta: Meta) -> RaftCore:
    return RaftCore(config, log, meta)


class SimCluster:
    """One seeded history: build with a seed, call `run` once."""

    def __init__(
        self,
        seed: int,
        config: SimConfig | None = None,
        *,
        core_factory: CoreFactory = _default_factory,
        trace: bool = False,
    ) -> None:
        """Args:
        seed: the only source of randomness.
        config: history size and fault profile.
        core_factory: builds cores (inject broken cores here).
        trace: keep every trace line (otherwise only their hash).
        """
        self.seed = seed
        self.config = config or SimConfig()
        self._factory = core_factory
        self._keep_trace = trace
        master = random.Random(seed)
        # Independent streams, so adding draws to one part does not perturb the others.
        self._net_rng = random.Random(master.getrandbits(64))
        self._fault_rng = random.Random(master.getrandbits(64))
        self._client_rng = random.Random(master.getrandbits(64))
        self._disk_rng = random.Random(master.getrandbits(64))
        self._core_rng = random.Random(master.getrandbits(64))
        self.clock = FakeClock()
        self.net: SimNetwork[Address, object] = SimNetwork(
            self.clock, self._net_rng, self._deliver, self.config.network
        )
        self.checker = SafetyChecker()
        self.history: HistoryRecorder[KvOp, object] = HistoryRecorder()
        self.steps = 0
        self._trace: list[str] = []
        self._hash = hashlib.sha256()
        ids = tuple(ServerId(f"s{i}", f"n{i}@sim") for i in range(1, self.config.servers + 1))
        self.servers: dict[ServerId, _Server] = {sid: _Server(sid, ids) for sid in ids}
        self._next_server = self.config.servers + 1
        self._clients = [_Client(f"c{i}") for i in range(self.config.clients)]
        self._keys = [f"k{i}" for i in range(self.config.keys)]
        self._next_value = 1
        self._call_seq = 0
        self._call_token: dict[object, object] = {}  # call token of a peer gen call -> caller id
        # from_ token -> (index, term) of the entry applied for it (acknowledgement bookkeeping).
        self._applied_from: dict[object, tuple[Index, Term]] = {}
        # Pending membership changes: (server, index, term) to stop once committed.
        self._pending_leaves: list[tuple[ServerId, Index, Term]] = []
        self._pending_change: object = None
        self._open_calls: set[object] = set()  # tokens of peer gen calls still waiting for a result

    # -- tracing --------------------------------------------------------------------------------

    def _note(self, line: str) -> None:
        text = f"{self.clock.now_ms} {line}"
        self._hash.update(text.encode())
        self._hash.update(b"\n")
        if self._keep_trace:
            self._trace.append(text)

    # -- running --------------------------------------------------------------------------------

    def run(self) -> SimResult:
        """Run the whole history and check it.

        Returns:
            The `SimResult`; ``violations`` is empty when every check passed.
        """
        cfg = self.config
        for server in self.servers.values():
            self._boot(server)
        first = next(iter(self.servers))
        # ra:start_cluster triggers an election on one member.
        self.clock.call_later(5, lambda: self._step(self.servers[first], TriggerElection()))
        self.clock.call_later(cfg.detector_ms, self._detect)
        for client in self._clients:
            self.clock.call_later(self._client_rng.randint(50, 300), partial(self._issue, client))
        if cfg.faults is not None:
            self._schedule_fault(cfg.faults)
        self.clock.call_at(cfg.duration_ms, self._end_faults)
        end = cfg.duration_ms + cfg.settle_ms
        while self.steps < cfg.max_steps and not self.checker.violations:
            if not self.clock.run_next(limit_ms=end):
                break
        return self._finish()

    def _finish(self) -> SimResult:
        for client in self._clients:
            if client.op_id is not None:
                self.history.info(client.op_id)
                client.op_id = None
        self.checker.check_acknowledged()
        violations = list(self.checker.violations)
        ops = self.history.history()
        outcome = CheckOutcome.UNKNOWN
        if not violations:
            model = KvModel()
            result = check_linearizability(model, ops, max_steps=self.config.check_steps)
            outcome = result.outcome
            if outcome is CheckOutcome.ILLEGAL:
                violations.append(Violation("linearizability", result.explain(model)))
        return SimResult(
            seed=self.seed,
            servers=self.config.servers,
            steps=self.steps,
            operations=len(ops),
            violations=tuple(violations),
            trace_hash=self._hash.hexdigest(),
            trace=tuple(self._trace),
            linearizable=outcome,
        )

    # -- servers --------------------------------------------------------------------------------

    def _boot(self, server: _Server) -> None:
        """Build a core from what is durable (start or restart) and run its start effects."""
        server.incarnation += 1
        server.disk_epoch += 1
        server.disk_free_at = server.meta_free_at = self.clock.now_ms
        server.shadow = server.durable.copy()
        server.timers = {}
        server.monitored_servers = set()
        server.monitored_nodes = {}
        self.checker.restarted(server.id)
        self.net.set_up(server.id)
        config = CoreConfig(
            server_id=server.id,
            cluster=server.cluster,
            machine=RecordingMachine(
                RegisterKvMachine(self.config.release_every), partial(self._applied, server)
            ),
            rng=random.Random(self._core_rng.getrandbits(64)),
            snapshot_interval=self.config.snapshot_interval,
        )
        term, voted_for = server.meta
        server.core = None
        core = self._factory(config, server.durable, (term, voted_for, server.durable_last_applied))
        server.core = core
        self._note(f"{server.id} boot term={term} applied={server.durable_last_applied}")
        self._execute(server, core.start())
        # Ra's tick (tick_timeout); a random phase keeps servers from ticking in lockstep.
        self.clock.call_later(
            self._disk_rng.randint(1, self.config.tick_ms), partial(self._tick, server, server.incarnation)
        )

    def _tick(self, server: _Server, incarnation: int) -> None:
        if server.incarnation != incarnation or not server.up:
            return
        self._step(server, Tick(system_time=self.clock.now_ms))
        self.clock.call_later(self.config.tick_ms, partial(self._tick, server, incarnation))

    def _crash(self, server: _Server) -> None:
        """kill -9: only durable state survives."""
        self._note(f"{server.id} crash")
        server.core = None
        for handle in server.timers.values():
            handle.cancel()
        server.timers = {}
        server.disk_epoch += 1
        self.net.set_down(server.id)
        # Process monitors on the crashed server fire (reason noproc).
        for other in self.servers.values():
            if other.up and server.id in other.monitored_servers:
                other.monitored_servers.discard(server.id)
                self.clock.call_later(
                    1,
                    partial(self._step_if, other, other.incarnation, PeerDown(server.id, "noproc")),
                )

    def _step_if(self, server: _Server, incarnation: int, event: Event) -> None:
        if server.incarnation == incarnation:
            self._step(server, event)

    def _step(self, server: _Server, event: Event) -> None:
        """Feed one event to a running core and execute its effects."""
        core = server.core
        if core is None:
            return
        self.steps += 1
        self._note(
            f"{server.id} <- {event!r}" if self._keep_trace else f"{server.id.name} {type(event).__name__}"
        )
        try:
            effects = core.handle(event)
        except Exception as exc:  # a crashing core is a finding, reported with its seed
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self.checker.violations.append(
                Violation(
                    "core_exception",
                    f"{server.id} handling {event!r}: {exc!r} at {where.filename}:{where.lineno}",
                )
            )
            return
        self._execute(server, effects)
        if server.core is core:
            shadow = server.shadow if core.role == Role.LEADER else None
            self.checker.commit_index(server.id, core.commit_index, shadow.term_at if shadow else None)
            self._check_leaves()

    # -- effects --------------------------------------------------------------------------------

    def _execute(self, server: _Server, effects: Sequence[Effect]) -> None:
        for effect in effects:
            if server.core is None:
                return
            self._effect(server, effect)

    def _effect(self, server: _Server, effect: Effect) -> None:
        core = server.core
        assert core is not None
        match effect:
            case SendRpc(to=to, rpc=rpc, reply_to=reply_to):
                if isinstance(rpc, RequestVoteResult) and rpc.vote_granted:
                    self.checker.vote_granted(server.id, rpc.term, to)
                    # R3: the vote is durable before the result leaves.
                    self.checker.durable_before_reply(server.id, rpc, server.meta == (rpc.term, to))
                elif isinstance(rpc, AppendEntriesReply) and rpc.success:
                    # ra-internals §2.1: last_index/last_term name the last *written* entry. (Ra's
                    # mismatch replies name last_applied instead, which a follower may not have
                    # written yet; that is harmless as it is at or below a commit index, see
                    # docs/internals/simulator.md, finding F3, so failure replies are not checked.)
                    holds = self._durably_holds(server.id, rpc.last_index, rpc.last_term)
                    self.checker.durable_before_reply(server.id, rpc, holds)
                if reply_to is not None:
                    msg: object = CallResult(reply_to, PeerMessage(sender=server.id, msg=rpc))
                elif isinstance(rpc, (PreVoteRpc, RequestVoteRpc, InstallSnapshotRpc)):
                    self._call_seq += 1
                    token = (server.id.name, self._call_seq)
                    msg = PeerMessage(sender=server.id, msg=rpc, call=token)
                    self._open_calls.add(token)
                    # A gen call without a result ends with an exit (timeout, noproc); the core hears
                    # of it as PeerCallFailed (Ra's snapshot sender crashing, ra-internals §2.5).
                    self.clock.call_later(
                        self.config.call_timeout_ms,
                        partial(self._call_timeout, server, server.incarnation, token, to, rpc),
                    )
                else:
                    msg = PeerMessage(sender=server.id, msg=rpc)
                self.net.send(server.id, to, msg)
            case Reply(to=to, reply=reply):
                if isinstance(to, tuple) and to and isinstance(to[0], str):
                    self.net.send(server.id, to[0], ClientReplyMsg(to, reply), duplicable=False)
            case Notify() | Rejected() | MachineEffect() | ClusterChanged():
                pass  # pipelined-command events, machine side effects, informational
            case PersistLastApplied(index=index):
                self._meta_write(server, index)
            case ForwardCommand(to=to, request=request):
                self.net.send(server.id, to, request, duplicable=False)
            case AppendToLog(entries=entries):
                self._append(server, entries)
            case TruncateLog(last_index=last_index):
                self._truncate(server, last_index)
            case PersistMeta(term=term, voted_for=voted_for):
                server.meta = (term, voted_for)
            case WriteSnapshot(meta=meta, state=state):
                server.shadow.write_snapshot(meta, state)
                self._disk(
                    server,
                    lambda: server.durable.write_snapshot(meta, state),
                    SnapshotWritten(index=meta.index, term=meta.term),
                )
            case InstallSnapshot(meta=meta, state=state):
                old = self._terms_from(server.shadow, meta.index + 1)
                self.checker.log_rewritten(server.id, meta.index + 1, old, {})
                server.durable.install_snapshot(meta, state)
                server.shadow.install_snapshot(meta, state)
                server.disk_epoch += 1  # earlier queued writes are superseded
            case StartTimer(key=key, after_ms=after_ms):
                self._start_timer(server, key, after_ms)
            case CancelTimer(key=key):
                handle = server.timers.pop(key, None)
                if handle is not None:
                    handle.cancel()
            case RoleChanged(new=new):
                self._note(f"{server.id} role {effect.old.value}->{new.value} term={core.current_term}")
                if new == Role.LEADER:
                    snap = server.shadow.snapshot_meta()
                    self.checker.leader_elected(
                        server.id, core.current_term, server.shadow.term_at, snap.index if snap else 0
                    )
            case MonitorServer(server_id=sid):
                target = self.servers.get(sid)
                if target is not None and not target.up:
                    self.clock.call_later(
                        1, partial(self._step_if, server, server.incarnation, PeerDown(sid, "noproc"))
                    )
                else:
                    server.monitored_servers.add(sid)
            case DemonitorServer(server_id=sid):
                server.monitored_servers.discard(sid)
            case MonitorNode(node=node):
                up = self._node_reachable(node, server.id)
                server.monitored_nodes[node] = up
                event: Event = NodeUp(node) if up else NodeDown(node)
                self.clock.call_later(1, partial(self._step_if, server, server.incarnation, event))
            case Stop(reason=reason, delete_data=_):
                self._note(f"{server.id} stop {reason!r}")
                server.removed = True
                self._crash(server)
            case _:
                assert_never(effect)

    def _start_timer(self, server: _Server, key: TimerKey, after_ms: int) -> None:
        old = server.timers.pop(key, None)
        if old is not None:
            old.cancel()
        incarnation = server.incarnation

        def fire() -> None:
            if server.incarnation == incarnation and server.timers.get(key) is handle:
                del server.timers[key]
                self._step(server, TimerFired(key=key, system_time=self.clock.now_ms))

        handle = self.clock.call_later(max(after_ms, 0), fire)
        server.timers[key] = handle

    def _terms_from(self, log: InMemoryLogView, first: Index) -> dict[Index, Term]:
        last, _ = log.last_index_term()
        out: dict[Index, Term] = {}
        for index in range(first, last + 1):
            term = log.term_at(index)
            if term is not None:
                out[index] = term
        return out

    def _append(self, server: _Server, entries: tuple[Entry, ...]) -> None:
        if not entries:
            return
        first = entries[0].index
        shadow = server.shadow
        last, _ = shadow.last_index_term()
        self.checker.entries_written(server.id, entries, shadow.term_at(first - 1))
        if first <= last:
            old = self._terms_from(shadow, first)
            shadow.append(entries)
            self.checker.log_rewritten(server.id, first, old, self._terms_from(shadow, first))
        else:
            shadow.append(entries)
        written = LogWritten(from_index=first, to_index=entries[-1].index, term=entries[-1].term)
        self._disk(server, lambda: server.durable.append(entries), written)

    def _truncate(self, server: _Server, last_index: Index) -> None:
        old = self._terms_from(server.shadow, last_index + 1)
        server.shadow.truncate(last_index)
        if old:
            self.checker.log_rewritten(server.id, last_index + 1, old, {})
        self._disk(server, lambda: server.durable.truncate(last_index), None)

    def _disk(self, server: _Server, write: Callable[[], None], done: Event | None) -> None:
        """Queue a durable write; it lands after a random delay, in order, then ``done`` is fed."""
        lo, hi = self.config.disk_ms
        if self.config.disk_stall and self._disk_rng.random() < self.config.disk_stall:
            lo, hi = self.config.disk_stall_ms
        at = max(server.disk_free_at, self.clock.now_ms + self._disk_rng.randint(lo, hi))
        server.disk_free_at = at
        epoch = server.disk_epoch

        def land() -> None:
            if server.disk_epoch != epoch:
                return  # crashed (or superseded by InstallSnapshot) before it was durable
            write()
            if done is not None:
                self._step(server, done)

        self.clock.call_at(at, land)

    def _meta_write(self, server: _Server, index: Index) -> None:
        lo, hi = self.config.disk_ms
        at = max(server.meta_free_at, self.clock.now_ms + self._disk_rng.randint(lo, hi))
        server.meta_free_at = at
        incarnation = server.incarnation

        def land() -> None:
            if server.incarnation == incarnation and server.core is not None:
                server.durable_last_applied = max(server.durable_last_applied, index)

        self.clock.call_at(at, land)

    # -- applies and the checker ----------------------------------------------------------------

    def _applied(self, server: _Server, meta: ApplyMeta, command: object, reply: object) -> None:
        durable: bool | None = None
        core = server.core
        if core is not None and not self.checker.is_applied_anywhere(meta.index):
            members = core.members
            holders = sum(1 for m in members if self._durably_holds(m, meta.index, meta.term))
            durable = holders >= len(members) // 2 + 1
        self.checker.applied(server.id, meta.index, meta.term, command, durable)
        if meta.from_ is not None:
            self._applied_from.setdefault(meta.from_, (meta.index, meta.term))

    def _durably_holds(self, sid: ServerId, index: Index, term: Term) -> bool:
        server = self.servers.get(sid)
        if server is None:
            return False
        if index == 0:
            return True
        snap = server.durable.snapshot_meta()
        if snap is not None and snap.index >= index:
            return True
        return server.durable.term_at(index) == term

    # -- network --------------------------------------------------------------------------------

    def _deliver(self, src: Address, dst: Address, msg: object) -> None:
        if not isinstance(dst, ServerId):
            assert isinstance(dst, str)
            self._client_reply(dst, msg)
            return
        server = self.servers.get(dst)
        if server is None or server.core is None:
            return
        if isinstance(msg, ClientReplyMsg):
            return
        if isinstance(msg, CallResult):
            self._open_calls.discard(msg.token)
            msg = msg.message
        assert isinstance(
            msg,
            (PeerMessage, CommandRequest, QueryRequest, JoinRequest, LeaveRequest, TransferLeadershipRequest),
        )
        self._step(server, msg)

    def _call_timeout(
        self, server: _Server, incarnation: int, token: object, peer: ServerId, rpc: PeerRpc
    ) -> None:
        if token in self._open_calls:
            self._open_calls.discard(token)
            self._step_if(server, incarnation, PeerCallFailed(peer=peer, rpc=rpc, reason="timeout"))

    def _node_reachable(self, node: str, observer: ServerId) -> bool:
        for server in self.servers.values():
            if server.id.node == node:
                return server.up and self.net.connected(server.id, observer)
        return False

    def _detect(self) -> None:
        """aten stand-in: report node reachability transitions to servers that registered the node."""
        for server in self.servers.values():
            if not server.up:
                continue
            for node, was_up in sorted(server.monitored_nodes.items()):
                up = self._node_reachable(node, server.id)
                if up != was_up:
                    server.monitored_nodes[node] = up
                    self._step(server, NodeUp(node) if up else NodeDown(node))
        self.clock.call_later(self.config.detector_ms, self._detect)

    # -- clients --------------------------------------------------------------------------------

    def _members_guess(self) -> list[ServerId]:
        return sorted(sid for sid, s in self.servers.items() if not s.removed)

    def _issue(self, client: _Client) -> None:
        if self.clock.now_ms >= self.config.duration_ms:
            return
        rng = self._client_rng
        op = random_op(rng, self._keys, self._next_value)
        self._next_value += 1
        client.seq += 1
        token = (client.name, client.seq)
        client.op = op
        client.token = token
        client.op_id = self.history.invoke(int(client.name[1:]), op)
        target = client.hint if client.hint is not None else rng.choice(self._members_guess())
        self._send_request(client, target, op, token)
        client.timeout = self.clock.call_later(
            self.config.client_timeout_ms, lambda: self._give_up(client, token)
        )

    def _send_request(self, client: _Client, target: ServerId, op: KvOp, token: object) -> None:
        request: Event
        if isinstance(op.op, Read) and self._client_rng.random() < self.config.consistent_reads:
            request = QueryRequest(kind="consistent", query=GetKey(op.key), from_=token)
        else:
            request = CommandRequest(
                data=command_for(op), reply_mode=AWAIT_CONSENSUS, from_=token, system_time=self.clock.now_ms
            )
        self.net.send(client.name, target, request, duplicable=False)

    def _give_up(self, client: _Client, token: object) -> None:
        if client.token != token or client.op_id is None:
            return
        self.history.info(client.op_id)
        self._note(f"{client.name} timeout {token!r}")
        self._next_op(client, hint=None)

    def _next_op(self, client: _Client, hint: ServerId | None) -> None:
        if client.timeout is not None:
            client.timeout.cancel()
        client.op_id = None
        client.op = None
        client.token = None
        client.hint = hint
        self.clock.call_later(self._client_rng.randint(0, self.config.think_ms), lambda: self._issue(client))

    def _client_reply(self, name: str, msg: object) -> None:
        if name == "nemesis":
            self._nemesis_reply(msg)
            return
        client = next(c for c in self._clients if c.name == name)
        if not isinstance(msg, ClientReplyMsg) or msg.to != client.token or client.op_id is None:
            return  # a late answer to a call already given up
        op_id, token, reply = client.op_id, client.token, msg.reply
        self._note(f"{name} reply {reply!r}")
        match reply:
            case WrapReply(reply=value):
                applied = self._applied_from.get(token)
                if applied is None:
                    self.checker.violations.append(
                        Violation("acknowledged_lost", f"{token!r} answered {value!r} but never applied")
                    )
                else:
                    self.checker.acknowledge(token, *applied)
                self.history.ok(op_id, None if value == "ok" else value)
                self._next_op(client, client.hint)
            case OkReply(value=value, leader=leader):
                self.history.ok(op_id, value)
                self._next_op(client, leader if isinstance(leader, ServerId) else client.hint)
            case Redirect(leader=leader):
                # Not appended anywhere: the operation did not happen.
                self.history.fail(op_id)
                self._next_op(client, leader)
            case _:
                # An error, or an answer we do not model: outcome unknown.
                self.history.info(op_id)
                self._next_op(client, None)

    # -- nemesis --------------------------------------------------------------------------------

    def _schedule_fault(self, faults: FaultConfig) -> None:
        delay = self._fault_rng.randint(faults.min_interval_ms, faults.max_interval_ms)
        if self.clock.now_ms + delay >= self.config.duration_ms:
            return
        self.clock.call_later(delay, lambda: self._fault(faults))

    def _leader(self) -> _Server | None:
        best: _Server | None = None
        for server in self.servers.values():
            core = server.core
            if (
                server.up
                and core is not None
                and core.role == Role.LEADER
                and (best is None or (best.core is not None and core.current_term > best.core.current_term))
            ):
                best = server
        return best

    def _fault(self, faults: FaultConfig) -> None:
        self._schedule_fault(faults)
        rng = self._fault_rng
        fault = choose_fault(rng, faults)
        running = [s for s in self.servers.values() if s.up]
        live_ids = sorted(s.id for s in self.servers.values() if not s.removed)
        leader = self._leader()
        self._note(f"nemesis {fault.value}")
        match fault:
            case Fault.CRASH:
                down = [s for s in self.servers.values() if not s.removed and not s.up]
                # Keep a majority of the original size running so the history makes progress.
                if running and len(down) < (self.config.servers - 1) // 2:
                    victim = rng.choice(running)
                    self._crash(victim)
                    lo, hi = faults.restart_after_ms
                    self.clock.call_later(rng.randint(lo, hi), lambda: self._restart(victim))
            case Fault.RESTART:
                for server in self.servers.values():
                    if not server.removed and not server.up:
                        self._restart(server)
            case Fault.PARTITION:
                ids = list(live_ids)
                rng.shuffle(ids)
                cut = rng.randint(1, len(ids) - 1) if len(ids) > 1 else 1
                self.net.partition([ids[:cut], ids[cut:]])
            case Fault.ISOLATE_LEADER:
                if leader is not None:
                    self.net.isolate(leader.id, live_ids)
            case Fault.ONE_WAY:
                if len(live_ids) > 1:
                    a, b = rng.sample(live_ids, 2)
                    self.net.block(a, b)
            case Fault.HEAL:
                self.net.heal()
            case Fault.LEAVE:
                if leader is not None and leader.core is not None and len(leader.core.members) > 3:
                    victim_id = rng.choice(sorted(leader.core.members))
                    self._membership(leader, LeaveRequest(victim_id, AFTER_LOG_APPEND, None), victim_id)
            case Fault.JOIN:
                if leader is not None and leader.core is not None and len(leader.core.members) < 7:
                    self._join(leader)
            case Fault.TRIGGER_ELECTION:
                if running:
                    target = rng.choice(running)
                    self._step(target, TriggerElection())
            case Fault.TRANSFER_LEADERSHIP:
                if leader is not None and leader.core is not None:
                    others = [m for m in leader.core.members if m != leader.id]
                    if others:
                        self._step(leader, TransferLeadershipRequest(rng.choice(sorted(others)), None))
            case _:
                assert_never(fault)

    def _restart(self, server: _Server) -> None:
        if server.removed or server.up:
            return
        self._boot(server)

    def _membership(self, leader: _Server, request: JoinRequest | LeaveRequest, subject: ServerId) -> None:
        self._call_seq += 1
        token = ("nemesis", self._call_seq)
        self._pending_change = (token, subject, isinstance(request, LeaveRequest))
        self._step(leader, replace(request, from_=token, system_time=self.clock.now_ms))

    def _join(self, leader: _Server) -> None:
        assert leader.core is not None
        sid = ServerId(f"s{self._next_server}", f"n{self._next_server}@sim")
        self._next_server += 1
        server = _Server(sid, tuple(sorted((*leader.core.members, sid))))
        self.servers[sid] = server
        self._boot(server)
        self._membership(leader, JoinRequest(sid, AFTER_LOG_APPEND, None), sid)

    def _nemesis_reply(self, msg: object) -> None:
        pending = self._pending_change
        if not isinstance(msg, ClientReplyMsg) or not isinstance(pending, tuple) or pending[0] != msg.to:
            return
        _, subject, leaving = pending
        self._pending_change = None
        self._note(f"nemesis reply {msg.reply!r}")
        match msg.reply:
            case WrapReply(reply=(int() as index, int() as term)) if leaving:
                self._pending_leaves.append((subject, index, term))
            case _:
                pass

    def _check_leaves(self) -> None:
        if not self._pending_leaves:
            return
        keep = []
        for sid, index, term in self._pending_leaves:
            if self.checker.committed.get(index) == term:
                server = self.servers[sid]
                if not server.removed:
                    server.removed = True
                    if server.up:
                        self._crash(server)
            else:
                keep.append((sid, index, term))
        self._pending_leaves = keep

    def _end_faults(self) -> None:
        """End of the faulty phase: heal the network and restart everything that is down."""
        self._note("heal-all")
        self.net.heal()
        for server in self.servers.values():
            if not server.removed and not server.up:
                self._boot(server)


# ---------------------------------------------------------------------------------------------
# Many seeds and the command line
# ---------------------------------------------------------------------------------------------


PROFILES: dict[str, SimConfig] = {
    "default": SimConfig(),
    # What the CI test runs: short histories, about 450 steps each.
    "ci": SimConfig(duration_ms=1200, settle_ms=2600, clients=2),
    # Longer and nastier: lossy network, frequent faults, more clients and keys.
    "harsh": SimConfig(
        duration_ms=8000,
        settle_ms=5000,
        clients=4,
        keys=3,
        network=NetworkConfig(drop=0.1, duplicate=0.1, min_delay_ms=1, max_delay_ms=40),
        faults=FaultConfig(min_interval_ms=100, max_interval_ms=600, restart_after_ms=(10, 1500)),
        disk_stall=0.05,
    ),
    # Crash-heavy with slow disks: crashes land while overwrites are still unwritten (finding F4).
    "chaos": SimConfig(
        duration_ms=8000,
        settle_ms=5000,
        clients=4,
        keys=3,
        network=NetworkConfig(drop=0.1, duplicate=0.1, min_delay_ms=1, max_delay_ms=40),
        faults=FaultConfig(
            min_interval_ms=80,
            max_interval_ms=400,
            restart_after_ms=(5, 600),
            weights=(
                (Fault.CRASH, 6),
                (Fault.PARTITION, 3),
                (Fault.ISOLATE_LEADER, 3),
                (Fault.HEAL, 2),
                (Fault.TRIGGER_ELECTION, 1),
            ),
        ),
        disk_stall=0.3,
        disk_stall_ms=(50, 800),
    ),
}
"""Named history profiles for the command line (``--profile``)."""


def servers_for_seed(seed: int) -> int:
    """The default cluster size for a seed: 3, 5 and 7 in turn (3 twice as often)."""
    return (3, 5, 3, 7)[seed % 4]


@dataclass(slots=True)
class RunSummary:
    """Totals over many seeds."""

    histories: int = 0
    steps: int = 0
    operations: int = 0
    unknown: int = 0
    failures: list[SimResult] = field(default_factory=list)


def run_seeds(
    seeds: Sequence[int],
    *,
    servers: int | None = None,
    config: SimConfig | None = None,
    core_factory: CoreFactory = _default_factory,
    stop_at_first_failure: bool = False,
) -> RunSummary:
    """Run one history per seed.

    Args:
        seeds: the seeds.
        servers: cluster size for every seed (default: `servers_for_seed`).
        config: the base profile (its ``servers`` is overridden).
        core_factory: builds cores.
        stop_at_first_failure: return as soon as one history fails.

    Returns:
        Totals and every failing result.
    """
    base = config or SimConfig()
    summary = RunSummary()
    for seed in seeds:
        cfg = replace(base, servers=servers if servers is not None else servers_for_seed(seed))
        result = SimCluster(seed, cfg, core_factory=core_factory).run()
        summary.histories += 1
        summary.steps += result.steps
        summary.operations += result.operations
        summary.unknown += result.linearizable is CheckOutcome.UNKNOWN and result.ok
        if not result.ok:
            summary.failures.append(result)
            if stop_at_first_failure:
                break
    return summary


def replay_command(result: SimResult, profile: str = "default") -> str:
    """The shortest command that reproduces ``result`` (run with profile ``profile``)."""
    extra = "" if profile == "default" else f" --profile {profile}"
    return (
        f"python -m pyra_dist.testing.sim --seed {result.seed} --seeds 1 --servers {result.servers}"
        f"{extra} --trace"
    )


def main(argv: Sequence[str] | None = None, *, core_factory: CoreFactory = _default_factory) -> int:
    """Command line: run seeded histories and print one summary line.

    Args:
        argv: arguments (default ``sys.argv[1:]``).
        core_factory: builds cores (tests use it to show how a failure is reported).

    Returns:
        0 when every history passed, 1 otherwise (after printing each failing seed and its replay
        command).
    """
    parser = argparse.ArgumentParser(
        prog="python -m pyra_dist.testing.sim", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seeds", type=int, default=100, help="number of histories")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--servers", type=int, choices=(3, 5, 7), default=None, help="cluster size")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default", help="history profile")
    parser.add_argument("--trace", action="store_true", help="with --seeds 1: print the history's trace")
    args = parser.parse_args(argv)
    seeds = range(args.seed, args.seed + args.seeds)
    profile = PROFILES[args.profile]
    started = time.perf_counter()  # reporting only: never influences a history
    summary = run_seeds(seeds, servers=args.servers, config=profile, core_factory=core_factory)
    seconds = time.perf_counter() - started
    violations = sum(len(r.violations) for r in summary.failures)
    if args.trace and args.seeds == 1:
        cfg = replace(profile, servers=args.servers or servers_for_seed(args.seed))
        for line in SimCluster(args.seed, cfg, core_factory=core_factory, trace=True).run().trace:
            print(line)
    for failure in summary.failures:
        print(f"FAILED seed={failure.seed} servers={failure.servers}")
        for v in failure.violations:
            print(f"  {v}")
        print(f"  replay: {replay_command(failure, args.profile)}")
    rate = summary.histories / seconds if seconds > 0 else 0.0
    print(
        f"sim: histories={summary.histories} steps={summary.steps} violations={violations} "
        f"seconds={seconds:.1f} seeds/s={rate:.1f}"
    )
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
