"""Scenarios on a 3-5 core harness with hand-delivered messages (Ra behaviours, ra-internals §11.2)."""

from __future__ import annotations

from collections.abc import Sequence

from raft_harness import S1, S2, S3, Cluster, make_cluster, sid

from pyra_dist.core.effects import (
    ErrorReply,
    InstallSnapshot,
    LocalQueryReply,
    MachineEffect,
    OkReply,
    Redirect,
    SendRpc,
    Stop,
    WrapReply,
)
from pyra_dist.core.events import (
    CommandRequest,
    DeleteClusterRequest,
    JoinRequest,
    LeaveRequest,
    PeerCallFailed,
    PeerDown,
    PeerMessage,
    QueryRequest,
    Tick,
    TimerFired,
    TimerKind,
    TriggerElection,
)
from pyra_dist.core.machine import (
    ApplyMeta,
    ApplyResult,
    Machine,
    MachineConfig,
    MachineEffectT,
    MachineVersionChange,
    SendMsg,
)
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    InstallSnapshotResult,
    InstallSnapshotRpc,
)
from pyra_dist.machines.kv import KvMachine
from pyra_dist.types import (
    AFTER_LOG_APPEND,
    AWAIT_CONSENSUS,
    NO_REPLY,
    ClusterChange,
    Entry,
    Noop,
    PeerState,
    Role,
)


def put(c: Cluster, name: str, key: object, value: object, from_: object = None) -> None:
    mode = AWAIT_CONSENSUS if from_ is not None else NO_REPLY
    c.handle(name, CommandRequest(data=("put", key, value), reply_mode=mode, from_=from_))


def logs_equal(c: Cluster, names: Sequence[str]) -> bool:
    ref = c.logs[sid(names[0])]
    last = ref.last_index_term()[0]
    return all(c.logs[sid(n)].fetch(1, last) == ref.fetch(1, last) for n in names) and all(
        c.logs[sid(n)].last_index_term() == ref.last_index_term() for n in names
    )


def test_leader_replies_after_applying_with_the_machine_reply() -> None:
    """ra_SUITE:process_command (§11.2 #3)."""
    c = make_cluster()
    c.elect("s1")
    put(c, "s1", "a", 1, from_="client")
    c.settle()
    assert c.replies == [("client", WrapReply(reply="ok"))]
    assert c.states() == {"s1": {"a": 1}, "s2": {"a": 1}, "s3": {"a": 1}}


def test_leader_without_quorum_never_replies() -> None:
    """ra_SUITE:minority (§11.2 #2): the client times out."""
    c = make_cluster()
    c.elect("s1")
    c.down |= {S2, S3}
    put(c, "s1", "a", 1, from_="client")
    c.settle()
    assert c.replies == []
    assert c["s1"].commit_index == 1


def test_a_follower_with_a_divergent_tail_converges_to_the_new_leaders_log() -> None:
    """ra_SUITE:follower_catchup (§11.2 #19); Raft §5.3 "the leader forces the followers' logs to
    duplicate its own"."""
    c = make_cluster()
    c.elect("s1")
    put(c, "s1", "a", 1)
    c.settle()
    c.down |= {S2, S3}
    put(c, "s1", "x", "lost")  # only on s1, never committed
    put(c, "s1", "y", "lost")
    c.settle()
    c.down = {S1}
    c.elect("s2")
    put(c, "s2", "b", 2)
    c.settle()
    c.down = set()
    c.handle("s2", Tick(system_time=1))
    c.settle()
    assert c["s1"].role == Role.FOLLOWER and c["s1"].leader_id == S2
    assert logs_equal(c, ("s1", "s2", "s3"))
    assert c.states() == {n: {"a": 1, "b": 2} for n in ("s1", "s2", "s3")}


def test_lagging_follower_is_brought_up_by_a_chunked_snapshot_then_appends() -> None:
    """ra_SUITE:snapshot_installation (§11.2 #12) with Ra's chunk protocol (§2.5)."""
    c = make_cluster(machine=KvMachine(snapshot_every=5), snapshot_interval=4, snapshot_chunk_size=16)
    c.elect("s1")
    c.down = {S3}
    for i in range(12):
        put(c, "s1", i, i)
        c.settle()
    assert c.logs[S1].snapshot_meta() is not None
    snap_index = c.logs[S1].snapshot_meta().index  # type: ignore[union-attr]
    assert c.logs[S1].term_at(1) is None  # compacted
    c.down = set()
    c.handle("s1", Tick(system_time=1))
    c.settle()
    assert c.logs[S3].snapshot_meta() is not None
    assert c.logs[S3].snapshot_meta().index >= snap_index  # type: ignore[union-attr]
    put(c, "s1", "after", 1)
    c.settle()
    assert c.states()["s3"] == c.states()["s1"]
    assert c["s3"].last_applied == c["s1"].last_applied


def test_a_member_joining_late_receives_the_whole_log() -> None:
    """ra_SUITE:add_member / server_catches_up (§11.2 #11, #14)."""
    c = make_cluster(names=("s1", "s2", "s3", "s4"), initial=("s1", "s2", "s3"))
    c.elect("s1")
    put(c, "s1", "a", 1)
    c.settle()
    c.handle("s1", JoinRequest(server_id=sid("s4"), reply_mode=AFTER_LOG_APPEND, from_="admin"))
    c.settle()
    assert ("admin", WrapReply(reply=(3, 1))) in c.replies
    put(c, "s1", "b", 2)
    c.settle()
    assert c["s4"].cluster == (S1, S2, S3, sid("s4"))
    assert c.states()["s4"] == {"a": 1, "b": 2}
    assert c["s1"].cluster_change_permitted


def test_removed_leader_replicates_the_new_cluster_then_stops() -> None:
    """ra_SUITE:leader_steps_down_after_replicating_new_cluster (§11.2 #16)."""
    c = make_cluster()
    c.elect("s1")
    c.handle("s1", LeaveRequest(server_id=S1, reply_mode=AWAIT_CONSENSUS, from_="admin"))
    c.settle()
    assert ("admin", WrapReply(reply="ok")) in c.replies
    assert Stop(reason="normal") in list(c.effects_of("s1"))
    assert c["s1"].role == Role.STOPPED
    assert c["s2"].cluster == (S2, S3) and c["s2"].commit_index == 2
    # The followers notice the stopped leader and elect one of themselves.
    c.handle("s2", PeerDown(server_id=S1, reason="noproc"))
    c.handle("s2", TimerFired(key=TimerKind.ELECTION))
    c.settle()
    assert c["s2"].role == Role.LEADER and c["s3"].leader_id == S2


def test_leave_and_terminate_removes_a_follower_with_await_consensus() -> None:
    """ra_SUITE:start_and_join_then_leave_and_terminate (§11.2 #15)."""
    c = make_cluster()
    c.elect("s1")
    c.handle("s1", LeaveRequest(server_id=S3, reply_mode=AWAIT_CONSENSUS, from_="admin"))
    assert c.replies == []  # await_consensus: only once applied
    c.settle()
    assert c.replies == [("admin", WrapReply(reply="ok"))]
    assert c["s1"].cluster == (S1, S2)
    c.down = {S3}
    put(c, "s1", "a", 1, from_="client")
    c.settle()
    assert ("client", WrapReply(reply="ok")) in c.replies


def test_a_new_leader_appears_after_the_leader_stops() -> None:
    """ra_SUITE:stop_leader_and_wait_for_elections (§11.2 #17)."""
    c = make_cluster()
    c.elect("s1")
    c.down = {S1}
    for name in ("s2", "s3"):
        c.handle(name, PeerDown(server_id=S1, reason="noproc"))
    c.handle("s3", TimerFired(key=TimerKind.ELECTION))
    c.settle()
    assert c["s3"].role == Role.LEADER and c["s3"].term == 2
    assert c["s2"].leader_id == S3


def test_consistent_query_through_a_follower_returns_committed_state() -> None:
    """ra_SUITE:consistent_query_stale (§11.2 #8)."""
    c = make_cluster()
    c.elect("s1")
    put(c, "s1", "a", 1)
    c.settle()
    c.handle("s2", QueryRequest(kind="consistent", query=lambda s: s, from_="q"))
    assert c.replies == [("q", Redirect(leader=S1))]
    c.handle("s1", QueryRequest(kind="consistent", query=lambda s: s, from_="q"))
    c.settle()
    assert c.replies[-1] == ("q", OkReply(value={"a": 1}, leader=S1))


def test_delete_cluster_stops_every_member_with_its_data() -> None:
    c = make_cluster()
    c.elect("s1")
    c.handle("s1", DeleteClusterRequest(from_="admin"))
    c.settle()
    assert ("admin", WrapReply(reply="ok")) in c.replies
    for name in ("s1", "s2", "s3"):
        assert Stop(reason="delete", delete_data=True) in list(c.effects_of(name))


def test_changes_after_add_member_without_quorum_are_refused() -> None:
    """ra_2_SUITE:add_member_without_quorum (§11.2 #28): the first change is acknowledged."""
    c = make_cluster()
    c.elect("s1")
    c.down = {S2, S3}
    c.handle("s1", JoinRequest(server_id=sid("s4"), reply_mode=AFTER_LOG_APPEND, from_="a"))
    c.handle("s1", JoinRequest(server_id=sid("s5"), reply_mode=AFTER_LOG_APPEND, from_="b"))
    assert c.replies == [
        ("a", WrapReply(reply=(2, 1))),
        ("b", ErrorReply(reason="cluster_change_not_permitted")),
    ]


class Emitting(Machine):
    """Sends a message on every apply (to check that recovery does not re-issue it)."""

    def init(self, config: MachineConfig) -> object:
        return 0

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        assert isinstance(state, int)
        effects: list[MachineEffectT] = [SendMsg(to="observer", msg=("applied", meta.index))]
        return state + 1, state + 1, effects


def test_restarted_server_does_not_reissue_side_effects() -> None:
    """ra_2_SUITE:restarted_server_does_not_reissue_side_effects (§11.2 #29)."""
    c = make_cluster(machine=Emitting())
    c.elect("s1")
    c.handle("s1", CommandRequest(data="x"))
    c.settle()
    sent = [e for e in c.effects_of("s1") if isinstance(e, MachineEffect)]
    assert sent == [MachineEffect(effect=SendMsg(to="observer", msg=("applied", 2)))]
    effects = c.restart("s1")
    assert [e for e in effects if isinstance(e, MachineEffect)] == []
    assert c["s1"].machine_state == 1 and c["s1"].last_applied == 2


class Versioned(Machine):
    """Version 1 machine that records the version change it was told about."""

    def init(self, config: MachineConfig) -> object:
        return []

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        assert isinstance(state, list)
        if isinstance(command, MachineVersionChange):
            return [*state, (command.old, command.new, meta.machine_version)], "ok"
        return [*state, command], "ok"

    def version(self) -> int:
        return 1


def test_a_leader_noop_with_a_newer_machine_version_upgrades_every_replica() -> None:
    """ra-internals §3.5/§6.6: the noop switches the effective version and applies the change."""
    c = make_cluster(machine=Versioned())
    c.elect("s1")
    c.handle("s1", CommandRequest(data="cmd"))
    c.settle()
    for name in ("s1", "s2", "s3"):
        assert c[name].effective_machine_version == 1
        assert c[name].machine_state == [(0, 1, 1), "cmd"]


def test_a_member_joining_after_compaction_receives_a_snapshot() -> None:
    """Found by the simulator: a new peer starts at next_index 1, whose prev (0, 0) always matches;
    the leader must still notice that entry 1 was compacted and send the snapshot."""
    c = make_cluster(
        names=("s1", "s2", "s3", "s4"),
        initial=("s1", "s2", "s3"),
        machine=KvMachine(snapshot_every=5),
        snapshot_interval=4,
    )
    c.elect("s1")
    for i in range(10):
        put(c, "s1", i, i)
        c.settle()
    assert c.logs[S1].term_at(1) is None
    c.handle("s1", JoinRequest(server_id=sid("s4"), reply_mode=AFTER_LOG_APPEND, from_="admin"))
    c.settle()
    assert c.logs[sid("s4")].snapshot_meta() is not None
    assert c.states()["s4"] == c.states()["s1"]


def test_a_follower_uses_a_received_cluster_change_at_once_and_reverts_it_if_overwritten() -> None:
    """ra_server_SUITE:follower_cluster_change (§11.2 #24); ra-internals §3.3."""

    c = make_cluster()
    follower = c["s3"]
    s4 = sid("s4")
    change = ClusterChange(cluster={m: PeerState() for m in (S1, S2, S3, s4)})
    noop = Entry(1, 1, Noop(machine_version=0))
    c.handle("s3", PeerMessage(sender=S1, msg=AppendEntriesRpc(1, S1, 0, 0, 0, (noop, Entry(2, 1, change)))))
    assert follower.cluster == (S1, S2, S3, s4)  # effective before commit
    # A new leader of term 2 never had the change: its entry at 2 replaces it.
    c.handle("s3", PeerMessage(sender=S2, msg=AppendEntriesRpc(2, S2, 0, 1, 1, (Entry(2, 2, Noop(0)),))))
    assert follower.cluster == (S1, S2, S3)


def test_a_lost_snapshot_chunk_does_not_wedge_replication() -> None:
    """ra_SUITE:snapshot_installation_with_call_crash (§11.2 #13)."""

    c = make_cluster(
        machine=KvMachine(snapshot_every=5),
        snapshot_interval=4,
        snapshot_chunk_size=16,
        snapshot_send_ticks=2,
    )
    c.elect("s1")
    c.down = {S3}
    for i in range(12):
        put(c, "s1", i, i)
        c.settle()
    c.down = set()
    dropped: list[object] = []

    def drop_first_chunk(to: object, event: object) -> bool:
        if isinstance(event, PeerMessage) and isinstance(event.msg, InstallSnapshotRpc) and not dropped:
            dropped.append(event)
            return True
        return False

    c.drop = drop_first_chunk  # type: ignore[assignment]
    c.handle("s1", Tick(system_time=1))
    c.settle()
    assert dropped and c.logs[S3].snapshot_meta() is None
    for t in range(2, 5):
        c.handle("s1", Tick(system_time=t))
        c.settle()
    assert c.logs[S3].snapshot_meta() is not None
    assert c.states()["s3"] == c.states()["s1"]


def test_local_queries_may_be_stale_on_a_cut_off_follower() -> None:
    """ra_SUITE:local_query_stale (§11.2 #7)."""

    c = make_cluster()
    c.elect("s1")
    c.down = {S3}
    put(c, "s1", "a", 1)
    c.settle()
    c.handle("s3", QueryRequest(kind="local", query=lambda s: s, from_="q3"))
    c.handle("s1", QueryRequest(kind="leader", query=lambda s: s, from_="q1"))
    assert c.replies == [
        ("q3", LocalQueryReply(index=1, term=1, result={}, leader=S1)),
        ("q1", LocalQueryReply(index=2, term=1, result={"a": 1}, leader=S1)),
    ]


def test_a_follower_that_already_has_the_snapshot_contents_makes_the_leader_resume_appends() -> None:
    """A new leader that never heard from s3 restarts it at next_index 1 (below its snapshot); s3,
    whose last_applied covers the snapshot, answers chunk 1 with a mismatch-form AER reply (Ra main)
    instead of staying silent (2.2.0), and replication resumes without a transfer."""
    c = make_cluster(machine=KvMachine(snapshot_every=5), snapshot_interval=4)
    c.elect("s1")
    for i in range(10):
        put(c, "s1", i, i)
        c.settle()
    c.down = {S1}

    def drop_s3_replies(to: object, event: object) -> bool:
        return (
            isinstance(event, PeerMessage)
            and event.sender == S3
            and isinstance(event.msg, AppendEntriesReply)
        )

    c.drop = drop_s3_replies  # type: ignore[assignment]
    c.handle("s2", TriggerElection())
    c.settle()
    assert c["s2"].role == Role.LEADER
    c.drop = None
    c.handle("s2", Tick(system_time=1))
    c.settle()
    assert c["s2"].overview()["peers"][S3]["match_index"] == c["s2"].last_index_term()[0]  # type: ignore[index]
    assert any(isinstance(e, SendRpc) and isinstance(e.rpc, InstallSnapshotRpc) for e in c.effects_of("s2"))
    assert not any(isinstance(e, InstallSnapshot) for e in c.effects_of("s3"))
    put(c, "s2", "after", 1)
    c.settle()
    assert c.states()["s3"] == c.states()["s2"]


def test_a_failed_snapshot_call_is_retried_on_the_next_tick() -> None:
    """Found with a real Ra 2.2.0 follower: ``add_member`` before ``start_server`` makes the first chunk
    call fail with ``noproc``; like Ra's crashing sender, the transfer restarts at the next tick."""
    s4 = sid("s4")
    c = make_cluster(
        names=("s1", "s2", "s3", "s4"),
        initial=("s1", "s2", "s3"),
        machine=KvMachine(snapshot_every=5),
        snapshot_interval=4,
    )
    c.elect("s1")
    for i in range(10):
        put(c, "s1", i, i)
        c.settle()
    c.down = {s4}
    effects = c.handle("s1", JoinRequest(server_id=s4, reply_mode=AFTER_LOG_APPEND, from_="admin"))
    chunk = next(e.rpc for e in effects if isinstance(e, SendRpc) and isinstance(e.rpc, InstallSnapshotRpc))
    c.settle()
    c.down = set()
    assert c.handle("s1", PeerCallFailed(peer=s4, rpc=chunk, reason="noproc")) == []
    c.handle("s1", Tick(system_time=1))
    c.settle()
    assert c.states()["s4"] == c.states()["s1"]


def test_snapshot_results_carrying_the_followers_older_term_complete_the_transfer() -> None:
    """Found with a real Ra 2.2.0 follower: a brand-new Erlang server answers chunks with
    ``{install_snapshot_result, 0, Idx, Term}`` (its own term); the leader must still resume appends."""
    s4 = sid("s4")
    c = make_cluster(
        names=("s1", "s2", "s3", "s4"),
        initial=("s1", "s2", "s3"),
        machine=KvMachine(snapshot_every=5),
        snapshot_interval=4,
    )
    c.elect("s1")
    for i in range(10):
        put(c, "s1", i, i)
        c.settle()
    c.down = {s4}
    effects = c.handle("s1", JoinRequest(server_id=s4, reply_mode=AFTER_LOG_APPEND, from_="admin"))
    chunk = next(e.rpc for e in effects if isinstance(e, SendRpc) and isinstance(e.rpc, InstallSnapshotRpc))
    c.settle()
    assert chunk.chunk_state.flag == "last"
    result = InstallSnapshotResult(term=0, last_index=chunk.meta.index, last_term=chunk.meta.term)
    effects = c.handle("s1", PeerMessage(sender=s4, msg=result))
    assert [e.rpc.prev_log_index for e in effects if isinstance(e, SendRpc) and e.to == s4] == [
        chunk.meta.index
    ]
