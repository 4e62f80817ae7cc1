"""Follower, await_condition and receive_snapshot handlers.

Owns: how a non-leader that is not campaigning reacts to each input: append entries (ra-internals
§2.1), votes and pre-votes (§2.3), heartbeats (§2.4), snapshot chunks (§2.5), leader failure
signals (§8.2) and client calls. Must not: reply success for entries before ``LogWritten`` says they
are durable (R3), truncate at or below the commit index, or advance the commit index beyond what the
current leader's RPC proved to match (landscape §2.4, Ra PR 508).
"""

from __future__ import annotations

from enum import Enum

from pyra_dist.core.common import CommonRole
from pyra_dist.core.effects import (
    AtomReply,
    Effect,
    InstallSnapshot,
    SendRpc,
)
from pyra_dist.core.events import (
    Event,
    LogWritten,
    NodeDown,
    NodeUp,
    PeerDown,
    PeerMessage,
    TimerFired,
    TimerKind,
    TriggerElection,
)
from pyra_dist.core.messages import (
    RA_PROTO_VERSION,
    AppendEntriesReply,
    AppendEntriesRpc,
    HeartbeatReply,
    HeartbeatRpc,
    InstallSnapshotResult,
    InstallSnapshotRpc,
    PreVoteResult,
    PreVoteRpc,
    RequestVoteResult,
    RequestVoteRpc,
    TryBecomeLeader,
)
from pyra_dist.types import Entry, Role, SnapshotMeta


class PrevCheck(Enum):
    """Outcome of checking an AER's ``(prev_log_index, prev_log_term)`` against our log."""

    MATCH = "match"
    MISSING = "missing"
    MISMATCH = "mismatch"


class FollowerRole(CommonRole):
    """Handlers for ``follower``, ``await_condition`` and ``receive_snapshot``."""

    # ---------------------------------------------------------------------------------------------
    # follower
    # ---------------------------------------------------------------------------------------------

    def follower_handle(self, event: Event, effects: list[Effect]) -> None:
        """Handle ``event`` as a follower."""
        if self.stopping == "delete":
            self.terminating_follower_handle(event, effects)
            return
        if self.handle_common(event, effects):
            return
        if self.non_leader_client(event, effects, can_redirect=True):
            return
        match event:
            case PeerMessage(msg=AppendEntriesRpc() as rpc):
                self.follower_aer(rpc, effects)
            case PeerMessage():
                self.follower_peer_message(event, effects)
            case LogWritten(to_index=to_index, term=term):
                self.follower_written(to_index, term, effects)
            case TriggerElection(from_=from_):
                # Even with a healthy leader (ra-internals §4.1); start_cluster relies on it.
                self.reply(from_, AtomReply(atom="ok"), effects)
                self.maybe_start_pre_vote(effects)
            case TimerFired(key=TimerKind.ELECTION):
                self.maybe_start_pre_vote(effects)
            # Failure detection (ra-internals §8.2). Idle Ra leaders send nothing, so silence proves
            # nothing: the leader's process monitor and aten's node events arm the election timer
            # (a dead process is certain: really short; a lost connection may heal: short; aten's
            # guess: long) and any valid AER cancels it again.
            case PeerDown(server_id=server_id, reason=reason) if server_id == self.leader_id:
                self.monitored_leader = None
                if reason == "noconnection":
                    self.arm_election_timer(self.short_timeout(), effects)
                else:
                    self.leader_id = None
                    self.arm_election_timer(self.really_short_timeout(), effects)
            case NodeDown(node=node) if self.leader_id is not None and node == self.leader_id.node:
                self.arm_election_timer(self.long_timeout(), effects)
            case NodeUp(node=node) if self.leader_id is not None and node == self.leader_id.node:
                self.disarm_election_timer(effects)
            case _:
                pass

    def maybe_start_pre_vote(self, effects: list[Effect]) -> None:
        """Start a pre-vote round unless this server is not a member of its configuration."""
        # A removed server keeps running until it is stopped (leave_and_terminate stops it later);
        # it must not campaign and raise the terms of the members that removed it.
        if self.is_member():
            self.start_pre_vote(effects)

    def follower_peer_message(self, event: PeerMessage, effects: list[Effect]) -> None:
        """Peer records other than AERs, shared by follower and await_condition."""
        msg = event.msg
        match msg:
            case RequestVoteRpc():
                self.answer_request_vote(event, msg, effects)
            case PreVoteRpc():
                self.answer_pre_vote(event, msg, effects, silent_if_behind=self.role == Role.FOLLOWER)
            case HeartbeatRpc():
                self.answer_heartbeat(msg, effects)
            case InstallSnapshotRpc():
                self.first_snapshot_chunk(event, msg, effects)
            case TryBecomeLeader():
                # 2.2.0 leadership transfer: the target starts an election at once (no pre-vote).
                if self.is_member():
                    self.start_election(effects)
            case _:
                pass  # stale replies/results addressed to a former leader or candidate

    # -- append entries -----------------------------------------------------------------------------

    def check_prev(self, rpc: AppendEntriesRpc) -> tuple[PrevCheck, list[Entry]]:
        """Raft §5.3 consistency check; returns the outcome and the RPC's entries above our snapshot.

        Entries at or below our snapshot are committed, hence equal to the leader's (Raft §5.4.3,
        Leader Completeness), so a ``prev`` below the snapshot matches by definition.
        """
        snap_index = self.log.snapshot_index()
        entries = list(rpc.entries)
        if rpc.prev_log_index < snap_index:
            return PrevCheck.MATCH, [e for e in entries if e.index > snap_index]
        term = self.log.term_at(rpc.prev_log_index)
        if term is None:
            return PrevCheck.MISSING, entries
        if term != rpc.prev_log_term:
            return PrevCheck.MISMATCH, entries
        return PrevCheck.MATCH, entries

    def follower_aer(self, rpc: AppendEntriesRpc, effects: list[Effect]) -> None:
        """ra-internals §2.1 (the term was already normalised by ``RaftCore.handle``)."""
        if rpc.term < self.current_term:
            # Raft §5.1: reject a stale leader; it learns our term from the reply.
            self.send_aer_reply(rpc, False, effects)
            return
        if not _contiguous(rpc):
            # Entries must be prev+1, prev+2, ...; a malformed RPC (a buggy peer) is dropped rather than
            # taking the server down (simulator finding F2).
            return
        self.set_leader(rpc.leader_id, effects)
        self.disarm_election_timer(effects)
        check, entries = self.check_prev(rpc)
        if check is PrevCheck.MISSING:
            reply = self.aer_reply(False)
            effects.append(SendRpc(to=rpc.leader_id, rpc=reply))
            self.enter_await_condition(reply, effects)
            return
        if check is PrevCheck.MISMATCH:
            # Ra replies with last_applied: everything applied is committed, so it matches the leader.
            reply = self.applied_reply()
            effects.append(SendRpc(to=rpc.leader_id, rpc=reply))
            self.enter_await_condition(reply, effects)
            return
        # Raft §5.3: skip entries we already hold (same index and term = same entry); the first
        # differing one and everything after it is replaced.
        skip = 0
        while skip < len(entries) and self.log.term_at(entries[skip].index) == entries[skip].term:
            skip += 1
        new = entries[skip:]
        if new and new[0].index <= self.commit_index:
            # A committed entry can never conflict with the leader's log (Leader Completeness); an RPC
            # claiming otherwise is dropped rather than truncating committed entries (landscape §2.4).
            return
        # Only entries this RPC proved to match the leader may be committed (Raft Figure 2:
        # commitIndex = min(leaderCommit, index of last new entry)); a stale tail from an older term
        # beyond them must not be applied (Ra PR 508, "log divergence").
        verified = rpc.prev_log_index + len(rpc.entries)
        if new:
            self.log_append(new, effects)
            self.advance_commit(min(rpc.leader_commit, verified), effects)
            return  # the success reply waits for LogWritten (R3)
        last = self.log.last_index
        if not rpc.entries and last > rpc.prev_log_index:
            # Ra: the leader is authoritative about the tail. We drop it only if it is not the
            # current leader's (a same-term tail is identical to the leader's) and never at or below
            # the commit index.
            cut = max(rpc.prev_log_index, self.commit_index)
            if last > cut and self.log.term_at(cut + 1) != rpc.term:
                self.log_truncate(cut, effects)
        self.advance_commit(min(rpc.leader_commit, verified), effects)
        if self.role != Role.STOPPED:  # applying a '$ra_cluster' delete may have stopped us
            self.send_aer_reply(rpc, True, effects)

    def applied_reply(self) -> AppendEntriesReply:
        """The mismatch-form failure reply: ``next = last_applied + 1``, ``last = last_applied``."""
        applied_term = self.log.term_at(self.last_applied)
        return AppendEntriesReply(
            term=self.current_term,
            success=False,
            next_index=self.last_applied + 1,
            last_index=self.last_applied,
            last_term=applied_term if applied_term is not None else 0,
        )

    def aer_reply(self, success: bool) -> AppendEntriesReply:
        """Build Ra's reply: next = last index + 1 (incl. unwritten), last = last written entry."""
        written_index, written_term = self.log.last_written()
        return AppendEntriesReply(
            term=self.current_term,
            success=success,
            next_index=self.log.last_index + 1,
            last_index=written_index,
            last_term=written_term,
        )

    def send_aer_reply(self, rpc: AppendEntriesRpc, success: bool, effects: list[Effect]) -> None:
        """Cast the reply to the RPC's leader id (ra-internals §1.3)."""
        effects.append(SendRpc(to=rpc.leader_id, rpc=self.aer_reply(success)))

    def advance_commit(self, commit: int, effects: list[Effect]) -> None:
        """Raise the commit index (never lower it) and apply."""
        if commit > self.commit_index:
            self.commit_index = commit
        self.apply_committed(effects)

    def follower_written(self, to_index: int, term: int, effects: list[Effect]) -> None:
        """``LogWritten``: confirm durable entries to the leader (Ra replies after every fsync)."""
        # This is the only place a success reply for new entries is sent: its last_index is what the
        # leader counts towards the commit majority, so it must name durable entries only (§9.2).
        if not self.log.written(to_index, term):
            return
        if self.leader_id is not None and self.leader_id != self.id and self.role == Role.FOLLOWER:
            effects.append(SendRpc(to=self.leader_id, rpc=self.aer_reply(True)))
        self.apply_committed(effects)

    # -- votes ---------------------------------------------------------------------------------------

    def answer_request_vote(self, event: PeerMessage, rpc: RequestVoteRpc, effects: list[Effect]) -> None:
        """Raft §5.2/§5.4.1: one vote per term, only for an at-least-as-up-to-date log; persisted first."""
        grant = (
            rpc.term == self.current_term
            and self.voted_for in (None, rpc.candidate_id)
            and self.candidate_log_ok(rpc.last_log_index, rpc.last_log_term)
        )
        if grant:
            # The vote is durable (synchronous PersistMeta) before the result leaves (R3).
            self.persist_term(self.current_term, rpc.candidate_id, effects)
        result = RequestVoteResult(term=self.current_term, vote_granted=grant)
        effects.append(SendRpc(to=rpc.candidate_id, rpc=result, reply_to=event.call))

    def answer_pre_vote(
        self, event: PeerMessage, rpc: PreVoteRpc, effects: list[Effect], *, silent_if_behind: bool
    ) -> None:
        """ra-internals §2.3: grant iff the log is up to date, ``version =< 1`` and
        ``effective =< theirs =< our latest`` machine version. No leader stickiness (as Ra)."""

        def answer(granted: bool) -> None:
            result = PreVoteResult(term=self.current_term, token=rpc.token, vote_granted=granted)
            effects.append(SendRpc(to=rpc.candidate_id, rpc=result, reply_to=event.call))

        if rpc.term < self.current_term:
            answer(False)
            return
        log_ok = self.candidate_log_ok(rpc.last_log_index, rpc.last_log_term)
        version_ok = (
            rpc.version <= RA_PROTO_VERSION
            and self.effective_machine_version <= rpc.machine_version <= self.config.machine.version()
        )
        if log_ok and version_ok:
            answer(True)
        elif not log_ok and silent_if_behind:
            # A follower does not answer a candidate that is behind, and arms a long timer.
            self.arm_election_timer(self.long_timeout(), effects)
        else:
            answer(False)
            self.arm_election_timer(self.long_timeout(), effects)

    # -- heartbeats (consistent queries) ----------------------------------------------------------------

    def answer_heartbeat(self, rpc: HeartbeatRpc, effects: list[Effect]) -> None:
        """ra-internals §2.4 (2.2.0: reply max(rpc QI, own QI)); heartbeats do not cancel timers."""
        if rpc.term < self.current_term:
            # A deposed leader learns our term and steps down; its queries get redirected.
            reply = HeartbeatReply(query_index=rpc.query_index, term=self.current_term)
        else:
            self.set_leader(rpc.leader_id, effects)
            self.follower_query_index = max(self.follower_query_index, rpc.query_index)
            reply = HeartbeatReply(query_index=self.follower_query_index, term=self.current_term)
        effects.append(SendRpc(to=rpc.leader_id, rpc=reply))

    # ---------------------------------------------------------------------------------------------
    # await_condition
    # ---------------------------------------------------------------------------------------------

    def enter_await_condition(self, reply: AppendEntriesReply, effects: list[Effect]) -> None:
        """A follower that is catching up waits for a matching AER (ra-internals §2.1)."""
        self.await_reply = reply
        self.set_role(Role.AWAIT_CONDITION, effects)
        self.arm_timer(TimerKind.AWAIT_CONDITION, self.config.await_condition_timeout_ms, effects)

    def await_condition_handle(self, event: Event, effects: list[Effect]) -> None:
        """Handle ``event`` in ``await_condition`` (also the old leader during a transfer)."""
        if self.stopping == "delete":
            self.terminating_follower_handle(event, effects)
            return
        if self.transferring:
            self.transfer_wait_handle(event, effects)
            return
        if self.handle_common(event, effects):
            return
        if self.non_leader_client(event, effects, can_redirect=True):
            return
        match event:
            case PeerMessage(msg=AppendEntriesRpc() as rpc):
                if rpc.term < self.current_term:
                    self.send_aer_reply(rpc, False, effects)
                    return
                check, _ = self.check_prev(rpc)
                if check is not PrevCheck.MATCH:
                    return  # dropped without reply while catching up [obs]
                self.leave_await_condition(effects)
                self.follower_aer(rpc, effects)
            case PeerMessage(msg=InstallSnapshotRpc()):
                self.leave_await_condition(effects)
                self.follower_peer_message(event, effects)
            case PeerMessage():
                self.follower_peer_message(event, effects)
            case LogWritten(to_index=to_index, term=term):
                if self.log.written(to_index, term):
                    self.apply_committed(effects)
            case TimerFired(key=TimerKind.AWAIT_CONDITION):
                # Timed out: re-send the original failure reply and go back to follower.
                self.set_role(Role.FOLLOWER, effects)
                if self.leader_id is not None and self.await_reply is not None:
                    effects.append(SendRpc(to=self.leader_id, rpc=self.await_reply))
            case TimerFired(key=TimerKind.ELECTION) | TriggerElection():
                self.leave_await_condition(effects)
                self.follower_handle(event, effects)
            case _:
                self.follower_handle(event, effects)

    def leave_await_condition(self, effects: list[Effect]) -> None:
        """Back to follower; the await timer is cancelled (a gen_statem state timeout)."""
        self.set_role(Role.FOLLOWER, effects)

    # ---------------------------------------------------------------------------------------------
    # terminating (a follower that applied the '$ra_cluster' delete)
    # ---------------------------------------------------------------------------------------------

    def delete_applied_as_follower(self, effects: list[Effect]) -> None:
        """Cast a last ``append_entries_reply`` to the leader (Ra 2.2.0 ``evaluate_commit_index_follower``).

        An Erlang leader that applied the delete stays in ``terminating_leader`` until every peer's
        match index and sent commit index reach its commit index (``ra_server:is_fully_replicated``);
        only replies move it, so without this cast it would never exit (ra-internals §3.5).
        """
        if self.leader_id is not None and self.leader_id != self.id:
            effects.append(SendRpc(to=self.leader_id, rpc=self.aer_reply(True)))

    def after_apply(self, effects: list[Effect]) -> None:
        """A follower that applied the delete stops once its log is fully written (Ra's
        ``terminating_follower`` waits for ``ra_server:is_fully_persisted``); other roles as before.

        Stopping with entries still unwritten would leave the leader without the reply that reports
        them, so it could never consider the cluster fully replicated.
        """
        if self.stopping == "delete" and self.role != Role.LEADER:
            if self.log.last_written() == self.log.last_index_term():
                self.stop("delete", effects, delete_data=True)
            return
        super().after_apply(effects)

    def terminating_follower_handle(self, event: Event, effects: list[Effect]) -> None:
        """Ra's ``terminating_follower``: wait for the log writes in flight, report them, then stop.

        The role is not changed (a raft state change now would campaign or accept entries after the
        delete); calls and local queries are answered as a follower answers them meanwhile.
        """
        if isinstance(event, LogWritten):
            if self.log.written(event.to_index, event.term):
                # Ra's follower replies after every written event, terminating or not.
                self.delete_applied_as_follower(effects)
                self.after_apply(effects)
        elif not self.handle_common(event, effects):
            self.non_leader_client(event, effects, can_redirect=True)

    # ---------------------------------------------------------------------------------------------
    # receive_snapshot
    # ---------------------------------------------------------------------------------------------

    def first_snapshot_chunk(
        self, event: PeerMessage, rpc: InstallSnapshotRpc, effects: list[Effect]
    ) -> None:
        """ra-internals §2.5 step 5: chunk 1 that passes the guards starts a transfer."""
        if rpc.term < self.current_term:
            result = InstallSnapshotResult(
                term=self.current_term, last_index=rpc.meta.index, last_term=rpc.meta.term
            )
            effects.append(SendRpc(to=rpc.leader_id, rpc=result, reply_to=event.call))
            return
        meta = rpc.meta
        if meta.index > self.log.snapshot_index() and self.log.term_at(meta.index) == meta.term:
            # Raft §7: "If the follower receives a snapshot that describes a prefix of its log, then
            # log entries covered by the snapshot are deleted but entries following the snapshot are
            # still valid and must be retained." We already hold that prefix (same index and term), so
            # we keep the log, learn that the prefix is committed and acknowledge every chunk. Ra 2.2.0
            # replaces the whole log here, which can discard entries this follower already reported
            # as written (found by the simulator, seed 9000: a committed entry lost its majority).
            self.set_leader(rpc.leader_id, effects)
            self.disarm_election_timer(effects)
            self.advance_commit(meta.index, effects)
            result = InstallSnapshotResult(term=self.current_term, last_index=meta.index, last_term=meta.term)
            effects.append(SendRpc(to=rpc.leader_id, rpc=result, reply_to=event.call))
            return
        if rpc.chunk_state.number == 1 and meta.index <= self.last_applied:
            # We already have everything the snapshot covers. Ra 2.2.0 stays silent (its sender then
            # hangs for 120 s); like Ra main we answer with the mismatch-form AER reply so that the
            # leader resumes append entries from our last applied index (ra-internals §2.5 "main").
            self.set_leader(rpc.leader_id, effects)
            effects.append(SendRpc(to=rpc.leader_id, rpc=self.applied_reply(), reply_to=event.call))
            return
        if rpc.chunk_state.number != 1 or meta.machine_version > self.config.machine.version():
            return  # not answered at all (Ra 2.2.0)
        self.set_leader(rpc.leader_id, effects)
        self.disarm_election_timer(effects)
        self.snapshot_receiving = meta
        self.snapshot_chunks = []
        self.snapshot_expected = 1
        self.set_role(Role.RECEIVE_SNAPSHOT, effects)
        self.snapshot_chunk(event, rpc, effects)

    def receive_snapshot_handle(self, event: Event, effects: list[Effect]) -> None:
        """Only chunks, log events, the tick and our timer matter here (2.2.0 drops the rest)."""
        match event:
            case PeerMessage(msg=InstallSnapshotRpc() as rpc):
                if rpc.term < self.current_term:
                    return
                if rpc.meta != self.snapshot_receiving and rpc.chunk_state.number == 1:
                    self.abort_snapshot(effects)
                    self.first_snapshot_chunk(event, rpc, effects)
                    return
                self.snapshot_chunk(event, rpc, effects)
            case TimerFired(key=TimerKind.RECEIVE_SNAPSHOT):
                self.abort_snapshot(effects)
                self.arm_election_timer(self.long_timeout(), effects)
            case LogWritten(to_index=to_index, term=term):
                self.log.written(to_index, term)
            case _ if not _is_call(event):
                self.handle_common(event, effects)
            case _:
                pass

    def snapshot_chunk(self, event: PeerMessage, rpc: InstallSnapshotRpc, effects: list[Effect]) -> None:
        """Accept chunk ``snapshot_expected``; older chunks are acknowledged and ignored."""
        meta = rpc.meta
        number = rpc.chunk_state.number
        result = InstallSnapshotResult(term=self.current_term, last_index=meta.index, last_term=meta.term)
        if number < self.snapshot_expected:
            effects.append(SendRpc(to=rpc.leader_id, rpc=result, reply_to=event.call))
            return
        if number > self.snapshot_expected:
            return
        self.snapshot_chunks.append(rpc.data)
        self.snapshot_expected += 1
        if rpc.chunk_state.flag == "last":
            if not self.complete_snapshot(meta, effects):
                return  # corrupt: Ra crashes here; we abort and the sender times out
        else:
            self.arm_timer(TimerKind.RECEIVE_SNAPSHOT, self.config.receive_snapshot_timeout_ms, effects)
        effects.append(SendRpc(to=rpc.leader_id, rpc=result, reply_to=event.call))

    def complete_snapshot(self, meta: SnapshotMeta, effects: list[Effect]) -> bool:
        """Install a fully received snapshot: log, commit, cluster and machine state follow it."""
        # The chunks concatenated are the codec's bytes (for Ra: <<Crc:32, term_to_binary(State)>>).
        # A corrupt transfer crashes a Ra 2.2.0 follower (its CRC assertion); we abort instead and
        # let the sender time out and retry.
        data = b"".join(self.snapshot_chunks)
        try:
            state = self.config.snapshot_codec.decode(meta, data)
        except ValueError:
            self.abort_snapshot(effects)
            return False
        self.snapshot_chunks = []
        # Synchronous: durable before the last chunk is acknowledged (see effects.py contract).
        effects.append(InstallSnapshot(meta=meta, state=state))
        old_meta, old_state = self.log.snapshot_meta(), self.machine_state
        self.log.reset_to_snapshot(meta)
        self.machine_state = state
        self.commit_index = max(self.commit_index, meta.index)
        self.last_applied = meta.index
        if meta.machine_version > self.effective_machine_version:
            self.effective_machine_version = meta.machine_version
            self.machine = self.config.machine.which_module(meta.machine_version)
        if meta.cluster:
            self.base_members = tuple(sorted(meta.cluster))
        self._set_changes([], effects)
        self.snapshot_in_progress = None
        self.snapshot_receiving = None
        self.set_role(Role.FOLLOWER, effects)
        # main >= 2.11 callback; harmless for 2.2.0 machines (default: no effects).
        self.run_machine_effects(
            list(self.machine.snapshot_installed(meta, state, old_meta, old_state)), effects
        )
        return True

    def abort_snapshot(self, effects: list[Effect]) -> None:
        """Give up the transfer in progress and return to follower."""
        self.snapshot_chunks = []
        self.snapshot_receiving = None
        self.set_role(Role.FOLLOWER, effects)


def _contiguous(rpc: AppendEntriesRpc) -> bool:
    """True if the RPC's entries are numbered ``prev_log_index + 1`` onwards without gaps."""
    expected = rpc.prev_log_index + 1
    for entry in rpc.entries:
        if entry.index != expected:
            return False
        expected += 1
    return True


def _is_call(event: Event) -> bool:
    """True for client requests (dropped without reply in receive_snapshot, 2.2.0)."""
    return hasattr(event, "from_")


__all__ = ["FollowerRole", "PrevCheck"]
