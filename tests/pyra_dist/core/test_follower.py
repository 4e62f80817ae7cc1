"""Follower, await_condition and receive_snapshot: the exact effects of each input (ra-internals §2.1-2.5)."""

from __future__ import annotations

from raft_harness import LONG_MS, REALLY_SHORT_MS, S1, S2, S3, SHORT_MS, noop, single, usr

from pyra_dist.core.effects import (
    AppendToLog,
    CancelTimer,
    DemonitorServer,
    ErrorReply,
    ForwardCommand,
    InstallSnapshot,
    LocalQueryReply,
    MonitorNode,
    MonitorServer,
    PersistMeta,
    Pong,
    Redirect,
    Rejected,
    Reply,
    RoleChanged,
    SendRpc,
    StartTimer,
    TruncateLog,
)
from pyra_dist.core.events import (
    CommandRequest,
    LogWritten,
    PeerDown,
    PeerMessage,
    PingRequest,
    QueryRequest,
    TimerFired,
    TimerKind,
)
from pyra_dist.core.log_view import PickleSnapshotCodec
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    ChunkState,
    HeartbeatReply,
    HeartbeatRpc,
    InstallSnapshotResult,
    InstallSnapshotRpc,
    PreVoteResult,
    PreVoteRpc,
    RequestVoteResult,
    RequestVoteRpc,
)
from pyra_dist.types import AWAIT_CONSENSUS, NO_REPLY, NotifyReply, Role, SnapshotMeta

LEADER_CONTACT = [MonitorServer(server_id=S2), MonitorNode(node="py@vm")]


def aer(term: int, commit: int, prev: tuple[int, int], *entries: object) -> PeerMessage:
    return PeerMessage(
        sender=S2,
        msg=AppendEntriesRpc(term, S2, commit, prev[0], prev[1], tuple(entries)),  # type: ignore[arg-type]
    )


# -- append entries ---------------------------------------------------------------------------------


def test_follower_rejects_append_entries_from_an_older_term_with_its_own_term() -> None:
    core = single(term=2)
    assert core.handle(aer(1, 0, (0, 0))) == [
        SendRpc(to=S2, rpc=AppendEntriesReply(term=2, success=False, next_index=1, last_index=0, last_term=0))
    ]


def test_follower_adopts_a_higher_term_and_persists_it_before_anything_else() -> None:
    core = single(term=0)
    effects = core.handle(aer(1, 0, (0, 0), usr(1, 1)))
    assert effects == [
        PersistMeta(term=1, voted_for=None),
        *LEADER_CONTACT,
        AppendToLog(entries=(usr(1, 1),)),
    ]
    assert core.term == 1 and core.leader_id == S2


def test_follower_replies_to_new_entries_only_after_the_log_reports_them_written() -> None:
    core = single(term=1)
    assert core.handle(aer(1, 0, (0, 0), usr(1, 1), usr(2, 1))) == [
        *LEADER_CONTACT,
        AppendToLog(entries=(usr(1, 1), usr(2, 1))),
    ]
    assert core.handle(LogWritten(1, 1, 1)) == [
        SendRpc(to=S2, rpc=AppendEntriesReply(term=1, success=True, next_index=3, last_index=1, last_term=1))
    ]
    assert core.handle(LogWritten(2, 2, 1)) == [
        SendRpc(to=S2, rpc=AppendEntriesReply(term=1, success=True, next_index=3, last_index=2, last_term=1))
    ]


def test_follower_answers_an_append_of_entries_it_already_has_at_once() -> None:
    core = single(term=1, entries=[usr(1, 1), usr(2, 1)])
    assert core.handle(aer(1, 2, (0, 0), usr(1, 1), usr(2, 1))) == [
        *LEADER_CONTACT,
        SendRpc(to=S2, rpc=AppendEntriesReply(term=1, success=True, next_index=3, last_index=2, last_term=1)),
    ]
    assert core.commit_index == 2 and core.last_applied == 2


def test_follower_with_missing_prev_entry_replies_its_next_index_and_awaits_condition() -> None:
    core = single(term=1, entries=[usr(1, 1)])
    assert core.handle(aer(1, 0, (5, 1), usr(6, 1))) == [
        *LEADER_CONTACT,
        SendRpc(
            to=S2, rpc=AppendEntriesReply(term=1, success=False, next_index=2, last_index=1, last_term=1)
        ),
        RoleChanged(old=Role.FOLLOWER, new=Role.AWAIT_CONDITION, leader_id=S2),
        StartTimer(key=TimerKind.AWAIT_CONDITION, after_ms=30_000),
    ]


def test_follower_with_a_term_mismatch_replies_last_applied_plus_one() -> None:
    """Ra ra_server_SUITE:follower_aer_term_mismatch (ra-internals §11.2 #21)."""
    core = single(term=2, entries=[usr(1, 1), usr(2, 1), usr(3, 1)], last_applied=1)
    assert core.handle(aer(2, 1, (3, 2))) == [
        *LEADER_CONTACT,
        SendRpc(
            to=S2, rpc=AppendEntriesReply(term=2, success=False, next_index=2, last_index=1, last_term=1)
        ),
        RoleChanged(old=Role.FOLLOWER, new=Role.AWAIT_CONDITION, leader_id=S2),
        StartTimer(key=TimerKind.AWAIT_CONDITION, after_ms=30_000),
    ]


def test_await_condition_drops_non_matching_appends_without_reply() -> None:
    core = single(term=1, entries=[usr(1, 1)])
    core.handle(aer(1, 0, (5, 1), usr(6, 1)))
    assert core.handle(aer(1, 0, (6, 1), usr(7, 1))) == []
    assert core.role == Role.AWAIT_CONDITION


def test_await_condition_is_left_by_a_matching_append() -> None:
    core = single(term=1, entries=[usr(1, 1)])
    core.handle(aer(1, 0, (5, 1), usr(6, 1)))
    assert core.handle(aer(1, 0, (1, 1), usr(2, 1))) == [
        CancelTimer(key=TimerKind.AWAIT_CONDITION),
        RoleChanged(old=Role.AWAIT_CONDITION, new=Role.FOLLOWER, leader_id=S2),
        AppendToLog(entries=(usr(2, 1),)),
    ]


def test_await_condition_timeout_resends_the_failure_reply() -> None:
    core = single(term=1, entries=[usr(1, 1)])
    core.handle(aer(1, 0, (5, 1), usr(6, 1)))
    assert core.handle(TimerFired(key=TimerKind.AWAIT_CONDITION)) == [
        RoleChanged(old=Role.AWAIT_CONDITION, new=Role.FOLLOWER, leader_id=S2),
        SendRpc(
            to=S2, rpc=AppendEntriesReply(term=1, success=False, next_index=2, last_index=1, last_term=1)
        ),
    ]


def test_follower_truncates_a_stale_tail_from_an_older_term_on_an_empty_append() -> None:
    core = single(term=2, entries=[usr(1, 1), usr(2, 1), usr(3, 1)])
    assert core.handle(aer(2, 0, (1, 1))) == [
        *LEADER_CONTACT,
        TruncateLog(last_index=1),
        SendRpc(to=S2, rpc=AppendEntriesReply(term=2, success=True, next_index=2, last_index=1, last_term=1)),
    ]


def test_follower_overwrites_a_conflicting_suffix() -> None:
    core = single(term=2, entries=[usr(1, 1), usr(2, 1), usr(3, 1)])
    assert core.handle(aer(2, 0, (1, 1), usr(2, 2))) == [*LEADER_CONTACT, AppendToLog(entries=(usr(2, 2),))]
    assert core.last_index_term() == (2, 2)
    assert core.last_written() == (1, 1)


# -- votes ------------------------------------------------------------------------------------------


def test_follower_persists_its_vote_before_granting_it() -> None:
    core = single(term=1)
    rpc = RequestVoteRpc(term=1, candidate_id=S2, last_log_index=0, last_log_term=0)
    assert core.handle(PeerMessage(sender=S2, msg=rpc, call="tag")) == [
        PersistMeta(term=1, voted_for=S2),
        SendRpc(to=S2, rpc=RequestVoteResult(term=1, vote_granted=True), reply_to="tag"),
    ]


def test_follower_grants_only_one_vote_per_term() -> None:
    core = single(term=1, voted_for=S2)
    rpc = RequestVoteRpc(term=1, candidate_id=S3, last_log_index=9, last_log_term=1)
    assert core.handle(PeerMessage(sender=S3, msg=rpc)) == [
        SendRpc(to=S3, rpc=RequestVoteResult(term=1, vote_granted=False))
    ]


def test_follower_rejects_vote_from_candidate_with_older_last_term() -> None:
    core = single(term=2, entries=[usr(1, 2)])
    rpc = RequestVoteRpc(term=3, candidate_id=S3, last_log_index=5, last_log_term=1)
    assert core.handle(PeerMessage(sender=S3, msg=rpc)) == [
        PersistMeta(term=3, voted_for=None),
        SendRpc(to=S3, rpc=RequestVoteResult(term=3, vote_granted=False)),
    ]


def test_follower_grants_a_pre_vote_echoing_the_token_without_recording_a_vote() -> None:
    core = single(term=1)
    rpc = PreVoteRpc(1, 0, 1, "tok", S2, 0, 0)
    assert core.handle(PeerMessage(sender=S2, msg=rpc, call="c")) == [
        SendRpc(to=S2, rpc=PreVoteResult(term=1, token="tok", vote_granted=True), reply_to="c")
    ]
    assert core.voted_for is None


def test_follower_adopts_the_term_of_a_higher_pre_vote_as_ra_does() -> None:
    core = single(term=1)
    rpc = PreVoteRpc(1, 0, 4, "tok", S2, 0, 0)
    assert core.handle(PeerMessage(sender=S2, msg=rpc)) == [
        PersistMeta(term=4, voted_for=None),
        SendRpc(to=S2, rpc=PreVoteResult(term=4, token="tok", vote_granted=True)),
    ]


def test_follower_ignores_a_pre_vote_from_a_candidate_that_is_behind_and_arms_a_long_timer() -> None:
    core = single(term=1, entries=[usr(1, 1)])
    rpc = PreVoteRpc(1, 0, 1, "tok", S2, 0, 0)
    assert core.handle(PeerMessage(sender=S2, msg=rpc)) == [
        StartTimer(key=TimerKind.ELECTION, after_ms=LONG_MS)
    ]


def test_follower_denies_a_pre_vote_with_an_unknown_machine_version() -> None:
    """ra-internals §2.3 / §11.2 #22, #30: version gating."""
    core = single(term=1)
    rpc = PreVoteRpc(1, 3, 1, "tok", S2, 0, 0)
    assert core.handle(PeerMessage(sender=S2, msg=rpc)) == [
        SendRpc(to=S2, rpc=PreVoteResult(term=1, token="tok", vote_granted=False)),
        StartTimer(key=TimerKind.ELECTION, after_ms=LONG_MS),
    ]


def test_follower_denies_a_pre_vote_with_a_newer_protocol_version() -> None:
    core = single(term=1)
    rpc = PreVoteRpc(2, 0, 1, "tok", S2, 0, 0)
    assert core.handle(PeerMessage(sender=S2, msg=rpc))[0] == SendRpc(
        to=S2, rpc=PreVoteResult(term=1, token="tok", vote_granted=False)
    )


# -- heartbeats, timers, failure detection ------------------------------------------------------------


def test_follower_replies_to_heartbeats_with_the_highest_query_index_seen() -> None:
    core = single(term=1)
    core.handle(PeerMessage(sender=S2, msg=HeartbeatRpc(query_index=7, term=1, leader_id=S2)))
    assert core.handle(PeerMessage(sender=S2, msg=HeartbeatRpc(query_index=3, term=1, leader_id=S2))) == [
        SendRpc(to=S2, rpc=HeartbeatReply(query_index=7, term=1))
    ]


def test_election_timeout_starts_a_pre_vote_round_with_a_persisted_self_vote() -> None:
    core = single(term=3, entries=[usr(1, 2)])
    assert core.start() == [StartTimer(key=TimerKind.ELECTION, after_ms=SHORT_MS)]  # a restarted server
    pre_vote = PreVoteRpc(1, 0, 3, 42, S1, 1, 2)
    assert core.handle(TimerFired(key=TimerKind.ELECTION)) == [
        PersistMeta(term=3, voted_for=S1),
        RoleChanged(old=Role.FOLLOWER, new=Role.PRE_VOTE),
        SendRpc(to=S2, rpc=pre_vote),
        SendRpc(to=S3, rpc=pre_vote),
        StartTimer(key=TimerKind.ELECTION, after_ms=LONG_MS),
    ]


def test_leader_process_down_arms_a_really_short_timer_and_forgets_the_leader() -> None:
    core = single(term=1)
    core.handle(aer(1, 0, (0, 0)))
    assert core.handle(PeerDown(server_id=S2, reason="noproc")) == [
        StartTimer(key=TimerKind.ELECTION, after_ms=REALLY_SHORT_MS)
    ]
    assert core.leader_id is None


def test_leader_noconnection_arms_a_short_timer() -> None:
    core = single(term=1)
    core.handle(aer(1, 0, (0, 0)))
    assert core.handle(PeerDown(server_id=S2, reason="noconnection")) == [
        StartTimer(key=TimerKind.ELECTION, after_ms=SHORT_MS)
    ]


def test_a_valid_append_cancels_a_running_election_timer() -> None:
    core = single(term=1)
    core.handle(aer(1, 0, (0, 0)))
    core.handle(PeerDown(server_id=S2, reason="noconnection"))
    assert core.handle(aer(1, 0, (0, 0))) == [
        CancelTimer(key=TimerKind.ELECTION),
        SendRpc(to=S2, rpc=AppendEntriesReply(term=1, success=True, next_index=1, last_index=0, last_term=0)),
    ]


# -- clients ----------------------------------------------------------------------------------------


def test_follower_redirects_commands_to_a_known_leader() -> None:
    core = single(term=1)
    core.handle(aer(1, 0, (0, 0)))
    assert core.handle(CommandRequest(data=1, reply_mode=AWAIT_CONSENSUS, from_="c")) == [
        Reply(to="c", reply=Redirect(leader=S2))
    ]


def test_follower_parks_calls_until_a_leader_is_known_then_redirects_them() -> None:
    core = single(term=1)
    assert core.handle(CommandRequest(data=1, reply_mode=AWAIT_CONSENSUS, from_="c")) == []
    assert core.handle(aer(1, 0, (0, 0))) == [
        *LEADER_CONTACT,
        Reply(to="c", reply=Redirect(leader=S2)),
        SendRpc(to=S2, rpc=AppendEntriesReply(term=1, success=True, next_index=1, last_index=0, last_term=0)),
    ]


def test_follower_rejects_pipelined_commands_naming_the_leader() -> None:
    """ra_SUITE:pipeline_command_reject (ra-internals §11.2 #5)."""
    core = single(term=1)
    core.handle(aer(1, 0, (0, 0)))
    assert core.handle(CommandRequest(data=1, reply_mode=NotifyReply(correlation=9, pid="p"))) == [
        Rejected(pid="p", sender=S1, leader=S2, correlation=9)
    ]


def test_follower_forwards_correlationless_pipelined_commands_to_the_leader() -> None:
    """ra_SUITE:pipeline_command_2_forwards_to_leader (ra-internals §11.2 #6)."""
    core = single(term=1)
    core.handle(aer(1, 0, (0, 0)))
    request = CommandRequest(data=1, reply_mode=NO_REPLY, priority="low")
    assert core.handle(request) == [ForwardCommand(to=S2, request=request)]


def test_follower_answers_local_queries_with_last_applied_and_term() -> None:
    core = single(term=1, entries=[noop(1, 1), usr(2, 1, ("put", "a", 1))], last_applied=2)
    core.handle(aer(1, 2, (2, 1)))
    assert core.handle(QueryRequest(kind="local", query=lambda s: s["a"], from_="c")) == [  # type: ignore[index]
        Reply(to="c", reply=LocalQueryReply(index=2, term=1, result=1, leader=S2))
    ]


def test_a_crashing_local_query_is_answered_with_an_error() -> None:
    """ra_SUITE:local_query_boom (ra-internals §11.2 #9)."""
    core = single(term=1)
    boom = KeyError("boom")

    def query(state: object) -> object:
        raise boom

    assert core.handle(QueryRequest(kind="local", query=query, from_="c")) == [
        Reply(to="c", reply=ErrorReply(reason=boom))
    ]


def test_ping_is_answered_in_every_state() -> None:
    core = single(term=1)
    assert core.handle(PingRequest(from_="c")) == [Reply(to="c", reply=Pong(role=Role.FOLLOWER))]


# -- snapshots --------------------------------------------------------------------------------------


def test_follower_installs_a_snapshot_sent_in_chunks() -> None:
    """ra_server_SUITE:follower_installs_snapshot (ra-internals §11.2 #26)."""
    core = single(term=1, entries=[usr(1, 1)])
    meta = SnapshotMeta(index=10, term=1, cluster=(S1, S2, S3), machine_version=0)
    data = PickleSnapshotCodec().encode(meta, {"a": 1})
    result = InstallSnapshotResult(term=1, last_index=10, last_term=1)
    first = InstallSnapshotRpc(1, S2, meta, ChunkState(1, "next"), data[:5])
    assert core.handle(PeerMessage(sender=S2, msg=first, call="c1")) == [
        *LEADER_CONTACT,
        RoleChanged(old=Role.FOLLOWER, new=Role.RECEIVE_SNAPSHOT, leader_id=S2),
        StartTimer(key=TimerKind.RECEIVE_SNAPSHOT, after_ms=30_000),
        SendRpc(to=S2, rpc=result, reply_to="c1"),
    ]
    # While receiving, everything but chunks is dropped (2.2.0).
    assert core.handle(PingRequest(from_="p")) == []
    last = InstallSnapshotRpc(1, S2, meta, ChunkState(2, "last"), data[5:])
    assert core.handle(PeerMessage(sender=S2, msg=last, call="c2")) == [
        InstallSnapshot(meta=meta, state={"a": 1}),
        CancelTimer(key=TimerKind.RECEIVE_SNAPSHOT),
        RoleChanged(old=Role.RECEIVE_SNAPSHOT, new=Role.FOLLOWER, leader_id=S2),
        SendRpc(to=S2, rpc=result, reply_to="c2"),
    ]
    assert (core.commit_index, core.last_applied, core.machine_state) == (10, 10, {"a": 1})
    assert core.last_index_term() == (10, 1)


def test_follower_ignores_a_snapshot_with_a_higher_machine_version() -> None:
    """ra_server_SUITE:follower_ignores_installs_snapshot_with_higher_machine_version."""
    core = single(term=1)
    meta = SnapshotMeta(index=10, term=1, cluster=(S1, S2), machine_version=5)
    rpc = InstallSnapshotRpc(1, S2, meta, ChunkState(1, "last"), b"")
    assert core.handle(PeerMessage(sender=S2, msg=rpc)) == []
    assert core.role == Role.FOLLOWER


def test_snapshot_chunks_below_the_expected_one_are_acknowledged_and_ignored() -> None:
    core = single(term=1)
    meta = SnapshotMeta(index=4, term=1, cluster=(S1, S2, S3))
    data = PickleSnapshotCodec().encode(meta, {})
    core.handle(PeerMessage(sender=S2, msg=InstallSnapshotRpc(1, S2, meta, ChunkState(1, "next"), data[:3])))
    dup = InstallSnapshotRpc(1, S2, meta, ChunkState(1, "next"), data[:3])
    assert core.handle(PeerMessage(sender=S2, msg=dup)) == [
        SendRpc(to=S2, rpc=InstallSnapshotResult(term=1, last_index=4, last_term=1))
    ]
    assert core.role == Role.RECEIVE_SNAPSHOT


def test_a_timer_that_fires_after_being_cancelled_is_ignored() -> None:
    """Timers are state timeouts (ra-internals §8.1): a cancelled one racing its cancel has no effect."""
    core = single(term=1)
    core.handle(aer(1, 0, (0, 0)))
    core.handle(PeerDown(server_id=S2, reason="noconnection"))
    core.handle(aer(1, 0, (0, 0)))  # cancels the election timer
    assert core.handle(TimerFired(key=TimerKind.ELECTION)) == []
    assert core.role == Role.FOLLOWER


def test_a_new_leader_is_monitored_and_the_old_one_demonitored() -> None:
    core = single(term=1)
    core.handle(aer(1, 0, (0, 0)))
    effects = core.handle(PeerMessage(sender=S3, msg=AppendEntriesRpc(2, S3, 0, 0, 0, ())))
    assert effects[:4] == [
        PersistMeta(term=2, voted_for=None),
        DemonitorServer(server_id=S2),
        MonitorServer(server_id=S3),
        MonitorNode(node="py@vm"),
    ]


def test_an_append_whose_entries_do_not_follow_prev_is_dropped() -> None:
    """Simulator finding F2: a malformed RPC from a buggy peer must not crash the follower."""
    core = single(term=1)
    assert core.handle(aer(1, 0, (0, 0), usr(9, 1))) == []
    assert core.handle(aer(1, 0, (0, 0), usr(1, 1), usr(3, 1))) == []
    assert core.last_index_term() == (0, 0)
