"""Leader handlers: becoming leader, client commands, membership, queries, leadership transfer.

Owns: what a Ra 2.2.0 leader does with each input (ra-internals §2.2-2.4, §3.3-3.4, §4, §5.2):
the election-winning sequence (empty AER to every peer, then a ``noop`` carrying the machine
version), appending client commands with their reply modes, one membership change at a time,
consistent queries through a heartbeat round, ``try_become_leader`` transfers, and stepping down or
stopping when removed. Must not: let a second membership change in before the previous one (and
the leader's noop) is applied, or answer a consistent query before a quorum confirmed leadership.
"""

from __future__ import annotations

from pyra_dist.core.effects import (
    AtomReply,
    Effect,
    ErrorReply,
    OkReply,
    SendRpc,
    WrapReply,
)
from pyra_dist.core.events import (
    CommandBatch,
    CommandRequest,
    DeleteClusterRequest,
    Event,
    JoinRequest,
    LeaveRequest,
    LogWritten,
    MachineDown,
    MachineNodeEvent,
    MachineTimer,
    PeerCallFailed,
    PeerMessage,
    QueryRequest,
    StateQueryRequest,
    Tick,
    TimerFired,
    TimerKind,
    TransferLeadershipRequest,
    TriggerElection,
)
from pyra_dist.core.machine import Down, NodeDown, NodeUp, Timeout
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    HeartbeatReply,
    HeartbeatRpc,
    InstallSnapshotResult,
    InstallSnapshotRpc,
    PreVoteRpc,
    RequestVoteResult,
    RequestVoteRpc,
    TryBecomeLeader,
)
from pyra_dist.core.quorum import agreed_value
from pyra_dist.core.replication import ReplicationMixin
from pyra_dist.core.state import ParkedCall, PeerProgress
from pyra_dist.types import (
    AfterLogAppend,
    ClusterChange,
    ClusterDelete,
    Command,
    Entry,
    Index,
    Noop,
    PeerState,
    Role,
    ServerId,
    UsrCommand,
)


class LeaderRole(ReplicationMixin):
    """Handlers for ``leader`` (and the old leader waiting for a transfer)."""

    # -- becoming leader -------------------------------------------------------------------------------

    def become_leader(self, effects: list[Effect]) -> None:
        """Raft §5.2 win: reset peers, announce with empty AERs, append the noop (ra-internals §2.3)."""
        self.leader_id = self.id
        self.votes = set()
        self.disarm_election_timer(effects)
        last_index, last_term = self.log.last_index_term()
        self.peers = {peer: PeerProgress(next_index=last_index + 1) for peer in self.others()}
        self.cluster_change_permitted = False
        self.query_index = 0
        self.pending_queries = []
        self.parked_queries = []
        self.set_role(Role.LEADER, effects)
        for peer in sorted(self.peers):
            self.send_aer(peer, self.peers[peer], last_index, last_term, (), effects)
        # 2.2.0: the noop carries the leader's latest machine version (ra-internals §3.2).
        noop = self.leader_append(
            Noop(machine_version=self.config.machine.version(), ts=self.now_ms), effects
        )
        self.noop_index = noop.index
        self.replicate_all(effects)
        # Calls parked while campaigning are handled as if freshly received (ra-internals §4.1).
        parked, self.parked = self.parked, []
        for call in parked:
            self.leader_handle(call.event, effects)

    def noop_applied(self) -> bool:
        """True once this leader's noop is applied (gate for membership changes, §3.4)."""
        return self.role == Role.LEADER and self.last_applied >= self.noop_index

    def leader_append(self, command: Command, effects: list[Effect]) -> Entry:
        """Append ``command`` at the next index in the current term."""
        entry = Entry(index=self.log.last_index + 1, term=self.current_term, command=command)
        self.log_append([entry], effects)
        return entry

    def append_usr(self, command: UsrCommand, effects: list[Effect]) -> Index:
        """Append a user command; ``after_log_append`` is answered right away with ``{Index, Term}``."""
        entry = self.leader_append(command, effects)
        if isinstance(command.reply_mode, AfterLogAppend) and command.from_ is not None:
            self.reply(command.from_, WrapReply(reply=(entry.index, entry.term)), effects)
        return entry.index

    def members_changed(self, effects: list[Effect]) -> None:
        """Keep the peer map in step with the configuration (new members start at next_index 1)."""
        if self.role != Role.LEADER and not self.transferring:
            return
        wanted = set(self.others())
        for peer in list(self.peers):
            if peer not in wanted:
                del self.peers[peer]
        for peer in sorted(wanted):
            if peer not in self.peers:
                self.peers[peer] = PeerProgress(next_index=1)

    # -- the handler -------------------------------------------------------------------------------------

    def leader_handle(self, event: Event, effects: list[Effect]) -> None:
        """Handle ``event`` as the leader."""
        if self.handle_common(event, effects):
            return
        match event:
            case PeerMessage(sender=sender, msg=msg):
                self.leader_peer_message(event, sender, msg, effects)
            case CommandRequest(priority="low"):
                # Ra queues low-priority commands and appends them in batches on flush_commands.
                self.low_queue.append(event)
                if TimerKind.FLUSH_COMMANDS not in self.armed:
                    self.arm_timer(TimerKind.FLUSH_COMMANDS, 0, effects)
            case TimerFired(key=TimerKind.FLUSH_COMMANDS):
                self.flush_commands(effects)
            case CommandRequest(data=data, reply_mode=mode, from_=from_, system_time=ts):
                # Normal priority: appended now and pipelined to every peer before our own write is
                # durable (Ra does the same; our own copy only counts once LogWritten confirms it).
                # ``from_`` is stored in the entry's meta: whichever server leads when the entry is
                # applied answers the caller (ra-internals §3.2, ``Meta.from``).
                self.append_usr(
                    UsrCommand(data=data, reply_mode=mode, from_=from_, ts=ts or self.now_ms), effects
                )
                self.replicate_all(effects)
            case CommandBatch(commands=commands):
                self.append_command_batch(commands, effects)
            case JoinRequest() | LeaveRequest():
                self.membership_request(event, effects)
            case DeleteClusterRequest(from_=from_, system_time=ts):
                # '$ra_cluster' delete is an ordinary replicated entry; every member stops once it
                # applies it (ra-internals §3.5).
                self.leader_append(ClusterDelete(from_=from_, ts=ts or self.now_ms), effects)
                self.replicate_all(effects)
            case QueryRequest(kind="leader") as query:
                # leader_query: answered from our applied state without a round (may be stale if we
                # were deposed and do not know it yet; that is Ra's documented semantics).
                self.local_query_reply(query, effects)
            case QueryRequest(kind="consistent") as query:
                self.consistent_query(query, effects)
            case QueryRequest():
                self.local_query_reply(event, effects)
            case StateQueryRequest(what=what, from_=from_):
                self.reply(from_, OkReply(value=self.state_query_value(what), leader=self.id), effects)
            case TransferLeadershipRequest(target=target, from_=from_):
                self.transfer_leadership(target, from_, effects)
            case TriggerElection(from_=from_):
                self.reply(from_, AtomReply(atom="ok"), effects)
            case TimerFired(key=MachineTimer(name=name)):
                # Machine timers, monitors and node events become log entries so that every replica
                # applies them at the same index (ra-internals §6.3 built-in commands).
                self.append_usr(UsrCommand(data=Timeout(name=name), ts=self.now_ms), effects)
                self.replicate_all(effects)
            case MachineDown(pid=pid, info=info):
                self.append_usr(UsrCommand(data=Down(pid=pid, info=info), ts=self.now_ms), effects)
                self.replicate_all(effects)
            case MachineNodeEvent(node=node, up=up):
                data = NodeUp(node=node) if up else NodeDown(node=node)
                self.append_usr(UsrCommand(data=data, ts=self.now_ms), effects)
                self.replicate_all(effects)
            case LogWritten(to_index=to_index, term=term):
                # Our own durability counts like a follower's match index (Ra: last_written_index).
                if self.log.written(to_index, term):
                    self.maybe_commit(effects)
            case Tick(system_time=now):
                self.leader_tick(now, effects)
            case PeerCallFailed(peer=peer, rpc=InstallSnapshotRpc()):
                self.snapshot_call_failed(peer)
            case _:
                pass

    def append_command_batch(self, commands: tuple[CommandRequest, ...], effects: list[Effect]) -> None:
        """Ra's ``{commands, Cmds}``: append the normal-priority ones at once, replicate once.

        The result equals handling each ``CommandRequest`` in turn, except that the entries go out in
        one AER per peer (and one ``AppendToLog``) instead of one per command.
        """
        first = self.log.last_index + 1
        term = self.current_term
        now = self.now_ms
        entries: list[Entry] = []
        for request in commands:
            if request.priority == "low":
                self.leader_handle(request, effects)
                continue
            command = UsrCommand(
                data=request.data,
                reply_mode=request.reply_mode,
                from_=request.from_,
                ts=request.system_time or now,
            )
            entries.append(Entry(index=first + len(entries), term=term, command=command))
        if not entries:
            return
        self.log_append(entries, effects)
        for entry in entries:
            cmd = entry.command
            assert isinstance(cmd, UsrCommand)
            if cmd.from_ is not None and isinstance(cmd.reply_mode, AfterLogAppend):
                self.reply(cmd.from_, WrapReply(reply=(entry.index, entry.term)), effects)
        self.replicate_all(effects)

    def flush_commands(self, effects: list[Effect]) -> None:
        """Append up to ``low_priority_flush_size`` queued low-priority commands as one batch."""
        # One flush appends one batch (Ra: low_priority_commands_flush_size, 25 in 2.2.0) with a
        # single AppendToLog and one AER per peer; the rest waits for the next flush so that normal
        # commands and peer traffic interleave with a long pipeline of low-priority casts.
        size = self.config.low_priority_flush_size
        batch, self.low_queue = self.low_queue[:size], self.low_queue[size:]
        if batch:
            first = self.log.last_index + 1
            entries = [
                Entry(
                    index=first + n,
                    term=self.current_term,
                    command=UsrCommand(
                        data=req.data,
                        reply_mode=req.reply_mode,
                        from_=req.from_,
                        ts=req.system_time or self.now_ms,
                    ),
                )
                for n, req in enumerate(batch)
            ]
            self.log_append(entries, effects)
            for entry in entries:
                cmd = entry.command
                assert isinstance(cmd, UsrCommand)
                if isinstance(cmd.reply_mode, AfterLogAppend) and cmd.from_ is not None:
                    self.reply(cmd.from_, WrapReply(reply=(entry.index, entry.term)), effects)
            self.replicate_all(effects)
        if self.low_queue:
            self.arm_timer(TimerKind.FLUSH_COMMANDS, 0, effects)

    def leader_peer_message(
        self, event: PeerMessage, sender: ServerId, msg: object, effects: list[Effect]
    ) -> None:
        """Peer records reaching a leader (terms already normalised)."""
        match msg:
            case AppendEntriesReply():
                self.on_aer_reply(sender, msg, effects)
            case HeartbeatReply():
                self.on_heartbeat_reply(sender, msg, effects)
            case InstallSnapshotResult():
                self.on_snapshot_result(sender, msg, effects)
            case PreVoteRpc():
                # 2.2.0: no answer; "enforce leadership" by re-sending AERs to every peer (§2.3).
                for peer in sorted(self.peers):
                    self.replicate(peer, effects, force=True)
            case RequestVoteRpc():
                result = RequestVoteResult(term=self.current_term, vote_granted=False)
                effects.append(SendRpc(to=msg.candidate_id, rpc=result, reply_to=event.call))
            case AppendEntriesRpc():
                if msg.term < self.current_term:
                    reply = AppendEntriesReply(
                        term=self.current_term,
                        success=False,
                        next_index=self.log.last_index + 1,
                        last_index=self.log.last_written()[0],
                        last_term=self.log.last_written()[1],
                    )
                    effects.append(SendRpc(to=msg.leader_id, rpc=reply))
            case HeartbeatRpc():
                if msg.term < self.current_term:
                    reply_hb = HeartbeatReply(query_index=msg.query_index, term=self.current_term)
                    effects.append(SendRpc(to=msg.leader_id, rpc=reply_hb))
            case InstallSnapshotRpc() | TryBecomeLeader():
                pass
            case _:
                pass  # stale vote results

    def leader_tick(self, now: int, effects: list[Effect]) -> None:
        """Ra's tick: re-send to stale peers, heartbeats for pending queries, machine tick."""
        # Idle leaders send nothing (ra-internals §2.2): only peers with unconfirmed entries or an
        # unsent commit index get traffic. Restarting at match + 1 recovers from AERs the network
        # lost; duplicates are harmless because followers skip entries they already hold (§5.3).
        last = self.log.last_index
        for peer in sorted(self.peers):
            p = self.peers[peer]
            if p.status != "normal":
                continue
            if p.match_index < last:
                # Unconfirmed entries (maybe lost): restart the pipeline after the last match.
                p.next_index = p.match_index + 1
                self.replicate(peer, effects)
            elif p.commit_index_sent < self.commit_index:
                self.replicate(peer, effects)
        self.tick_snapshot_transfers(effects)
        if self.pending_queries:
            self.send_heartbeats(effects)
        self.run_machine_effects(list(self.machine.tick(now, self.machine_state)), effects)

    # -- membership (ra-internals §3.3, §3.4) -----------------------------------------------------------

    def membership_request(self, event: JoinRequest | LeaveRequest, effects: list[Effect]) -> None:
        """``'$ra_join'``/``'$ra_leave'`` become a ``'$ra_cluster_change'`` entry; one at a time."""
        # Single-server changes are safe only one at a time: any two majorities of C and C +/- 1
        # overlap, but not across two unfinished steps (Raft thesis §4.1). Ra also waits for the new
        # leader's noop so that changes from a previous term are settled first (§3.4).
        if not self.cluster_change_permitted:
            self.reply(event.from_, ErrorReply(reason="cluster_change_not_permitted"), effects)
            return
        if isinstance(event, JoinRequest):
            if event.server_id in self.members:
                self.reply(event.from_, ErrorReply(reason="already_member"), effects)
                return
            new_members = tuple(sorted((*self.members, event.server_id)))
        else:
            if event.server_id not in self.members:
                self.reply(event.from_, ErrorReply(reason="not_member"), effects)
                return
            new_members = tuple(m for m in self.members if m != event.server_id)
        # The entry carries the leader's whole peer map (2.2.0 shape); followers use only its keys.
        # It is effective on append, on every server (§3.3), so the peer map changes right away.
        cluster = {m: self.peer_state(m) for m in new_members}
        change = ClusterChange(
            cluster=cluster,
            reply_mode=event.reply_mode,
            from_=event.from_,
            ts=event.system_time or self.now_ms,
        )
        self.cluster_change_permitted = False
        entry = self.leader_append(change, effects)
        if isinstance(event.reply_mode, AfterLogAppend):
            self.reply(event.from_, WrapReply(reply=(entry.index, entry.term)), effects)
        self.replicate_all(effects)
        self.maybe_commit(effects)

    def peer_state(self, member: ServerId) -> PeerState:
        """The 2.2.0 cluster-map value for ``member`` (five keys, status normal, ra-internals §3.3)."""
        p = self.peers.get(member)
        if p is None:
            return PeerState()
        return PeerState(
            next_index=p.next_index,
            match_index=p.match_index,
            commit_index_sent=p.commit_index_sent,
            query_index=p.query_index,
        )

    def after_apply(self, effects: list[Effect]) -> None:
        """Leader duties after applying: release queries, re-issue parked ones, stop when removed."""
        super().after_apply(effects)
        if self.role != Role.LEADER:
            return
        self.release_queries(effects)
        if self.cluster_change_permitted and self.parked_queries:
            parked, self.parked_queries = self.parked_queries, []
            for query in parked:
                self.consistent_query(query, effects)
        removed = not self.is_member() and not any(i > self.last_applied for i, _ in self.cluster_changes)
        if removed or self.stopping == "delete":
            # Tell the peers the final commit index before going (ra-internals §3.3, §3.5).
            for peer in sorted(self.peers):
                self.replicate(peer, effects, force=True)
            delete = self.stopping == "delete"
            self.set_role(Role.TERMINATING_LEADER, effects)
            self.stop("delete" if delete else "normal", effects, delete_data=delete)

    # -- consistent queries (ra-internals §2.4) ----------------------------------------------------------

    def consistent_query(self, query: QueryRequest, effects: list[Effect]) -> None:
        """Start a heartbeat round; the answer waits for a quorum of the round and for the commit
        index at call time to be applied (linearizable read, Raft §8)."""
        if not self.cluster_change_permitted:
            # Ra parks consistent queries while the configuration is in flux: the heartbeat quorum
            # would otherwise be counted against a configuration that may still be replaced (§2.4).
            self.parked_queries.append(query)
            return
        # The query remembers the commit index at call time: answering after a quorum confirmed our
        # leadership *and* once that index is applied gives a linearizable read (Raft §8).
        self.query_index += 1
        self.pending_queries.append((self.query_index, self.commit_index, query))
        self.send_heartbeats(effects)
        self.release_queries(effects)

    def send_heartbeats(self, effects: list[Effect]) -> None:
        """Cast ``heartbeat_rpc`` to every peer whose query index is behind."""
        for peer in sorted(self.peers):
            p = self.peers[peer]
            if p.query_index < self.query_index:
                rpc = HeartbeatRpc(query_index=self.query_index, term=self.current_term, leader_id=self.id)
                effects.append(SendRpc(to=peer, rpc=rpc))

    def on_heartbeat_reply(self, peer: ServerId, reply: HeartbeatReply, effects: list[Effect]) -> None:
        """Raise the peer's query index and release what a quorum confirmed."""
        p = self.peers.get(peer)
        if p is None or reply.term != self.current_term:
            return
        p.query_index = max(p.query_index, min(reply.query_index, self.query_index))
        self.release_queries(effects)

    def release_queries(self, effects: list[Effect]) -> None:
        """Answer queued consistent queries confirmed by a quorum and applied far enough."""
        if not self.pending_queries:
            return
        agreed = agreed_value(
            self.query_index if m == self.id else self.peers[m].query_index
            for m in self.members
            if m == self.id or m in self.peers
        )
        keep: list[tuple[int, Index, QueryRequest]] = []
        for qi, commit, query in self.pending_queries:
            if qi <= agreed and self.last_applied >= commit:
                ok, result = self.run_query(query.query)
                reply = OkReply(value=result, leader=self.id) if ok else ErrorReply(reason=result)
                self.reply(query.from_, reply, effects)
            else:
                keep.append((qi, commit, query))
        self.pending_queries = keep

    def leaving_leadership(self, effects: list[Effect]) -> None:
        """On step-down, queued queries and low-priority commands wait for the new leader and are then
        redirected, forwarded or rejected (§2.4, §4.1)."""
        for request in self.low_queue:
            self.parked.append(ParkedCall(event=request))
        self.low_queue = []
        for _, _, query in self.pending_queries:
            self.parked.append(ParkedCall(event=query))
        for query in self.parked_queries:
            self.parked.append(ParkedCall(event=query))
        self.pending_queries = []
        self.parked_queries = []

    # -- leadership transfer (ra-internals §5.2, 2.2.0) --------------------------------------------------

    def transfer_leadership(self, target: ServerId, from_: object, effects: list[Effect]) -> None:
        """Cast ``try_become_leader`` to ``target`` and wait in ``await_condition`` for its term."""
        if target == self.id:
            self.reply(from_, AtomReply(atom="already_leader"), effects)
            return
        if target not in self.members:
            self.reply(from_, ErrorReply(reason="unknown_member"), effects)
            return
        # 2.2.0 does not check that the target is up to date (main does, since 3.1.8): if it is not,
        # its election fails, our await_condition times out after 30 s and we lead again.
        effects.append(SendRpc(to=target, rpc=TryBecomeLeader()))
        self.reply(from_, AtomReply(atom="ok"), effects)
        self.transferring = True
        self.set_role(Role.AWAIT_CONDITION, effects)
        self.arm_timer(TimerKind.AWAIT_CONDITION, self.config.await_condition_timeout_ms, effects)

    def transfer_wait_handle(self, event: Event, effects: list[Effect]) -> None:
        """The old leader during a transfer: a higher term (handled by ``RaftCore``) makes it a follower;
        on timeout it resumes leading. Client calls wait; replication bookkeeping continues."""
        if self.handle_common(event, effects):
            return
        match event:
            case TimerFired(key=TimerKind.AWAIT_CONDITION):
                self.transferring = False
                self.set_role(Role.LEADER, effects)
                self.replicate_all(effects)
                if self.low_queue:
                    self.arm_timer(TimerKind.FLUSH_COMMANDS, 0, effects)
                parked, self.parked = self.parked, []
                for call in parked:
                    self.leader_handle(call.event, effects)
            case TimerFired(key=TimerKind.ELECTION):
                # Ra 2.2.0's await_condition starts a pre-vote on an election timeout (armed when
                # the target's failed campaign reached us): the transfer failed, campaign again
                # rather than park every call until the await_condition timeout.
                self.become_follower(effects)
                self.follower_handle(event, effects)
            case PeerMessage(sender=sender, msg=AppendEntriesReply() | InstallSnapshotResult() as msg):
                if isinstance(msg, AppendEntriesReply):
                    self.on_aer_reply(sender, msg, effects)
                else:
                    self.on_snapshot_result(sender, msg, effects)
            case LogWritten(to_index=to_index, term=term):
                if self.log.written(to_index, term):
                    self.maybe_commit(effects)
            case PeerCallFailed(peer=peer, rpc=InstallSnapshotRpc()):
                self.snapshot_call_failed(peer)
            case PeerMessage():
                self.follower_handle(event, effects)
            case _ if hasattr(event, "from_"):
                self.parked.append(ParkedCall(event=event))
            case _:
                pass


__all__ = ["LeaderRole"]
