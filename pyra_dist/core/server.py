"""``RaftCore``: one Ra 2.2.0 server as a pure state machine (events in, effects out).

Owns: recovery from a ``LogView`` + persisted meta, the single entry point ``handle`` (term
normalisation in one place, then dispatch on the role, etcd's ``Step`` shape), and the read-only
properties and ``overview()`` a driver exposes. Must not: do I/O, read clocks or randomness other
than ``CoreConfig.rng``, or block; everything external is an ``Effect``.

Theory of operation: ``handle(event)`` first tracks the injected time, then, for a peer message
carrying a higher term, steps down (Raft §5.1: "If RPC request or response contains term T >
currentTerm: set currentTerm = T, convert to follower"), then calls the role handler selected by
``_HANDLERS[self.role]``. Role handlers live in mixins: ``FollowerRole`` (follower, await_condition,
receive_snapshot), ``CandidateRole`` (pre_vote, candidate), ``LeaderRole`` (leader, replication,
membership, queries) and ``ApplyMixin`` (applying committed entries, machine effects).
"""

from __future__ import annotations

from collections.abc import Callable

from pyra_dist.core.apply import ApplyMixin
from pyra_dist.core.candidate import CandidateRole
from pyra_dist.core.effects import Effect
from pyra_dist.core.events import CommandBatch, Event, PeerMessage, TimerFired, TimerKind
from pyra_dist.core.follower import FollowerRole
from pyra_dist.core.leader import LeaderRole
from pyra_dist.core.log_view import LogView
from pyra_dist.core.messages import (
    AppendEntriesReply,
    HeartbeatReply,
    InstallSnapshotRpc,
    PeerRpc,
    RequestVoteRpc,
    TryBecomeLeader,
)
from pyra_dist.core.state import CoreConfig
from pyra_dist.types import ClusterChange, Index, Role, ServerId, Term


class RaftCore(LeaderRole, CandidateRole, FollowerRole, ApplyMixin):
    """A Ra server: ``RaftCore(config, log, meta)`` then ``start()`` once, then ``handle(event)`` per input.

    Args (constructor):
        config: static configuration, including the machine and the injected ``random.Random``.
        log: the durable log as recovered (everything in it counts as written).
        meta: the persisted ``(current_term, voted_for, last_applied)``.
    """

    def __init__(
        self,
        config: CoreConfig,
        log: LogView,
        meta: tuple[Term, ServerId | None, Index] = (0, None, 0),
    ) -> None:
        """Recover the server (ra-internals §7.6): snapshot or ``init``, cluster, re-apply to commit."""
        super().__init__(config, log)
        self.current_term, self.voted_for, persisted_applied = meta
        snap = self.log.snapshot_meta()
        if snap is not None:
            self.machine_state = self.log.view.snapshot_state()
            self.last_applied = self.commit_index = snap.index
            self.effective_machine_version = snap.machine_version
            self.machine = self.machine.which_module(snap.machine_version)
            if snap.cluster:
                self.base_members = self.members = tuple(sorted(snap.cluster))
        else:
            self.machine_state = self.machine.init(self.machine_config())
        self.aux_state = self.machine.init_aux(self.id.name)
        # Cluster changes in the log are effective as soon as they are in the log (§3.3).
        last = self.log.last_index
        for entry in self.log.fetch(self.log.first_index(), last):
            if isinstance(entry.command, ClusterChange):
                self.cluster_changes.append((entry.index, entry.command.members))
        if self.cluster_changes:
            self.members = self.cluster_changes[-1][1]
        # Re-apply what was applied before the restart, with effects discarded (ra-internals §7.6 step 3;
        # Ra test restarted_server_does_not_reissue_side_effects).
        self.commit_index = max(self.commit_index, min(persisted_applied, last))
        self.last_persisted_applied = self.commit_index
        discarded: list[Effect] = []
        self.replaying = True
        self.apply_committed(discarded)
        self.replaying = False
        self.is_new = last == 0 and snap is None and self.current_term == 0

    def start(self) -> list[Effect]:
        """Return the effects of entering ``follower`` after recovery.

        A brand-new server waits for a leader or ``trigger_election``; a restarted one arms a short
        election timer (ra-internals §7.6 step 4).
        """
        effects: list[Effect] = []
        entered = self.machine.state_enter(Role.FOLLOWER.value, self.machine_state)
        self.run_machine_effects(list(entered), effects)
        if not self.is_new:
            self.arm_timer(TimerKind.ELECTION, self.short_timeout(), effects)
        return effects

    # -- the entry point -----------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Effect]:
        """Advance the server by one input and return what the driver must do, in order.

        Args:
            event: any ``pyra_dist.core.events.Event``.

        Returns:
            The effects (see ``pyra_dist.core.effects`` for the interpreter contract).
        """
        effects: list[Effect] = []
        if self.role == Role.STOPPED:
            return effects
        now = getattr(event, "system_time", None)
        if isinstance(now, int) and now > self.now_ms:
            self.now_ms = now
        if isinstance(event, TimerFired) and isinstance(event.key, TimerKind):
            if event.key not in self.armed:
                return effects  # cancelled (or superseded by a role change) while in flight
            self.armed.discard(event.key)
        if isinstance(event, PeerMessage) and not self._observe_term(event, effects):
            return effects
        if isinstance(event, CommandBatch) and self.role != Role.LEADER:
            # Only a leader batches; every other role answers each command on its own.
            for request in event.commands:
                self.dispatch(request, effects)
            return effects
        self.dispatch(event, effects)
        return effects

    def dispatch(self, event: Event, effects: list[Effect]) -> None:
        """Call the handler of the current role."""
        _HANDLERS[self.role](self, event, effects)

    def _observe_term(self, event: PeerMessage, effects: list[Effect]) -> bool:
        """Raft §5.1 term rule in one place; return False if the message must be dropped."""
        msg: PeerRpc = event.msg
        if isinstance(msg, TryBecomeLeader):
            return True
        if self.role == Role.RECEIVE_SNAPSHOT and not isinstance(msg, InstallSnapshotRpc):
            # 2.2.0 drops everything but snapshot chunks while receiving one (ra-internals §2.5).
            return False
        if isinstance(msg, (AppendEntriesReply, HeartbeatReply)) and event.sender not in self.members:
            # Replies from unknown peers are ignored (ra-internals §2.2).
            return False
        if (
            self.role == Role.LEADER
            and isinstance(msg, RequestVoteRpc)
            and msg.candidate_id not in self.members
        ):
            return False
        if msg.term > self.current_term:
            self.step_down(msg.term, effects)
        return True

    def stop_handler(self, event: Event, effects: list[Effect]) -> None:
        """``stopped``: nothing happens any more (the driver answers calls with ``noproc``)."""

    # -- read-only view ------------------------------------------------------------------------------

    @property
    def term(self) -> Term:
        """The current term."""
        return self.current_term

    @property
    def cluster(self) -> tuple[ServerId, ...]:
        """The effective configuration (sorted member ids)."""
        return self.members

    def last_index_term(self) -> tuple[Index, Term]:
        """The last log ``(index, term)``, including entries not written yet."""
        return self.log.last_index_term()

    def last_written(self) -> tuple[Index, Term]:
        """The last durable log ``(index, term)``."""
        return self.log.last_written()

    def overview(self) -> dict[str, object]:
        """Return a status map in the spirit of Ra's ``ra:member_overview``."""
        last_index, last_term = self.log.last_index_term()
        written_index, _ = self.log.last_written()
        out: dict[str, object] = {
            "id": self.id,
            "raft_state": self.role.value,
            "current_term": self.current_term,
            "voted_for": self.voted_for,
            "leader_id": self.leader_id,
            "commit_index": self.commit_index,
            "last_applied": self.last_applied,
            "last_index": last_index,
            "last_term": last_term,
            "last_written_index": written_index,
            "snapshot_index": self.log.snapshot_index(),
            "cluster": list(self.members),
            "cluster_change_permitted": self.cluster_change_permitted,
            "effective_machine_version": self.effective_machine_version,
            "machine": dict(self.machine.overview(self.machine_state)),
        }
        if self.role == Role.LEADER:
            out["peers"] = {
                pid: {
                    "next_index": p.next_index,
                    "match_index": p.match_index,
                    "commit_index_sent": p.commit_index_sent,
                    "query_index": p.query_index,
                    "status": p.status,
                }
                for pid, p in sorted(self.peers.items())
            }
        return out


_HANDLERS: dict[Role, Callable[[RaftCore, Event, list[Effect]], None]] = {
    Role.FOLLOWER: RaftCore.follower_handle,
    Role.AWAIT_CONDITION: RaftCore.await_condition_handle,
    Role.RECEIVE_SNAPSHOT: RaftCore.receive_snapshot_handle,
    Role.PRE_VOTE: RaftCore.pre_vote_handle,
    Role.CANDIDATE: RaftCore.candidate_handle,
    Role.LEADER: RaftCore.leader_handle,
    Role.TERMINATING_LEADER: RaftCore.stop_handler,
    Role.TERMINATING_FOLLOWER: RaftCore.stop_handler,
    Role.STOPPED: RaftCore.stop_handler,
}
"""One home for role dispatch (style R6)."""

__all__ = ["RaftCore"]
