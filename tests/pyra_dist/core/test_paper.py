"""One test per rule of the Raft paper (Ongaro & Ousterhout 2014); each docstring quotes its section."""

from __future__ import annotations

from raft_harness import S1, S2, S3, make_cluster, noop, single, usr

from pyra_dist.core.effects import PersistMeta, Reply, SendRpc, WrapReply
from pyra_dist.core.events import (
    CommandRequest,
    LogWritten,
    PeerMessage,
    QueryRequest,
    TriggerElection,
)
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    HeartbeatReply,
    PreVoteResult,
    RequestVoteResult,
    RequestVoteRpc,
)
from pyra_dist.types import AWAIT_CONSENSUS, Role


def test_stale_term_requests_are_rejected() -> None:
    """§5.1: "If a server receives a request with a stale term number, it rejects the request." """
    core = single(term=5)
    rpc = RequestVoteRpc(term=4, candidate_id=S2, last_log_index=9, last_log_term=4)
    assert core.handle(PeerMessage(sender=S2, msg=rpc)) == [
        SendRpc(to=S2, rpc=RequestVoteResult(term=5, vote_granted=False))
    ]


def test_a_leader_that_discovers_a_higher_term_reverts_to_follower() -> None:
    """§5.1: "If a candidate or leader discovers that its term is out of date, it immediately reverts
    to follower state." """
    c = make_cluster()
    c.elect("s1")
    c.handle("s1", PeerMessage(sender=S3, msg=AppendEntriesReply(7, False, 1, 0, 0)))
    assert c["s1"].role == Role.FOLLOWER and c["s1"].term == 7


def test_at_most_one_vote_per_term_first_come_first_served() -> None:
    """§5.2: "Each server will vote for at most one candidate in a given term, on a
    first-come-first-served basis." """
    core = single(term=1)
    first = core.handle(PeerMessage(sender=S2, msg=RequestVoteRpc(2, S2, 0, 0)))
    second = core.handle(PeerMessage(sender=S3, msg=RequestVoteRpc(2, S3, 0, 0)))
    assert first[-1] == SendRpc(to=S2, rpc=RequestVoteResult(term=2, vote_granted=True))
    assert second == [SendRpc(to=S3, rpc=RequestVoteResult(term=2, vote_granted=False))]


def test_votes_are_persisted_before_responding() -> None:
    """Figure 2: "Persistent state on all servers: (Updated on stable storage before responding to
    RPCs)" — currentTerm and votedFor."""
    core = single(term=1)
    effects = core.handle(PeerMessage(sender=S2, msg=RequestVoteRpc(1, S2, 0, 0)))
    assert effects.index(PersistMeta(term=1, voted_for=S2)) < effects.index(
        SendRpc(to=S2, rpc=RequestVoteResult(term=1, vote_granted=True))
    )


def test_a_candidate_wins_with_votes_from_a_majority_of_the_full_cluster() -> None:
    """§5.2: "A candidate wins an election if it receives votes from a majority of the servers in the
    full cluster for the same term." """
    core = single(term=0, members=("s1", "s2", "s3", "s4", "s5"))
    core.handle(TriggerElection())
    core.handle(PeerMessage(sender=S2, msg=PreVoteResult(0, 42, True)))
    core.handle(PeerMessage(sender=S3, msg=PreVoteResult(0, 42, True)))
    core.handle(PeerMessage(sender=S2, msg=RequestVoteResult(1, True)))
    assert core.role == Role.CANDIDATE  # 2 of 5
    core.handle(PeerMessage(sender=S3, msg=RequestVoteResult(1, True)))
    assert core.role == Role.LEADER  # 3 of 5


def test_a_candidate_accepts_a_leader_of_its_own_term() -> None:
    """§5.2: "If the leader's term ... is at least as large as the candidate's current term, then the
    candidate recognizes the leader as legitimate and returns to follower state." """
    core = single(term=0)
    core.handle(TriggerElection())
    core.handle(PeerMessage(sender=S2, msg=PreVoteResult(0, 42, True)))
    core.handle(PeerMessage(sender=S3, msg=AppendEntriesRpc(1, S3, 0, 0, 0, ())))
    assert core.role == Role.FOLLOWER and core.leader_id == S3


def test_the_consistency_check_rejects_an_append_whose_prev_entry_differs() -> None:
    """§5.3: "If the follower does not find an entry in its log with the same index and term, then it
    refuses the new entries." """
    core = single(term=2, entries=[usr(1, 1)])
    effects = core.handle(PeerMessage(sender=S2, msg=AppendEntriesRpc(2, S2, 0, 1, 2, (usr(2, 2),))))
    assert SendRpc(to=S2, rpc=AppendEntriesReply(2, False, 1, 0, 0)) in effects
    assert core.last_index_term() == (1, 1)


def test_conflicting_entries_and_all_that_follow_are_deleted() -> None:
    """Figure 2, AppendEntries 3: "If an existing entry conflicts with a new one (same index but
    different terms), delete the existing entry and all that follow it." """
    core = single(term=3, entries=[usr(1, 1), usr(2, 1), usr(3, 1)])
    core.handle(PeerMessage(sender=S2, msg=AppendEntriesRpc(3, S2, 0, 1, 1, (usr(2, 3),))))
    assert core.last_index_term() == (2, 3)


def test_commit_index_is_the_minimum_of_leader_commit_and_the_last_new_entry() -> None:
    """Figure 2, AppendEntries 5: "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit,
    index of last new entry)." """
    core = single(term=1)
    core.handle(PeerMessage(sender=S2, msg=AppendEntriesRpc(1, S2, 9, 0, 0, (noop(1, 1), usr(2, 1)))))
    assert core.commit_index == 2


def test_the_voter_denies_a_candidate_whose_log_is_less_up_to_date() -> None:
    """§5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the
    candidate." """
    core = single(term=2, entries=[usr(1, 1), usr(2, 2)])
    effects = core.handle(PeerMessage(sender=S2, msg=RequestVoteRpc(3, S2, 5, 1)))
    assert effects[-1] == SendRpc(to=S2, rpc=RequestVoteResult(term=3, vote_granted=False))


def test_entries_of_previous_terms_are_not_committed_by_counting_replicas() -> None:
    """§5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only log
    entries from the leader's current term are committed by counting replicas." """
    core = single(term=2, entries=[noop(1, 1), usr(2, 1)], voted_for=None)
    core.handle(TriggerElection())
    core.handle(PeerMessage(sender=S2, msg=PreVoteResult(2, 42, True)))
    core.handle(PeerMessage(sender=S2, msg=RequestVoteResult(3, True)))
    assert core.role == Role.LEADER  # its noop (3, 3) is appended, unwritten
    core.handle(PeerMessage(sender=S2, msg=AppendEntriesReply(3, True, 3, 2, 1)))
    assert core.commit_index == 0  # index 2 is on a majority but of term 1
    core.handle(LogWritten(3, 3, 3))
    core.handle(PeerMessage(sender=S2, msg=AppendEntriesReply(3, True, 4, 3, 3)))
    assert core.commit_index == 3  # committing the term-3 noop commits everything before it


def test_committed_entries_are_applied_in_log_order() -> None:
    """Figure 2, all servers: "If commitIndex > lastApplied: increment lastApplied, apply
    log[lastApplied] to state machine." """
    c = make_cluster()
    c.elect("s1")
    for i in range(3):
        c.handle(
            "s1",
            CommandRequest(data=("cas", "k", i - 1 if i else None, i), reply_mode=AWAIT_CONSENSUS, from_=i),
        )
    c.settle()
    assert [r for _, r in c.replies] == [WrapReply(("ok", 0)), WrapReply(("ok", 1)), WrapReply(("ok", 2))]
    assert all(core.last_applied == 4 for core in c.cores.values())


def test_read_only_queries_are_answered_after_a_heartbeat_majority() -> None:
    """§8: "a leader must check whether it has been deposed before processing a read-only request
    ... by exchanging heartbeat messages with a majority of the cluster." """
    c = make_cluster()
    c.elect("s1")
    effects = c.handle("s1", QueryRequest(kind="consistent", query=lambda s: "v", from_="q"))
    assert [e for e in effects if isinstance(e, Reply)] == []
    effects = c.handle("s1", PeerMessage(sender=S2, msg=HeartbeatReply(1, 1)))
    assert [e for e in effects if isinstance(e, Reply)] != []


def test_a_leader_never_overwrites_its_own_log() -> None:
    """§5.3 / Figure 3 Leader Append-Only: "a leader never overwrites or deletes entries in its log;
    it only appends new entries." """
    c = make_cluster()
    c.elect("s1")
    before = c.logs[S1].fetch(1, 1)
    c.handle("s1", PeerMessage(sender=S2, msg=AppendEntriesRpc(1, S2, 0, 0, 0, (usr(1, 1),))))
    assert c.logs[S1].fetch(1, 1) == before and c["s1"].role == Role.LEADER
