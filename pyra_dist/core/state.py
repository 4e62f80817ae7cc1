"""Configuration and shared state of one Raft server, plus the helpers every role uses.

Owns: ``CoreConfig``, ``PeerProgress`` (the leader's per-peer bookkeeping, Ra's peer map) and
``CoreBase``: the mutable fields of a server (Ra's ``ra_server_state()`` map) and role-independent
transitions (term adoption, role changes, timers, redirects of parked calls). Must not: handle
events itself (role mixins do) or touch anything but effects.

Role mixins (``follower.py``, ``candidate.py``, ``leader.py``, ``apply.py``) subclass ``CoreBase`` and
``server.RaftCore`` combines them; hooks that one mixin calls on another are declared here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pyra_dist.core.effects import (
    CancelTimer,
    ClientReply,
    DemonitorServer,
    Effect,
    ForwardCommand,
    MachineEffect,
    MonitorNode,
    MonitorServer,
    PersistMeta,
    Redirect,
    Rejected,
    Reply,
    RoleChanged,
    StartTimer,
)
from pyra_dist.core.events import CommandRequest, Event, PeerMessage, QueryRequest, TimerKind
from pyra_dist.core.log_view import LogView, PickleSnapshotCodec, SnapshotCodec
from pyra_dist.core.machine import Machine, MachineConfig, MachineEffectT
from pyra_dist.core.messages import PeerRpc, PreVoteRpc, RequestVoteRpc
from pyra_dist.core.raft_log import RaftLog
from pyra_dist.types import Index, NoReply, NotifyReply, Role, ServerId, SnapshotMeta, Term


class Rng(Protocol):
    """The randomness the core uses (``random.Random`` fits; the core never imports ``random``)."""

    def randint(self, a: int, b: int) -> int:
        """Return a uniform integer in ``[a, b]``."""
        ...

    def getrandbits(self, k: int) -> int:
        """Return ``k`` random bits as an integer."""
        ...


@dataclass(slots=True)
class CoreConfig:
    """Static configuration of one server (Ra's server config, ra-internals §7.7).

    ``rng`` is the only source of randomness (election jitter); inject a seeded one for tests.
    """

    server_id: ServerId
    cluster: tuple[ServerId, ...]
    machine: Machine
    rng: Rng
    machine_args: Mapping[str, object] = field(default_factory=dict)
    broadcast_time_ms: int = 100
    poll_interval_ms: int = 1000
    await_condition_timeout_ms: int = 30_000
    receive_snapshot_timeout_ms: int = 30_000
    max_pipeline_count: int = 4096
    max_append_entries_batch: int = 128
    snapshot_interval: int = 4096
    snapshot_chunk_size: int = 1_000_000
    snapshot_send_ticks: int = 120
    snapshot_codec: SnapshotCodec = field(default_factory=PickleSnapshotCodec)
    low_priority_flush_size: int = 25


@dataclass(slots=True)
class PeerProgress:
    """The leader's view of one peer (Ra 2.2.0 peer map: next/match/commit_index_sent/query_index/status).

    Invariant: ``match_index < next_index``; ``status`` is ``"normal"``, or ``"sending_snapshot"``
    while a snapshot transfer is in flight (no AERs are sent then).
    """

    next_index: Index = 1
    match_index: Index = 0
    commit_index_sent: Index = 0
    query_index: int = 0
    status: str = "normal"
    # Snapshot transfer state (core-driven chunking): bytes, chunk size and the chunk in flight.
    snapshot_meta: SnapshotMeta | None = None
    snapshot_data: bytes = b""
    snapshot_chunk: int = 0
    snapshot_ticks: int = 0


@dataclass(slots=True)
class ParkedCall:
    """A client call that waits for a leader to be known (or for this server to win)."""

    event: Event


class CoreBase:
    """Fields and shared helpers of ``RaftCore``; see the class docstring of ``server.RaftCore``."""

    def __init__(self, config: CoreConfig, log: LogView) -> None:
        """Store configuration; ``server.RaftCore.__init__`` completes recovery."""
        self.config = config
        self.id = config.server_id
        self.log = RaftLog(log)
        self.role = Role.FOLLOWER
        self.current_term: Term = 0
        self.voted_for: ServerId | None = None
        self.leader_id: ServerId | None = None
        self.commit_index: Index = 0
        self.last_applied: Index = 0
        self.machine: Machine = config.machine
        self.effective_machine_version = 0
        self.machine_state: object = None
        self.aux_state: object = None
        self.apply_blocked = False
        # Configuration: members effective now, and the (index, members) of every cluster change
        # entry above the last committed one so that an overwritten change can be reverted (§3.3).
        self.members: tuple[ServerId, ...] = tuple(sorted(config.cluster))
        self.base_members: tuple[ServerId, ...] = self.members
        self.cluster_changes: list[tuple[Index, tuple[ServerId, ...]]] = []
        self.cluster_change_permitted = False
        self.peers: dict[ServerId, PeerProgress] = {}
        # Elections.
        self.votes: set[ServerId] = set()
        self.pre_vote_token: object = None
        self.token_seq = 0
        # Followers: highest heartbeat query index seen (2.2.0 replies max(rpc, own)).
        self.follower_query_index = 0
        self.parked: list[ParkedCall] = []
        self.now_ms = 0
        self.snapshot_in_progress: Index | None = None
        self.last_persisted_applied: Index = 0
        self.transferring = False
        self.monitored_leader: ServerId | None = None
        # True while re-applying entries during recovery: machine effects are discarded.
        self.replaying = False
        self.is_new = False
        self.stopping: object = None
        # Armed core timers; like gen_statem state timeouts they are all cancelled on a role change.
        self.armed: set[TimerKind] = set()
        # Leader: index of this term's noop; consistent-query rounds (query index, commit index at
        # call time, request) and queries parked while membership changes are not permitted.
        self.noop_index: Index = 0
        self.query_index = 0
        self.pending_queries: list[tuple[int, Index, QueryRequest]] = []
        self.parked_queries: list[QueryRequest] = []
        # Leader: low-priority commands waiting for the next flush_commands (ra-internals §4.2).
        self.low_queue: list[CommandRequest] = []
        # await_condition: the failure reply to re-send when the await timer fires.
        self.await_reply: PeerRpc | None = None
        # receive_snapshot: the transfer in progress (meta, chunks so far, next chunk number).
        self.snapshot_receiving: SnapshotMeta | None = None
        self.snapshot_chunks: list[bytes] = []
        self.snapshot_expected = 1

    # -- hooks implemented by role mixins -----------------------------------------------------------

    def dispatch(self, event: Event, effects: list[Effect]) -> None:
        """Handle ``event`` in the current role (server.RaftCore)."""
        raise NotImplementedError

    def apply_committed(self, effects: list[Effect]) -> None:
        """Apply entries up to the commit index (apply.py)."""
        raise NotImplementedError

    def run_machine_effects(self, mac_effects: list[MachineEffectT], effects: list[Effect]) -> None:
        """Interpret machine effects for the current role (apply.py)."""
        raise NotImplementedError

    def leaving_leadership(self, effects: list[Effect]) -> None:
        """Hook: pending leader work (queries) is parked for redirection (leader.py)."""

    def start_pre_vote(self, effects: list[Effect]) -> None:
        """Enter ``pre_vote`` and ask every peer (candidate.py)."""
        raise NotImplementedError

    def start_election(self, effects: list[Effect]) -> None:
        """Enter ``candidate`` with term+1 and request votes (candidate.py)."""
        raise NotImplementedError

    def become_leader(self, effects: list[Effect]) -> None:
        """Win the election (leader.py)."""
        raise NotImplementedError

    def follower_handle(self, event: Event, effects: list[Effect]) -> None:
        """Follower handler (follower.py)."""
        raise NotImplementedError

    def answer_pre_vote(
        self, event: PeerMessage, rpc: PreVoteRpc, effects: list[Effect], *, silent_if_behind: bool
    ) -> None:
        """Pre-vote answer (follower.py)."""
        raise NotImplementedError

    def answer_request_vote(self, event: PeerMessage, rpc: RequestVoteRpc, effects: list[Effect]) -> None:
        """Vote answer (follower.py)."""
        raise NotImplementedError

    def transfer_wait_handle(self, event: Event, effects: list[Effect]) -> None:
        """The old leader waits for the target's higher-term RPC (leader.py)."""
        raise NotImplementedError

    # -- terms, roles, timers -----------------------------------------------------------------------

    def persist_term(self, term: Term, voted_for: ServerId | None, effects: list[Effect]) -> None:
        """Adopt ``term``/``voted_for`` and emit the synchronous ``PersistMeta`` (Raft §5.1, Figure 2)."""
        if term == self.current_term and voted_for == self.voted_for:
            return
        self.current_term = term
        self.voted_for = voted_for
        effects.append(PersistMeta(term=term, voted_for=voted_for))

    def set_role(self, role: Role, effects: list[Effect]) -> None:
        """Change role: emit ``RoleChanged`` and run the machine's ``state_enter`` effects."""
        if role == self.role:
            return
        old = self.role
        self.role = role
        # Ra's timers are gen_statem state timeouts: any state change cancels them (ra-internals §8.1).
        for kind in sorted(self.armed, key=lambda k: k.value):
            effects.append(CancelTimer(key=kind))
        self.armed.clear()
        effects.append(RoleChanged(old=old, new=role, leader_id=self.leader_id))
        self.run_machine_effects(list(self.machine.state_enter(role.value, self.machine_state)), effects)

    def become_follower(self, effects: list[Effect], *, timer_ms: int | None = None) -> None:
        """Turn into a follower; ``timer_ms`` arms an election timer (Ra: long timer from other states)."""
        was_leader = self.role == Role.LEADER or self.transferring
        self.transferring = False
        self.votes = set()
        self.pre_vote_token = None
        if was_leader:
            self.leaving_leadership(effects)
            self.peers = {}
        self.set_role(Role.FOLLOWER, effects)
        if timer_ms is not None:
            self.arm_timer(TimerKind.ELECTION, timer_ms, effects)

    def step_down(self, term: Term, effects: list[Effect]) -> None:
        """A higher term was seen: adopt it with no vote and become a follower (Raft §5.1)."""
        was = self.role
        self.persist_term(term, None, effects)
        self.leader_id = None
        if was != Role.FOLLOWER:
            self.become_follower(effects, timer_ms=self.long_timeout())

    def set_leader(self, leader: ServerId, effects: list[Effect]) -> None:
        """Record ``leader`` for the current term and redirect calls parked while none was known."""
        if self.leader_id == leader:
            return
        self.leader_id = leader
        if leader != self.id and self.monitored_leader != leader:
            if self.monitored_leader is not None:
                effects.append(DemonitorServer(server_id=self.monitored_leader))
            self.monitored_leader = leader
            effects.append(MonitorServer(server_id=leader))
            effects.append(MonitorNode(node=leader.node))
        if leader != self.id:
            self.redirect_parked(effects)

    def redirect_parked(self, effects: list[Effect]) -> None:
        """Answer every parked call with ``{redirect, Leader}`` (ra-internals §4.1)."""
        if self.leader_id is None:
            return
        parked, self.parked = self.parked, []
        for call in parked:
            event = call.event
            from_ = getattr(event, "from_", None)
            if from_ is not None:
                effects.append(Reply(to=from_, reply=Redirect(leader=self.leader_id)))
            elif isinstance(event, CommandRequest):
                # Low-priority casts a deposed leader had queued: forwarded or rejected like any
                # cast reaching a follower (ra-internals §4.1).
                if isinstance(event.reply_mode, NoReply):
                    effects.append(ForwardCommand(to=self.leader_id, request=event))
                elif isinstance(event.reply_mode, NotifyReply):
                    effects.append(
                        Rejected(
                            pid=event.reply_mode.pid,
                            sender=self.id,
                            leader=self.leader_id,
                            correlation=event.reply_mode.correlation,
                        )
                    )

    def reply(self, from_: object, reply: ClientReply, effects: list[Effect]) -> None:
        """Answer a call if there is a caller to answer."""
        if from_ is not None:
            effects.append(Reply(to=from_, reply=reply))

    def arm_timer(self, kind: TimerKind, after_ms: int, effects: list[Effect]) -> None:
        """(Re)arm one of the core's timers."""
        self.armed.add(kind)
        effects.append(StartTimer(key=kind, after_ms=after_ms))

    def disarm_timer(self, kind: TimerKind, effects: list[Effect]) -> None:
        """Cancel one of the core's timers if it is armed."""
        if kind in self.armed:
            self.armed.discard(kind)
            effects.append(CancelTimer(key=kind))

    # Election timeouts, ra-internals §8.1 (B = broadcast_time, P = aten poll interval).
    def really_short_timeout(self) -> int:
        """uniform(B): the leader process died."""
        return self.config.rng.randint(1, self.config.broadcast_time_ms)

    def short_timeout(self) -> int:
        """uniform(5B) + B: restart, leader noconnection, entering candidate."""
        b = self.config.broadcast_time_ms
        return self.config.rng.randint(1, 5 * b) + b

    def medium_timeout(self) -> int:
        """uniform(P) + B: a candidate that stays candidate."""
        return self.config.rng.randint(1, self.config.poll_interval_ms) + self.config.broadcast_time_ms

    def long_timeout(self) -> int:
        """uniform(10B) + P: follower from other states, pre_vote, declined pre-vote, leader node down."""
        return self.config.rng.randint(1, 10 * self.config.broadcast_time_ms) + self.config.poll_interval_ms

    # -- configuration ------------------------------------------------------------------------------

    def is_member(self) -> bool:
        """True if this server is in its effective configuration."""
        return self.id in self.members

    def others(self) -> list[ServerId]:
        """Members except this server, in sorted order (deterministic send order)."""
        return [m for m in self.members if m != self.id]

    def candidate_log_ok(self, last_index: Index, last_term: Term) -> bool:
        """Raft §5.4.1: the candidate's log is at least as up to date as ours if its last term is
        higher, or the terms are equal and its last index is at least ours."""
        our_index, our_term = self.log.last_index_term()
        return last_term > our_term or (last_term == our_term and last_index >= our_index)

    def machine_config(self) -> MachineConfig:
        """What ``Machine.init`` receives."""
        return MachineConfig(name=self.id.name, args=self.config.machine_args)

    def pass_through(self, effect: MachineEffectT, effects: list[Effect]) -> None:
        """Hand a machine effect to the driver."""
        effects.append(MachineEffect(effect=effect))


__all__ = ["CoreBase", "CoreConfig", "ParkedCall", "PeerProgress", "Rng"]
