"""``'$ra_cluster'`` delete on a follower: the exact effects (ra-internals §3.5, Ra 2.2.0 ``ra_server``).

A Ra 2.2.0 leader that applied the delete waits in ``terminating_leader`` until every peer's match
index reaches its commit index, and only ``append_entries_reply`` casts move it. So a follower casts
a last reply to its leader when it applies the delete (``evaluate_commit_index_follower``), keeps
reporting writes while entries are still on their way to disk (``terminating_follower``) and stops,
deleting its data, once its log is fully written (``is_fully_persisted``).
"""

from __future__ import annotations

from raft_harness import S1, S2, make_cluster, noop, single

from pyra_dist.core.effects import (
    AppendToLog,
    MonitorNode,
    MonitorServer,
    Pong,
    Reply,
    RoleChanged,
    SendRpc,
    Stop,
)
from pyra_dist.core.events import DeleteClusterRequest, LogWritten, PeerDown, PeerMessage, PingRequest
from pyra_dist.core.messages import AppendEntriesReply, AppendEntriesRpc
from pyra_dist.types import ClusterDelete, Entry, Role

LEADER_CONTACT = [MonitorServer(server_id=S2), MonitorNode(node="py@vm")]


def delete(index: int, term: int) -> Entry:
    """The entry ``ra:delete_cluster`` appends (``{'$ra_cluster', Meta, delete, await_consensus}``)."""
    return Entry(index, term, ClusterDelete(from_="admin"))


def aer(commit: int, prev: tuple[int, int], *entries: Entry) -> PeerMessage:
    """An AER of term 1 from S2 (the leader)."""
    return PeerMessage(sender=S2, msg=AppendEntriesRpc(1, S2, commit, prev[0], prev[1], tuple(entries)))


def reply(next_index: int, last_index: int, last_term: int) -> SendRpc:
    """A successful ``append_entries_reply`` cast to S2 in term 1."""
    return SendRpc(
        to=S2,
        rpc=AppendEntriesReply(
            term=1, success=True, next_index=next_index, last_index=last_index, last_term=last_term
        ),
    )


STOPPED = [
    RoleChanged(old=Role.FOLLOWER, new=Role.STOPPED, leader_id=S2),
    Stop(reason="delete", delete_data=True),
]


def test_follower_with_a_written_log_casts_a_last_reply_then_stops_when_it_applies_the_delete() -> None:
    core = single("s1", term=1, entries=[noop(1, 1), delete(2, 1)])
    assert core.handle(aer(2, (2, 1))) == [*LEADER_CONTACT, reply(3, 2, 1), *STOPPED]
    assert core.role == Role.STOPPED and core.last_applied == 2


def test_follower_applying_the_delete_from_its_unwritten_tail_reports_the_write_before_stopping() -> None:
    core = single("s1", term=1)
    # Entries and the commit index arrive together: the delete is applied before it is durable here.
    assert core.handle(aer(2, (0, 0), noop(1, 1), delete(2, 1))) == [
        *LEADER_CONTACT,
        AppendToLog(entries=(noop(1, 1), delete(2, 1))),
        reply(3, 0, 0),
    ]
    assert (core.role, core.last_applied) == (Role.FOLLOWER, 2)
    # Ra's terminating_follower: a written event is reported, the server stays until all is written.
    assert core.handle(LogWritten(1, 1, 1)) == [reply(3, 1, 1)]
    assert core.handle(LogWritten(2, 2, 1)) == [reply(3, 2, 1), *STOPPED]
    assert core.handle(PingRequest(from_="late")) == []


def test_terminating_follower_answers_calls_but_neither_campaigns_nor_accepts_entries() -> None:
    core = single("s1", term=1)
    core.handle(aer(2, (0, 0), noop(1, 1), delete(2, 1)))
    assert core.handle(PingRequest(from_="p")) == [Reply(to="p", reply=Pong(role=Role.FOLLOWER))]
    # The leader exiting would arm a really short election timer in a live follower.
    assert core.handle(PeerDown(server_id=S2, reason="normal")) == []
    assert core.handle(aer(2, (2, 1), noop(3, 1))) == []
    assert core.handle(LogWritten(1, 2, 1)) == [reply(3, 2, 1), *STOPPED]


def test_every_follower_reports_the_delete_index_to_the_leader_before_it_stops() -> None:
    c = make_cluster()
    c.elect("s1")
    c.handle("s1", DeleteClusterRequest(from_="admin"))
    c.settle()
    delete_index = c["s1"].last_applied
    for name in ("s2", "s3"):
        effects = list(c.effects_of(name))
        stop = effects.index(Stop(reason="delete", delete_data=True))
        replies = [
            e.rpc
            for e in effects[:stop]
            if isinstance(e, SendRpc) and e.to == S1 and isinstance(e.rpc, AppendEntriesReply)
        ]
        assert (replies[-1].last_index, replies[-1].success) == (delete_index, True), name
        assert effects[stop + 1 :] == []
