"""Behaviour shared by every role: log bookkeeping, local calls, timers, redirects.

Owns: what Ra answers in every raft state (``local_query``, ``local_call`` state queries, ``ping``,
aux commands, ra-internals §4.1), log-completion bookkeeping (``LogWritten``, ``SnapshotWritten``,
``LogWriteFailed``), the tick's ``last_applied`` persistence, cluster-configuration tracking on log
writes (§3.3: a change is effective as soon as it is in the log, and reverted if overwritten), and
the non-leader client rules (redirect, park, forward, reject). Must not: decide elections or
replication.
"""

from __future__ import annotations

from typing import Literal

from pyra_dist.core.apply import ApplyMixin
from pyra_dist.core.effects import (
    AuxReply,
    ClusterChanged,
    Effect,
    ErrorReply,
    ForwardCommand,
    LeaderHint,
    LocalQueryReply,
    OkReply,
    PersistLastApplied,
    Pong,
    Redirect,
    Rejected,
    Stop,
)
from pyra_dist.core.events import (
    AuxCommand,
    CommandRequest,
    DeleteClusterRequest,
    Event,
    JoinRequest,
    LeaveRequest,
    LogWriteFailed,
    PingRequest,
    QueryRequest,
    SnapshotWritten,
    StateQueryRequest,
    Tick,
    TimerKind,
    TransferLeadershipRequest,
)
from pyra_dist.core.state import ParkedCall
from pyra_dist.types import ClusterChange, Entry, Index, NoReply, NotifyReply, Role, ServerId


class CommonRole(ApplyMixin):
    """Handlers every role falls back to."""

    # -- log writes with configuration tracking ----------------------------------------------------

    def log_append(self, entries: list[Entry], effects: list[Effect]) -> None:
        """Append ``entries`` (overwriting from the first one) and track cluster changes in them."""
        # Configuration changes take effect when they enter the log, committed or not (Raft thesis
        # §4.1, Ra §3.3); overwriting the entry that carried one reverts to the one before it.
        first = entries[0].index
        effects.append(self.log.append(entries))
        changes = [(i, m) for (i, m) in self.cluster_changes if i < first]
        changes.extend((e.index, e.command.members) for e in entries if isinstance(e.command, ClusterChange))
        self._set_changes(changes, effects)

    def log_truncate(self, last_index: Index, effects: list[Effect]) -> None:
        """Drop entries above ``last_index``; a dropped cluster change is reverted (ra-internals §3.3)."""
        effects.append(self.log.truncate(last_index))
        self._set_changes([(i, m) for (i, m) in self.cluster_changes if i <= last_index], effects)

    def _set_changes(self, changes: list[tuple[Index, tuple[ServerId, ...]]], effects: list[Effect]) -> None:
        self.cluster_changes = changes
        members = changes[-1][1] if changes else self.base_members
        if members != self.members:
            self.members = members
            self.members_changed(effects)
            effects.append(ClusterChanged(members=members))

    def members_changed(self, effects: list[Effect]) -> None:
        """Hook: the effective configuration changed (the leader syncs its peer map)."""

    # -- election timer bookkeeping ----------------------------------------------------------------

    def arm_election_timer(self, after_ms: int, effects: list[Effect]) -> None:
        """(Re)arm the election timer."""
        self.arm_timer(TimerKind.ELECTION, after_ms, effects)

    def disarm_election_timer(self, effects: list[Effect]) -> None:
        """Cancel the election timer if armed (valid leader contact, ra-internals §8.1)."""
        self.disarm_timer(TimerKind.ELECTION, effects)

    # -- shared handlers ----------------------------------------------------------------------------

    def leader_hint(self) -> LeaderHint:
        """The ``Leader`` element of query replies (ra-internals §4 ``local_query``)."""
        if self.role == Role.LEADER:
            return self.id
        if self.role == Role.AWAIT_CONDITION:
            return "follower"
        if self.role in (Role.FOLLOWER,) and self.leader_id is not None:
            return self.leader_id
        return "not_known"

    def run_query(self, query: object) -> tuple[bool, object]:
        """Run a query function on the machine state; ``(False, exc)`` if it raised (Ra: ``{error, R}``)."""
        try:
            return True, query(self.machine_state)  # type: ignore[operator]
        except Exception as exc:  # a crashing query must not harm the server (Ra local_query_boom)
            return False, exc

    def local_query_reply(self, event: QueryRequest, effects: list[Effect]) -> None:
        """Answer a query from the local machine state: ``{ok, {{LastApplied, Term}, Result}, Leader}``."""
        ok, result = self.run_query(event.query)
        if not ok:
            self.reply(event.from_, ErrorReply(reason=result), effects)
            return
        term = self.log.term_at(self.last_applied)
        self.reply(
            event.from_,
            LocalQueryReply(
                index=self.last_applied,
                term=term if term is not None else self.current_term,
                result=result,
                leader=self.leader_hint(),
            ),
            effects,
        )

    def state_query_value(self, what: str) -> object:
        """``members`` / ``initial_members`` / ``overview`` values."""
        if what == "members":
            return list(self.members)
        if what == "initial_members":
            return list(self.config.cluster)
        return self.overview()

    def overview(self) -> dict[str, object]:
        """Status map (server.RaftCore)."""
        raise NotImplementedError

    def handle_common(self, event: Event, effects: list[Effect]) -> bool:
        """Handle role-independent events; return True if ``event`` was consumed."""
        match event:
            case QueryRequest(kind="local"):
                self.local_query_reply(event, effects)
            case StateQueryRequest(local=True, what=what, from_=from_):
                self.reply(from_, OkReply(value=self.state_query_value(what), leader=self.id), effects)
            case PingRequest(from_=from_):
                self.reply(from_, Pong(role=self.role), effects)
            case AuxCommand(command=command, from_=from_):
                kind: Literal["call", "cast"] = "call" if from_ is not None else "cast"
                result = self.machine.handle_aux(
                    self.role.value, kind, command, self.aux_state, self.machine_state
                )
                self.aux_state = result[-1]
                if result[0] == "reply":
                    self.reply(from_, AuxReply(reply=result[1]), effects)
            case SnapshotWritten(index=index):
                if self.snapshot_in_progress is not None and index >= self.snapshot_in_progress:
                    self.snapshot_in_progress = None
            case LogWriteFailed(reason=reason):
                self.stop(("log_write_failed", reason), effects)
            case Tick():
                self.tick_common(effects)
                return False  # roles add their own tick work
            case _:
                return False
        return True

    def tick_common(self, effects: list[Effect]) -> None:
        """Persist ``last_applied`` (asynchronous in Ra) and feed ``tick`` to the aux handler.

        Never above the last *written* index: recovery re-applies the durable log up to the persisted
        value, so it must only cover entries that are durable in their applied form. A follower applies
        committed entries from its unwritten tail; if it crashed before that tail (which overwrote an
        older uncommitted entry) was written, the old entry would be re-applied (simulator finding F4,
        docs/internals/simulator.md).
        """
        index = min(self.last_applied, self.log.last_written()[0])
        if index > self.last_persisted_applied:
            self.last_persisted_applied = index
            effects.append(PersistLastApplied(index=index))
        self.handle_aux_cast("tick", effects)

    def stop(self, reason: object, effects: list[Effect], *, delete_data: bool = False) -> None:
        """Stop the server for good."""
        self.set_role(Role.STOPPED, effects)
        effects.append(Stop(reason=reason, delete_data=delete_data))

    def after_apply(self, effects: list[Effect]) -> None:
        """Followers stop after applying a ``'$ra_cluster'`` delete (ra-internals §3.5)."""
        if self.stopping == "delete" and self.role != Role.LEADER:
            self.stop("delete", effects, delete_data=True)

    # -- clients of a non-leader --------------------------------------------------------------------

    def non_leader_client(self, event: Event, effects: list[Effect], *, can_redirect: bool) -> bool:
        """Ra's follower/candidate answers to leader calls and command casts (ra-internals §4.1).

        Returns True if ``event`` was a client request (handled here).
        """
        leader = self.leader_id if self.leader_id != self.id else None
        match event:
            # Casts (pipeline_command): correlation-less ones are forwarded to the leader so they are
            # not lost (ra_SUITE:pipeline_command_2_forwards_to_leader); notify ones are rejected so
            # the client can resend to the leader itself (pipeline_command_reject).
            case CommandRequest(from_=None, reply_mode=mode):
                if self.role == Role.AWAIT_CONDITION:
                    return True  # 2.2.0 await_condition drops command casts silently
                if isinstance(mode, NoReply):
                    if leader is not None and can_redirect:
                        effects.append(ForwardCommand(to=leader, request=event))
                elif isinstance(mode, NotifyReply) and leader is not None:
                    effects.append(
                        Rejected(pid=mode.pid, sender=self.id, leader=leader, correlation=mode.correlation)
                    )
                return True
            case (
                CommandRequest()
                | JoinRequest()
                | LeaveRequest()
                | DeleteClusterRequest()
                | TransferLeadershipRequest()
                | QueryRequest()
                | StateQueryRequest()
            ):
                # Calls: redirect to a known leader (the client repeats the request there), otherwise
                # park until one is known; candidates park always since they may win themselves.
                from_ = event.from_
                if from_ is None:
                    return True
                if leader is not None and can_redirect:
                    self.reply(from_, Redirect(leader=leader), effects)
                else:
                    self.parked.append(ParkedCall(event=event))
                return True
        return False


__all__ = ["CommonRole"]
