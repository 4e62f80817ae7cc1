"""Machine-version gating answers exactly what Ra 2.2.0 answers (ra-internals §2.3, §2.5, §6.6).

``ra_server:process_pre_vote/3`` (v2.2.0): a pre-vote with ``Term >= current`` first adopts the
term; a candidate whose log is behind gets no reply from a follower; otherwise the vote is
granted iff ``EffectiveMacVer =< TheirMacVer =< OurMacVer``, and a refusal replies ``false`` with
the (adopted) term and arms the long election timer. A snapshot whose machine version is above
ours is not answered at all; one at or below it is installed and raises the effective version
when higher. The edge refuses pre-votes of an unknown *protocol* version before they reach the
core (tests/interop/test_ra_versions.py).
"""

from __future__ import annotations

from raft_harness import LONG_MS, S1, S2, S3, single, usr

from pyra_dist.core.effects import (
    AppendToLog,
    InstallSnapshot,
    MonitorNode,
    MonitorServer,
    PersistMeta,
    RoleChanged,
    SendRpc,
    StartTimer,
)
from pyra_dist.core.events import LogWritten, PeerMessage, TimerKind
from pyra_dist.core.log_view import PickleSnapshotCodec
from pyra_dist.core.machine import Machine
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    ChunkState,
    InstallSnapshotResult,
    InstallSnapshotRpc,
    PreVoteResult,
    PreVoteRpc,
)
from pyra_dist.core.server import RaftCore
from pyra_dist.machines.kv import KvMachine
from pyra_dist.types import Entry, Noop, Role, SnapshotMeta


class KvV1(KvMachine):
    """Version 1 of a versioned machine (``which_module`` picks this class for version 1)."""

    def version(self) -> int:
        return 1


class KvV2(KvMachine):
    """Newest code: understands versions 0..2."""

    def version(self) -> int:
        return 2

    def which_module(self, version: int) -> Machine:
        return {0: KvMachine(), 1: KvV1()}.get(version, self)


def effective_one() -> RaftCore:
    """A follower of S2 running KvV2 whose log switched to machine version 1 at index 1 (a noop)."""
    core = single(term=1, machine=KvV2())
    noop = Entry(1, 1, Noop(machine_version=1, ts=0))
    assert core.handle(PeerMessage(sender=S2, msg=AppendEntriesRpc(1, S2, 1, 0, 0, (noop,)))) == [
        MonitorServer(server_id=S2),
        MonitorNode(node="py@vm"),
        AppendToLog(entries=(noop,)),
    ]
    # Durable: confirmed to the leader, then applied (the noop switches the machine, §6.6).
    assert core.handle(LogWritten(from_index=1, to_index=1, term=1)) == [
        SendRpc(to=S2, rpc=AppendEntriesReply(term=1, success=True, next_index=2, last_index=1, last_term=1)),
    ]
    assert (core.effective_machine_version, type(core.machine)) == (1, KvV1)
    return core


def pre_vote(machine_version: int, term: int = 1, last: tuple[int, int] = (1, 1)) -> PeerMessage:
    return PeerMessage(
        sender=S3, msg=PreVoteRpc(1, machine_version, term, "tok", S3, last[0], last[1]), call="from"
    )


def answer(term: int, granted: bool) -> SendRpc:
    return SendRpc(to=S3, rpc=PreVoteResult(term=term, token="tok", vote_granted=granted), reply_to="from")


LONG_TIMER = StartTimer(key=TimerKind.ELECTION, after_ms=LONG_MS)


def test_pre_votes_within_the_effective_to_latest_machine_version_window_are_granted() -> None:
    assert effective_one().handle(pre_vote(1)) == [answer(1, True)]
    assert effective_one().handle(pre_vote(2)) == [answer(1, True)]


def test_a_pre_vote_below_the_effective_machine_version_is_answered_false_with_a_long_timer() -> None:
    assert effective_one().handle(pre_vote(0)) == [answer(1, False), LONG_TIMER]


def test_a_pre_vote_above_our_latest_machine_version_is_answered_false_with_a_long_timer() -> None:
    assert effective_one().handle(pre_vote(3)) == [answer(1, False), LONG_TIMER]


def test_a_higher_term_pre_vote_with_an_unknown_machine_version_adopts_the_term_then_answers_false() -> None:
    # Ra: update_term(Term) (persisted, no vote), then reply(pre_vote_result(Term, Token, false)).
    core = effective_one()
    assert core.handle(pre_vote(3, term=5)) == [
        PersistMeta(term=5, voted_for=None),
        answer(5, False),
        LONG_TIMER,
    ]
    assert (core.current_term, core.voted_for, core.role) == (5, None, Role.FOLLOWER)


def test_a_candidate_that_is_behind_gets_no_answer_whatever_its_machine_version() -> None:
    # The log check comes first in process_pre_vote: a follower stays silent and waits long.
    core = single(term=1, entries=[usr(1, 1), usr(2, 1)], machine=KvV2())
    assert core.handle(pre_vote(9, last=(1, 1))) == [LONG_TIMER]


def test_a_snapshot_with_a_machine_version_above_ours_is_not_answered() -> None:
    core = effective_one()
    meta = SnapshotMeta(index=10, term=1, cluster=(S1, S2, S3), machine_version=3)
    chunk = InstallSnapshotRpc(1, S2, meta, ChunkState(1, "last"), PickleSnapshotCodec().encode(meta, {}))
    assert core.handle(PeerMessage(sender=S2, msg=chunk, call="c")) == []
    assert (core.role, core.last_applied, core.effective_machine_version) == (Role.FOLLOWER, 1, 1)


def test_a_snapshot_of_a_newer_understood_machine_version_raises_the_effective_version() -> None:
    core = effective_one()
    meta = SnapshotMeta(index=10, term=1, cluster=(S1, S2, S3), machine_version=2)
    chunk = InstallSnapshotRpc(
        1, S2, meta, ChunkState(1, "last"), PickleSnapshotCodec().encode(meta, {"a": 1})
    )
    assert core.handle(PeerMessage(sender=S2, msg=chunk, call="c")) == [
        RoleChanged(old=Role.FOLLOWER, new=Role.RECEIVE_SNAPSHOT, leader_id=S2),
        InstallSnapshot(meta=meta, state={"a": 1}),
        RoleChanged(old=Role.RECEIVE_SNAPSHOT, new=Role.FOLLOWER, leader_id=S2),
        SendRpc(to=S2, rpc=InstallSnapshotResult(term=1, last_index=10, last_term=1), reply_to="c"),
    ]
    assert (core.effective_machine_version, type(core.machine), core.machine_state) == (2, KvV2, {"a": 1})


def test_a_snapshot_of_an_older_machine_version_keeps_the_effective_version() -> None:
    core = effective_one()
    meta = SnapshotMeta(index=10, term=1, cluster=(S1, S2, S3), machine_version=0)
    chunk = InstallSnapshotRpc(
        1, S2, meta, ChunkState(1, "last"), PickleSnapshotCodec().encode(meta, {"a": 1})
    )
    effects = core.handle(PeerMessage(sender=S2, msg=chunk, call="c"))
    assert effects[-1] == SendRpc(
        to=S2, rpc=InstallSnapshotResult(term=1, last_index=10, last_term=1), reply_to="c"
    )
    assert (core.effective_machine_version, type(core.machine), core.last_applied) == (1, KvV1, 10)
