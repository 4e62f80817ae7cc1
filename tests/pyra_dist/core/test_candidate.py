"""pre_vote and candidate: the exact effects of each input (ra-internals §2.3, §8.1)."""

from __future__ import annotations

from raft_harness import LONG_MS, S1, S2, S3, SHORT_MS, sid, single, usr

from pyra_dist.core.effects import (
    AppendToLog,
    CancelTimer,
    PersistMeta,
    Reply,
    RoleChanged,
    SendRpc,
    StartTimer,
    WrapReply,
)
from pyra_dist.core.events import (
    CommandRequest,
    LogWritten,
    PeerMessage,
    TimerFired,
    TimerKind,
    TriggerElection,
)
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    PreVoteResult,
    PreVoteRpc,
    RequestVoteResult,
    RequestVoteRpc,
)
from pyra_dist.types import AWAIT_CONSENSUS, Entry, Noop, Role, UsrCommand


def pre_voting(**kw: object) -> object:
    core = single(**kw)  # type: ignore[arg-type]
    core.handle(TriggerElection())
    assert core.role == Role.PRE_VOTE
    return core


def test_a_pre_vote_majority_starts_an_election_with_a_persisted_term_and_self_vote() -> None:
    core = single(term=2, entries=[usr(1, 2)])
    core.handle(TriggerElection())
    vote = RequestVoteRpc(term=3, candidate_id=S1, last_log_index=1, last_log_term=2)
    assert core.handle(PeerMessage(sender=S2, msg=PreVoteResult(term=2, token=42, vote_granted=True))) == [
        PersistMeta(term=3, voted_for=S1),
        CancelTimer(key=TimerKind.ELECTION),  # state timeouts end with the state (gen_statem)
        RoleChanged(old=Role.PRE_VOTE, new=Role.CANDIDATE),
        SendRpc(to=S2, rpc=vote),
        SendRpc(to=S3, rpc=vote),
        StartTimer(key=TimerKind.ELECTION, after_ms=SHORT_MS),
    ]


def test_pre_vote_results_with_another_token_or_term_are_ignored() -> None:
    core = single(term=2)
    core.handle(TriggerElection())
    assert core.handle(PeerMessage(sender=S2, msg=PreVoteResult(term=2, token=41, vote_granted=True))) == []
    assert core.handle(PeerMessage(sender=S2, msg=PreVoteResult(term=1, token=42, vote_granted=True))) == []
    assert core.role == Role.PRE_VOTE


def test_a_vote_from_the_same_member_counts_once() -> None:
    names = ("s1", "s2", "s3", "s4", "s5")
    core = single(term=1, members=names)
    core.handle(TriggerElection())
    core.handle(PeerMessage(sender=S2, msg=PreVoteResult(term=1, token=42, vote_granted=True)))
    assert core.handle(PeerMessage(sender=S2, msg=PreVoteResult(term=1, token=42, vote_granted=True))) == []
    assert core.role == Role.PRE_VOTE
    core.handle(PeerMessage(sender=S3, msg=PreVoteResult(term=1, token=42, vote_granted=True)))
    assert core.role == Role.CANDIDATE
    core.handle(PeerMessage(sender=S2, msg=RequestVoteResult(term=2, vote_granted=True)))
    assert core.handle(PeerMessage(sender=S2, msg=RequestVoteResult(term=2, vote_granted=True))) == []
    assert core.role == Role.CANDIDATE
    core.handle(PeerMessage(sender=sid("s4"), msg=RequestVoteResult(term=2, vote_granted=True)))
    assert core.role == Role.LEADER


def test_winning_candidate_sends_empty_appends_then_appends_a_noop_with_its_machine_version() -> None:
    core = single(term=0)
    core.handle(TriggerElection())
    core.handle(PeerMessage(sender=S2, msg=PreVoteResult(term=0, token=42, vote_granted=True)))
    empty = AppendEntriesRpc(1, S1, 0, 0, 0, ())
    noop = Entry(1, 1, Noop(machine_version=0, ts=0))
    with_noop = AppendEntriesRpc(1, S1, 0, 0, 0, (noop,))
    assert core.handle(PeerMessage(sender=S2, msg=RequestVoteResult(term=1, vote_granted=True))) == [
        CancelTimer(key=TimerKind.ELECTION),
        RoleChanged(old=Role.CANDIDATE, new=Role.LEADER, leader_id=S1),
        SendRpc(to=S2, rpc=empty),
        SendRpc(to=S3, rpc=empty),
        AppendToLog(entries=(noop,)),
        SendRpc(to=S2, rpc=with_noop),
        SendRpc(to=S3, rpc=with_noop),
    ]


def test_a_candidate_becomes_follower_on_an_append_from_a_leader_of_its_term() -> None:
    core = single(term=0)
    core.handle(TriggerElection())
    core.handle(PeerMessage(sender=S2, msg=PreVoteResult(term=0, token=42, vote_granted=True)))
    assert core.role == Role.CANDIDATE
    effects = core.handle(PeerMessage(sender=S3, msg=AppendEntriesRpc(1, S3, 0, 0, 0, ())))
    assert effects[:2] == [
        CancelTimer(key=TimerKind.ELECTION),
        RoleChanged(old=Role.CANDIDATE, new=Role.FOLLOWER),
    ]
    assert effects[-1] == SendRpc(
        to=S3, rpc=AppendEntriesReply(term=1, success=True, next_index=1, last_index=0, last_term=0)
    )
    assert core.leader_id == S3


def test_candidate_ignores_pre_votes_of_its_term_as_ra_2_2_0_does() -> None:
    core = single(term=0)
    core.handle(TriggerElection())
    core.handle(PeerMessage(sender=S2, msg=PreVoteResult(term=0, token=42, vote_granted=True)))
    assert core.handle(PeerMessage(sender=S3, msg=PreVoteRpc(1, 0, 1, "t", S3, 5, 5))) == []


def test_candidate_timeout_starts_a_new_election_in_the_next_term() -> None:
    core = single(term=0)
    core.handle(TriggerElection())
    core.handle(PeerMessage(sender=S2, msg=PreVoteResult(term=0, token=42, vote_granted=True)))
    effects = core.handle(TimerFired(key=TimerKind.ELECTION))
    assert effects[0] == PersistMeta(term=2, voted_for=S1)
    assert core.role == Role.CANDIDATE and core.term == 2


def test_pre_vote_timeout_starts_a_new_round() -> None:
    core = single(term=0)
    core.handle(TriggerElection())
    effects = core.handle(TimerFired(key=TimerKind.ELECTION))
    assert effects[-1] == StartTimer(key=TimerKind.ELECTION, after_ms=LONG_MS)
    assert core.role == Role.PRE_VOTE and core.term == 0


def test_a_single_member_cluster_elects_itself_and_commits_alone() -> None:
    """ra_SUITE:single_server_processes_command (ra-internals §11.2 #1)."""
    core = single(members=("s1",))
    core.handle(TriggerElection())
    assert core.role == Role.LEADER
    core.handle(LogWritten(1, 1, 1))
    core.handle(CommandRequest(data=("put", "a", 1), reply_mode=AWAIT_CONSENSUS, from_="c"))
    assert core.handle(LogWritten(2, 2, 1)) == [Reply(to="c", reply=WrapReply(reply="ok"))]
    assert core.machine_state == {"a": 1}


def test_calls_parked_during_an_election_are_handled_when_this_server_wins() -> None:
    """ra_SUITE:send_command_to_follower_during_election (ra-internals §11.2 #18)."""
    core = single(term=0)
    core.handle(TriggerElection())
    assert core.handle(CommandRequest(data=("put", "a", 1), reply_mode=AWAIT_CONSENSUS, from_="c")) == []
    core.handle(PeerMessage(sender=S2, msg=PreVoteResult(term=0, token=42, vote_granted=True)))
    effects = core.handle(PeerMessage(sender=S2, msg=RequestVoteResult(term=1, vote_granted=True)))
    command = Entry(2, 1, UsrCommand(data=("put", "a", 1), reply_mode=AWAIT_CONSENSUS, from_="c"))
    assert AppendToLog(entries=(command,)) in effects
