"""Leader: the exact effects of each input (ra-internals §2.2, §2.4, §3.3-3.4, §4, §5.2)."""

from __future__ import annotations

from raft_harness import S1, S2, S3, Cluster, make_cluster, sid

from pyra_dist.core.effects import (
    AppendToLog,
    AtomReply,
    ErrorReply,
    ForwardCommand,
    Notify,
    OkReply,
    PersistMeta,
    Redirect,
    Rejected,
    Reply,
    RoleChanged,
    SendRpc,
    StartTimer,
    WrapReply,
)
from pyra_dist.core.events import (
    CommandBatch,
    CommandRequest,
    JoinRequest,
    LeaveRequest,
    LogWritten,
    PeerMessage,
    QueryRequest,
    StateQueryRequest,
    Tick,
    TimerFired,
    TimerKind,
    TransferLeadershipRequest,
    TriggerElection,
)
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    HeartbeatReply,
    HeartbeatRpc,
    PreVoteRpc,
    RequestVoteResult,
    RequestVoteRpc,
    TryBecomeLeader,
)
from pyra_dist.types import (
    AFTER_LOG_APPEND,
    AWAIT_CONSENSUS,
    ClusterChange,
    Entry,
    NotifyReply,
    PeerState,
    Role,
    UsrCommand,
)


def settled() -> Cluster:
    """s1 leads term 1; its noop (index 1) is committed and applied everywhere."""
    c = make_cluster()
    c.elect("s1")
    assert c["s1"].commit_index == 1 and c["s1"].cluster_change_permitted
    return c


def test_leader_pipelines_a_command_before_its_own_write_completes() -> None:
    c = settled()
    cmd = UsrCommand(data=("put", "a", 1), reply_mode=AWAIT_CONSENSUS, from_="c", ts=5)
    entry = Entry(2, 1, cmd)
    rpc = AppendEntriesRpc(1, S1, 1, 1, 1, (entry,))
    assert c.handle(
        "s1", CommandRequest(data=("put", "a", 1), reply_mode=AWAIT_CONSENSUS, from_="c", system_time=5)
    ) == [
        AppendToLog(entries=(entry,)),
        SendRpc(to=S2, rpc=rpc),
        SendRpc(to=S3, rpc=rpc),
    ]


def test_leader_does_not_count_its_own_unwritten_entries_towards_commit() -> None:
    c = settled()
    leader = c["s1"]
    c.handle("s1", CommandRequest(data=("put", "a", 1), reply_mode=AWAIT_CONSENSUS, from_="c"))
    reply = AppendEntriesReply(term=1, success=True, next_index=3, last_index=2, last_term=1)
    # One follower has it, the leader has not written it: 2 of 3 do not have it durably.
    assert c.handle("s1", PeerMessage(sender=S2, msg=reply)) == []
    assert leader.commit_index == 1
    effects = c.handle("s1", LogWritten(2, 2, 1))
    assert leader.commit_index == 2
    assert effects[0] == Reply(to="c", reply=WrapReply(reply="ok"))


def test_after_log_append_is_answered_with_index_and_term_at_append_time() -> None:
    c = settled()
    effects = c.handle("s1", CommandRequest(data=("get", "a"), reply_mode=AFTER_LOG_APPEND, from_="c"))
    assert effects[1] == Reply(to="c", reply=WrapReply(reply=(2, 1)))


def test_pipelined_commands_are_notified_in_apply_order_per_pid() -> None:
    """ra_SUITE:pipeline_command (ra-internals §11.2 #4)."""
    c = settled()
    for corr in (7, 8):
        c.handle("s1", CommandRequest(data=("put", corr, corr), reply_mode=NotifyReply(corr, "pid")))
    reply = AppendEntriesReply(term=1, success=True, next_index=4, last_index=3, last_term=1)
    c.handle("s1", LogWritten(2, 3, 1))
    effects = c.handle("s1", PeerMessage(sender=S2, msg=reply))
    assert effects[0] == Notify(pid="pid", leader=S1, correlations=((7, "ok"), (8, "ok")))


def test_failure_reply_with_a_stale_last_index_resets_the_peer_to_its_view() -> None:
    """ra_server_SUITE:leader_received_append_entries_reply_with_stale_last_index (§11.2 #25)."""
    c = settled()
    leader = c["s1"]
    for i in range(3):
        c.handle("s1", CommandRequest(data=("put", i, i)))
    reply = AppendEntriesReply(term=1, success=False, next_index=2, last_index=1, last_term=1)
    effects = c.handle("s1", PeerMessage(sender=S2, msg=reply))
    entries = tuple(c.logs[S1].fetch(2, 4))
    assert effects == [SendRpc(to=S2, rpc=AppendEntriesRpc(1, S1, 1, 1, 1, entries))]
    assert leader.overview()["peers"][S2]["next_index"] == 5  # type: ignore[index]


def test_a_reply_with_a_higher_term_makes_the_leader_step_down() -> None:
    c = settled()
    leader = c["s1"]
    reply = AppendEntriesReply(term=5, success=False, next_index=1, last_index=0, last_term=0)
    effects = c.handle("s1", PeerMessage(sender=S2, msg=reply))
    assert effects[:2] == [
        PersistMeta(term=5, voted_for=None),
        RoleChanged(old=Role.LEADER, new=Role.FOLLOWER),
    ]
    assert isinstance(effects[-1], StartTimer)
    assert leader.role == Role.FOLLOWER and leader.leader_id is None


def test_leader_answers_a_pre_vote_by_reasserting_itself_with_appends() -> None:
    c = settled()
    effects = c.handle("s1", PeerMessage(sender=S2, msg=PreVoteRpc(1, 0, 1, "t", S2, 1, 1)))
    assert effects == [
        SendRpc(to=S2, rpc=AppendEntriesRpc(1, S1, 1, 1, 1, ())),
        SendRpc(to=S3, rpc=AppendEntriesRpc(1, S1, 1, 1, 1, ())),
    ]


def test_leader_denies_votes_of_its_own_term() -> None:
    c = settled()
    rpc = RequestVoteRpc(term=1, candidate_id=S2, last_log_index=9, last_log_term=1)
    assert c.handle("s1", PeerMessage(sender=S2, msg=rpc, call="t")) == [
        SendRpc(to=S2, rpc=RequestVoteResult(term=1, vote_granted=False), reply_to="t")
    ]


def test_idle_leader_sends_nothing_on_tick() -> None:
    """ra-internals §2.2: there is no periodic keep-alive AER."""
    c = settled()
    assert [e for e in c.handle("s1", Tick(system_time=1)) if isinstance(e, SendRpc)] == []


def test_tick_resends_unconfirmed_entries_from_the_match_index() -> None:
    c = settled()
    c.handle("s1", CommandRequest(data=("put", "a", 1)))
    entry = c.logs[S1].fetch(2, 2)[0]
    sends = [e for e in c.handle("s1", Tick(system_time=1)) if isinstance(e, SendRpc)]
    rpc = AppendEntriesRpc(1, S1, 1, 1, 1, (entry,))
    assert sends == [SendRpc(to=S2, rpc=rpc), SendRpc(to=S3, rpc=rpc)]


# -- membership ------------------------------------------------------------------------------------


def test_membership_change_is_refused_before_the_new_leaders_noop_is_applied() -> None:
    """ra_server_SUITE:leader_noop_operation_enables_cluster_change (§11.2 #23)."""
    c = make_cluster()
    c.handle("s1", TriggerElection())
    while c["s1"].role != Role.LEADER:
        c.step()
    assert c.handle("s1", JoinRequest(server_id=sid("s4"), reply_mode=AFTER_LOG_APPEND, from_="c")) == [
        Reply(to="c", reply=ErrorReply(reason="cluster_change_not_permitted"))
    ]


def test_join_appends_the_whole_peer_map_and_is_effective_at_once() -> None:
    """ra_server_SUITE:leader_server_join (§11.2 #24)."""
    c = settled()
    s4 = sid("s4")
    effects = c.handle("s1", JoinRequest(server_id=s4, reply_mode=AFTER_LOG_APPEND, from_="c", system_time=9))
    cluster = {
        S1: PeerState(),
        S2: PeerState(next_index=2, match_index=1, commit_index_sent=1),
        S3: PeerState(next_index=2, match_index=1, commit_index_sent=1),
        s4: PeerState(),
    }
    change = Entry(2, 1, ClusterChange(cluster=cluster, reply_mode=AFTER_LOG_APPEND, from_="c", ts=9))
    assert effects[0] == AppendToLog(entries=(change,))
    assert effects[2] == Reply(to="c", reply=WrapReply(reply=(2, 1)))
    assert c["s1"].cluster == (S1, S2, S3, s4)
    # The new member gets everything from index 1 (Ra starts new peers at next_index 1).
    log = tuple(c.logs[S1].fetch(1, 2))
    assert SendRpc(to=s4, rpc=AppendEntriesRpc(1, S1, 1, 0, 0, log)) in effects


def test_one_membership_change_at_a_time() -> None:
    """ra_2_SUITE:add_member_without_quorum (§11.2 #28)."""
    c = settled()
    c.handle("s1", JoinRequest(server_id=sid("s4"), reply_mode=AFTER_LOG_APPEND, from_="a"))
    assert c.handle("s1", JoinRequest(server_id=sid("s5"), reply_mode=AFTER_LOG_APPEND, from_="b")) == [
        Reply(to="b", reply=ErrorReply(reason="cluster_change_not_permitted"))
    ]


def test_join_of_a_member_and_leave_of_a_stranger_are_refused() -> None:
    c = settled()
    assert c.handle("s1", JoinRequest(server_id=S2, reply_mode=AFTER_LOG_APPEND, from_="a")) == [
        Reply(to="a", reply=ErrorReply(reason="already_member"))
    ]
    assert c.handle("s1", LeaveRequest(server_id=sid("s9"), reply_mode=AFTER_LOG_APPEND, from_="b")) == [
        Reply(to="b", reply=ErrorReply(reason="not_member"))
    ]


def test_members_are_answered_by_the_leader() -> None:
    """ra_SUITE:members (§11.2 #10)."""
    c = settled()
    assert c.handle("s1", StateQueryRequest(what="members", from_="c")) == [
        Reply(to="c", reply=OkReply(value=[S1, S2, S3], leader=S1))
    ]


# -- consistent queries ----------------------------------------------------------------------------


def test_consistent_query_waits_for_a_heartbeat_quorum() -> None:
    """ra_server_SUITE:leader_consistent_query (§11.2 #27)."""
    c = settled()
    effects = c.handle("s1", QueryRequest(kind="consistent", query=lambda s: "state", from_="q"))
    assert effects == [
        SendRpc(to=S2, rpc=HeartbeatRpc(query_index=1, term=1, leader_id=S1)),
        SendRpc(to=S3, rpc=HeartbeatRpc(query_index=1, term=1, leader_id=S1)),
    ]
    assert c.handle("s1", PeerMessage(sender=S3, msg=HeartbeatReply(query_index=1, term=1))) == [
        Reply(to="q", reply=OkReply(value="state", leader=S1))
    ]


def test_a_heartbeat_reply_with_a_higher_term_deposes_the_leader_and_parks_the_query() -> None:
    c = settled()
    leader = c["s1"]
    c.handle("s1", QueryRequest(kind="consistent", query=lambda s: "state", from_="q"))
    c.handle("s1", PeerMessage(sender=S3, msg=HeartbeatReply(query_index=1, term=2)))
    assert leader.role == Role.FOLLOWER
    effects = c.handle("s1", PeerMessage(sender=S2, msg=AppendEntriesRpc(2, S2, 1, 1, 1, ())))
    assert Reply(to="q", reply=Redirect(leader=S2)) in effects


# -- leadership transfer ---------------------------------------------------------------------------


def test_transfer_leadership_answers_already_leader_and_unknown_member() -> None:
    """ra_SUITE:transfer_leadership (§11.2 #20)."""
    c = settled()
    assert c.handle("s1", TransferLeadershipRequest(target=S1, from_="a")) == [
        Reply(to="a", reply=AtomReply(atom="already_leader"))
    ]
    assert c.handle("s1", TransferLeadershipRequest(target=sid("s9"), from_="b")) == [
        Reply(to="b", reply=ErrorReply(reason="unknown_member"))
    ]


def test_transfer_leadership_casts_try_become_leader_and_waits() -> None:
    c = settled()
    assert c.handle("s1", TransferLeadershipRequest(target=S2, from_="a")) == [
        SendRpc(to=S2, rpc=TryBecomeLeader()),
        Reply(to="a", reply=AtomReply(atom="ok")),
        RoleChanged(old=Role.LEADER, new=Role.AWAIT_CONDITION, leader_id=S1),
        StartTimer(key=TimerKind.AWAIT_CONDITION, after_ms=30_000),
    ]
    c.settle()
    assert c["s2"].role == Role.LEADER and c["s1"].role == Role.FOLLOWER
    assert c["s1"].leader_id == S2


# -- priorities (ra-internals §4.2) ------------------------------------------------------------------


def test_low_priority_commands_wait_for_flush_commands_so_a_normal_one_overtakes_them() -> None:
    """[obs] normal corr 43 applied at index 4 before low corr 42 at 5."""
    c = settled()
    low = CommandRequest(data=("put", "b", 2), reply_mode=NotifyReply(42, "pid"), priority="low")
    assert c.handle("s1", low) == [StartTimer(key=TimerKind.FLUSH_COMMANDS, after_ms=0)]
    normal = CommandRequest(data=("put", "c", 3), reply_mode=NotifyReply(43, "pid"), priority="normal")
    c.handle("s1", normal)
    effects = c.handle("s1", TimerFired(key=TimerKind.FLUSH_COMMANDS))
    entry = Entry(3, 1, UsrCommand(data=("put", "b", 2), reply_mode=NotifyReply(42, "pid")))
    assert effects[0] == AppendToLog(entries=(entry,))
    assert [e.index for e in c.logs[S1].fetch(2, 3)] == [2, 3]
    assert c.logs[S1].fetch(2, 2)[0].command.data == ("put", "c", 3)  # type: ignore[union-attr]


def test_low_priority_commands_are_appended_in_batches_of_25() -> None:
    c = settled()
    for i in range(30):
        c.handle("s1", CommandRequest(data=("put", i, i), priority="low"))
    first = c.handle("s1", TimerFired(key=TimerKind.FLUSH_COMMANDS))
    appended = [e for e in first if isinstance(e, AppendToLog)]
    assert [len(a.entries) for a in appended] == [25]
    assert first[-1] == StartTimer(key=TimerKind.FLUSH_COMMANDS, after_ms=0)
    second = c.handle("s1", TimerFired(key=TimerKind.FLUSH_COMMANDS))
    assert [len(e.entries) for e in second if isinstance(e, AppendToLog)] == [5]


def test_a_deposed_leader_forwards_or_rejects_its_queued_low_priority_commands() -> None:
    c = settled()
    forward = CommandRequest(data=("put", "x", 1), priority="low")
    notify = CommandRequest(data=("put", "y", 1), reply_mode=NotifyReply(7, "pid"), priority="low")
    c.handle("s1", forward)
    c.handle("s1", notify)
    c.handle("s1", PeerMessage(sender=S2, msg=AppendEntriesReply(2, False, 1, 0, 0)))
    effects = c.handle("s1", PeerMessage(sender=S2, msg=AppendEntriesRpc(2, S2, 1, 1, 1, ())))
    assert ForwardCommand(to=S2, request=forward) in effects
    assert Rejected(pid="pid", sender=S1, leader=S2, correlation=7) in effects


def test_a_command_batch_is_appended_once_and_sent_as_one_aer_per_peer() -> None:
    """Ra's ``{commands, Cmds}``: one AppendToLog, one AER per peer, after-log-append replies in order."""
    c = settled()
    first = CommandRequest(data=("put", "a", 1), reply_mode=NotifyReply(1, "pid"), system_time=5)
    second = CommandRequest(data=("put", "b", 2), reply_mode=AFTER_LOG_APPEND, from_="c", system_time=6)
    entries = (
        Entry(2, 1, UsrCommand(data=("put", "a", 1), reply_mode=NotifyReply(1, "pid"), ts=5)),
        Entry(3, 1, UsrCommand(data=("put", "b", 2), reply_mode=AFTER_LOG_APPEND, from_="c", ts=6)),
    )
    rpc = AppendEntriesRpc(1, S1, 1, 1, 1, entries)
    assert c.handle("s1", CommandBatch(commands=(first, second), system_time=6)) == [
        AppendToLog(entries=entries),
        Reply(to="c", reply=WrapReply(reply=(3, 1))),
        SendRpc(to=S2, rpc=rpc),
        SendRpc(to=S3, rpc=rpc),
    ]


def test_a_command_batch_queues_its_low_priority_commands_for_flush_commands() -> None:
    c = settled()
    low = CommandRequest(data=("put", "x", 1), priority="low")
    effects = c.handle("s1", CommandBatch(commands=(low,)))
    assert effects == [StartTimer(key=TimerKind.FLUSH_COMMANDS, after_ms=0)]
    assert c["s1"].low_queue == [low]


def test_a_follower_answers_each_command_of_a_batch_as_if_it_came_alone() -> None:
    c = settled()
    forward = CommandRequest(data=("put", "x", 1))
    notify = CommandRequest(data=("put", "y", 1), reply_mode=NotifyReply(7, "pid"))
    assert c.handle("s2", CommandBatch(commands=(forward, notify))) == [
        ForwardCommand(to=S1, request=forward),
        Rejected(pid="pid", sender=S2, leader=S1, correlation=7),
    ]
