"""Pre-vote and candidate handlers: how a server campaigns (ra-internals §2.3, §8.1).

Owns: the pre-vote round (term unchanged, ``voted_for := self`` persisted, fresh token, self-vote),
the election (term + 1 persisted with ``voted_for := self`` before any request leaves), vote
counting by distinct members (Raft §5.2) and the fall back to follower on a current leader's RPC.
Must not: count a vote twice, count a result for another term or token, or answer client calls
(they are parked until the outcome is known, ra-internals §4.1).
"""

from __future__ import annotations

from pyra_dist.core.common import CommonRole
from pyra_dist.core.effects import AtomReply, Effect, SendRpc
from pyra_dist.core.events import Event, LogWritten, PeerMessage, TimerFired, TimerKind, TriggerElection
from pyra_dist.core.messages import (
    RA_PROTO_VERSION,
    AppendEntriesRpc,
    HeartbeatRpc,
    InstallSnapshotRpc,
    PreVoteResult,
    PreVoteRpc,
    RequestVoteResult,
    RequestVoteRpc,
)
from pyra_dist.core.quorum import has_quorum
from pyra_dist.types import Role


class CandidateRole(CommonRole):
    """Handlers for ``pre_vote`` and ``candidate``."""

    # -- transitions ---------------------------------------------------------------------------------

    def start_pre_vote(self, effects: list[Effect]) -> None:
        """Enter ``pre_vote``: ask every member whether it would vote for us, without raising the term."""
        # Pre-vote (Raft thesis §9.6) asks "would you vote for me?" without raising the term, so a
        # partitioned server cannot disrupt a healthy cluster by inflating terms. Ra records
        # voted_for := self (persisted) in the *current* term; the real candidacy uses term + 1.
        self.leader_id = None
        self.persist_term(self.current_term, self.id, effects)
        # A fresh token per round: results of an older round (delayed on the network) do not count.
        self.pre_vote_token = self.config.rng.getrandbits(64)
        self.votes = {self.id}
        self.set_role(Role.PRE_VOTE, effects)
        last_index, last_term = self.log.last_index_term()
        for peer in self.others():
            rpc = PreVoteRpc(
                version=RA_PROTO_VERSION,
                machine_version=self.config.machine.version(),
                term=self.current_term,
                token=self.pre_vote_token,
                candidate_id=self.id,
                last_log_index=last_index,
                last_log_term=last_term,
            )
            effects.append(SendRpc(to=peer, rpc=rpc))
        self.arm_election_timer(self.long_timeout(), effects)
        if has_quorum(len(self.votes), len(self.members)):
            self.start_election(effects)

    def start_election(self, effects: list[Effect]) -> None:
        """Raft §5.2: increment the term, vote for self (durably), request votes from every member."""
        # The new term and our own vote are durable before any RequestVote leaves (Figure 2), so a
        # crash and restart can never vote twice in this term.
        self.leader_id = None
        self.persist_term(self.current_term + 1, self.id, effects)
        self.pre_vote_token = None
        self.votes = {self.id}
        self.set_role(Role.CANDIDATE, effects)
        last_index, last_term = self.log.last_index_term()
        for peer in self.others():
            rpc = RequestVoteRpc(
                term=self.current_term,
                candidate_id=self.id,
                last_log_index=last_index,
                last_log_term=last_term,
            )
            effects.append(SendRpc(to=peer, rpc=rpc))
        self.arm_election_timer(self.short_timeout(), effects)
        if has_quorum(len(self.votes), len(self.members)):
            self.become_leader(effects)

    # -- handlers ------------------------------------------------------------------------------------

    def pre_vote_handle(self, event: Event, effects: list[Effect]) -> None:
        """Handle ``event`` in ``pre_vote``."""
        if self.handle_common(event, effects):
            return
        if self.non_leader_client(event, effects, can_redirect=False):
            return
        match event:
            case PeerMessage(sender=sender, msg=PreVoteResult() as result):
                # Votes are a set of members, so a duplicated result cannot be counted twice.
                if (
                    result.vote_granted
                    and result.term == self.current_term
                    and result.token == self.pre_vote_token
                    and sender in self.members
                ):
                    self.votes.add(sender)
                    if has_quorum(len(self.votes), len(self.members)):
                        self.start_election(effects)
            case PeerMessage(msg=PreVoteRpc() as rpc):
                self.answer_pre_vote(event, rpc, effects, silent_if_behind=False)
            case PeerMessage(msg=RequestVoteRpc() as rpc):
                self.answer_request_vote(event, rpc, effects)
            case PeerMessage(msg=AppendEntriesRpc() | HeartbeatRpc() | InstallSnapshotRpc() as rpc):
                self.yield_to_leader(event, rpc.term, effects)
            case TimerFired(key=TimerKind.ELECTION):
                self.start_pre_vote(effects)
            case TriggerElection(from_=from_):
                self.reply(from_, AtomReply(atom="ok"), effects)
            case LogWritten(to_index=to_index, term=term):
                if self.log.written(to_index, term):
                    self.apply_committed(effects)
            case _:
                pass

    def candidate_handle(self, event: Event, effects: list[Effect]) -> None:
        """Handle ``event`` in ``candidate``."""
        if self.handle_common(event, effects):
            return
        if self.non_leader_client(event, effects, can_redirect=False):
            return
        match event:
            case PeerMessage(sender=sender, msg=RequestVoteResult() as result):
                # Raft §5.2: a majority of the full configuration (2.2.0 counts every member).
                if result.vote_granted and result.term == self.current_term and sender in self.members:
                    self.votes.add(sender)
                    if has_quorum(len(self.votes), len(self.members)):
                        self.become_leader(effects)
            case PeerMessage(msg=PreVoteRpc()):
                pass  # 2.2.0 candidates ignore pre-votes with Term <= current (ra-internals §2.3)
            case PeerMessage(msg=RequestVoteRpc() as rpc):
                self.answer_request_vote(event, rpc, effects)
            case PeerMessage(msg=AppendEntriesRpc() | HeartbeatRpc() | InstallSnapshotRpc() as rpc):
                self.yield_to_leader(event, rpc.term, effects)
            case TimerFired(key=TimerKind.ELECTION):
                # Split vote or lost messages: a new election in the next term (Raft §5.2); the
                # randomized short timer makes repeated splits unlikely.
                self.start_election(effects)
            case TriggerElection(from_=from_):
                self.reply(from_, AtomReply(atom="ok"), effects)
            case LogWritten(to_index=to_index, term=term):
                if self.log.written(to_index, term):
                    self.apply_committed(effects)
            case _:
                pass

    def yield_to_leader(self, event: PeerMessage, term: int, effects: list[Effect]) -> None:
        """Raft §5.2: an RPC from a leader of our term (or newer) makes a candidate a follower."""
        if term < self.current_term:
            self.follower_handle(event, effects)  # answered as a follower would (failure, our term)
            return
        self.disarm_election_timer(effects)
        self.become_follower(effects)
        self.follower_handle(event, effects)


__all__ = ["CandidateRole"]
