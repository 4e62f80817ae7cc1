"""Regression scenarios for safety bugs fixed in Ra and found in PySyncObj (landscape §1, §2.4)."""

from __future__ import annotations

from raft_harness import S1, S2, S3, make_cluster, noop, sid, single, usr

from pyra_dist.core.effects import (
    AppendToLog,
    InstallSnapshot,
    PersistLastApplied,
    SendRpc,
    TruncateLog,
    WrapReply,
)
from pyra_dist.core.events import CommandRequest, JoinRequest, LeaveRequest, LogWritten, PeerMessage, Tick
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    ChunkState,
    InstallSnapshotResult,
    InstallSnapshotRpc,
)
from pyra_dist.types import AFTER_LOG_APPEND, AWAIT_CONSENSUS, Role, SnapshotMeta


def aer(term: int, commit: int, prev: tuple[int, int], *entries: object) -> PeerMessage:
    return PeerMessage(
        sender=S2,
        msg=AppendEntriesRpc(term, S2, commit, prev[0], prev[1], tuple(entries)),  # type: ignore[arg-type]
    )


# -- Ra PR 508 "log divergence": uncommitted entries of a prior term must not be applied -------------


def stale_follower() -> object:
    """Follower in term 3 holding a tail (3, 4) of term 1 that no leader committed."""
    return single(
        name="s3",
        term=3,
        entries=[noop(1, 1), usr(2, 1, ("put", "a", 1)), usr(3, 1, ("put", "x", "LOST")), usr(4, 1)],
    )


def test_commit_index_from_the_leader_does_not_apply_a_stale_tail_on_an_append_of_known_entries() -> None:
    """The new leader (term 3) has index 3 = its own noop; it commits 3 and sends prev=(1,1) + [2]."""
    core = stale_follower()
    core.handle(aer(3, 3, (1, 1), usr(2, 1, ("put", "a", 1))))  # type: ignore[attr-defined]
    assert core.commit_index == 2  # type: ignore[attr-defined]
    assert core.machine_state == {"a": 1}  # type: ignore[attr-defined]


def test_commit_index_from_the_leader_does_not_apply_a_stale_tail_on_an_empty_append() -> None:
    core = stale_follower()
    effects = core.handle(aer(3, 3, (2, 1)))  # type: ignore[attr-defined]
    assert TruncateLog(last_index=2) in effects
    assert core.machine_state == {"a": 1} and core.last_applied == 2  # type: ignore[attr-defined]


def test_entries_are_applied_once_the_leader_has_overwritten_the_stale_tail() -> None:
    core = stale_follower()
    core.handle(aer(3, 3, (2, 1), noop(3, 3)))  # type: ignore[attr-defined]
    assert core.last_applied == 3 and core.machine_state == {"a": 1}  # type: ignore[attr-defined]


# -- Ra 2.15.3: a late written event must not confirm unwritten entries of a higher term --------------


def test_a_late_written_event_for_overwritten_entries_confirms_nothing() -> None:
    core = single(name="s3", term=1)
    core.handle(aer(1, 0, (0, 0), usr(1, 1), usr(2, 1), usr(3, 1)))
    # A new leader (term 2) overwrites 2..3 before the first write completed.
    core.handle(PeerMessage(sender=S1, msg=AppendEntriesRpc(2, S1, 0, 1, 1, (usr(2, 2), usr(3, 2)))))
    assert core.handle(LogWritten(1, 3, 1)) == []  # the old batch: (3, 1) is no longer in our log
    assert core.last_written() == (0, 0)
    assert core.handle(LogWritten(2, 3, 2)) == [
        SendRpc(to=S1, rpc=AppendEntriesReply(term=2, success=True, next_index=4, last_index=3, last_term=2))
    ]


def test_leader_ignores_a_success_reply_whose_last_entry_is_not_in_its_log() -> None:
    """A follower's stale ``last_index`` of another term must not count as a match (Ra 3.1.8)."""
    c = make_cluster()
    c.elect("s1")
    c.handle("s1", CommandRequest(data=("put", "a", 1)))
    bogus = AppendEntriesReply(term=1, success=True, next_index=3, last_index=2, last_term=0)
    c.handle("s1", LogWritten(2, 2, 1))
    c.handle("s1", PeerMessage(sender=S2, msg=bogus))
    assert c["s1"].commit_index == 1
    assert c["s1"].overview()["peers"][S2]["match_index"] == 1  # type: ignore[index]


# -- PySyncObj: truncation below the commit index on a duplicate append -----------------------------


def test_a_duplicate_append_never_truncates_committed_entries() -> None:
    core = single(name="s3", term=2, entries=[noop(1, 2), usr(2, 2), usr(3, 2)], last_applied=3)
    core.handle(aer(2, 3, (3, 2)))
    assert core.commit_index == 3
    for dup in (aer(2, 1, (0, 0), noop(1, 2)), aer(2, 1, (1, 2)), aer(2, 0, (0, 0))):
        effects = core.handle(dup)
        assert [e for e in effects if isinstance(e, TruncateLog | AppendToLog)] == []
    assert core.last_index_term() == (3, 2)


def test_an_append_conflicting_with_a_committed_entry_is_dropped() -> None:
    core = single(name="s3", term=3, entries=[noop(1, 2), usr(2, 2), usr(3, 2)], last_applied=3)
    core.handle(aer(3, 3, (3, 2)))
    assert core.handle(aer(3, 3, (1, 2), usr(2, 3))) == []
    assert core.last_index_term() == (3, 2) and core.role == Role.FOLLOWER


# -- Ra PR 516: liveness after member removal; Ra 2.9.1: cluster config recovered after a crash -------


def test_removing_a_down_member_commits_with_the_remaining_majority_and_keeps_committing() -> None:
    c = make_cluster()
    c.elect("s1")
    c.down = {S3}
    c.handle("s1", LeaveRequest(server_id=S3, reply_mode=AWAIT_CONSENSUS, from_="admin"))
    c.settle()
    assert ("admin", WrapReply(reply="ok")) in c.replies
    c.handle("s1", CommandRequest(data=("put", "a", 1), reply_mode=AWAIT_CONSENSUS, from_="client"))
    c.settle()
    assert ("client", WrapReply(reply="ok")) in c.replies
    assert c["s1"].cluster == (S1, S2) and c["s1"].cluster_change_permitted


def test_the_latest_cluster_config_is_recovered_from_the_log_after_a_crash() -> None:
    c = make_cluster(names=("s1", "s2", "s3", "s4"), initial=("s1", "s2", "s3"))
    c.elect("s1")
    c.handle("s1", JoinRequest(server_id=sid("s4"), reply_mode=AFTER_LOG_APPEND, from_="admin"))
    c.settle()
    c.restart("s2")
    assert c["s2"].cluster == (S1, S2, S3, sid("s4"))


# -- Simulator seed 9000: installing a snapshot must not drop entries already reported as written --


def test_a_snapshot_describing_a_prefix_of_the_log_keeps_the_entries_after_it() -> None:
    """Raft §7: "If the follower receives a snapshot that describes a prefix of its log, then log
    entries covered by the snapshot are deleted but entries following the snapshot are still valid
    and must be retained." Ra 2.2.0 replaces the whole log; this follower had acknowledged 9."""
    core = single(name="s2", term=1, entries=[noop(1, 1), *(usr(i, 1, ("put", i, i)) for i in range(2, 10))])
    meta = SnapshotMeta(index=8, term=1, cluster=(S1, S2), machine_version=0)
    rpc = InstallSnapshotRpc(1, S1, meta, ChunkState(1, "last"), b"ignored")
    effects = core.handle(PeerMessage(sender=S1, msg=rpc, call="c"))
    assert not any(isinstance(e, InstallSnapshot) for e in effects)
    assert effects[-1] == SendRpc(
        to=S1, rpc=InstallSnapshotResult(term=1, last_index=8, last_term=1), reply_to="c"
    )
    assert core.last_index_term() == (9, 1) and core.last_written() == (9, 1)
    assert core.commit_index == 8 and core.last_applied == 8


# -- Simulator finding F4: recovery must not re-apply an entry that was overwritten before a crash --


def test_persisted_last_applied_never_covers_unwritten_entries() -> None:
    """The follower applies the committed replacement of index 2 from its unwritten tail; the durable
    log still holds the old entry, so ``last_applied`` may only be persisted once it is written."""
    core = single(name="s3", term=2, entries=[noop(1, 1), usr(2, 1, ("put", "x", "OLD"))], last_applied=1)
    core.handle(aer(2, 2, (1, 1), usr(2, 2, ("put", "x", "NEW"))))
    assert core.last_applied == 2 and core.machine_state == {"x": "NEW"}
    assert [e for e in core.handle(Tick(system_time=1)) if isinstance(e, PersistLastApplied)] == []
    core.handle(LogWritten(2, 2, 2))
    assert [e for e in core.handle(Tick(system_time=2)) if isinstance(e, PersistLastApplied)] == [
        PersistLastApplied(index=2)
    ]
