"""The effect interpreter: order, the durability rule for PersistMeta, AER coalescing, Stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from pyra_dist.core.effects import (
    AppendToLog,
    MachineEffect,
    Notify,
    PersistMeta,
    Reply,
    RoleChanged,
    SendRpc,
    StartTimer,
    Stop,
    WrapReply,
)
from pyra_dist.core.events import MachineTimer, TimerKind
from pyra_dist.core.machine import ReplyTo, Timer
from pyra_dist.core.messages import AppendEntriesReply, AppendEntriesRpc, RequestVoteResult
from pyra_dist.server.effects import EffectInterpreter, ServerStopped
from pyra_dist.server.transport import RaEvent
from pyra_dist.types import Entry, Noop, Role, ServerId

ME, PEER1, PEER2 = ServerId("s", "n1"), ServerId("s", "n2"), ServerId("s", "n3")


def entry(i: int) -> Entry:
    return Entry(i, 2, Noop(0))


def aer(prev: int, entries: int, commit: int) -> AppendEntriesRpc:
    return AppendEntriesRpc(2, ME, commit, prev, 2, tuple(entry(prev + 1 + k) for k in range(entries)))


class Recorder:
    """Transport, timers, hooks, log and meta in one: records every call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.vote_synced = asyncio.Event()

    # transport
    def send_peer(self, sender: ServerId, to: ServerId, rpc: object, reply_to: object) -> None:
        self.calls.append(("send", to, rpc, reply_to))

    def reply(self, to: object, reply: object) -> None:
        self.calls.append(("reply", to, reply))

    def send_event(self, pid: object, event: RaEvent) -> None:
        self.calls.append(("event", pid, event))

    def forget(self, process: object) -> None:
        self.calls.append(("forget",))

    # timers
    def start(self, owner: object, key: object, after_s: float) -> None:
        self.calls.append(("timer", key, after_s))

    def cancel(self, owner: object, key: object) -> None:
        self.calls.append(("cancel", key))

    # hooks
    def log_of(self, process: object) -> Recorder:
        return self

    def meta_of(self, process: object) -> Recorder:
        return self

    def role_changed(self, process: object, role: Role, leader: object) -> None:
        self.calls.append(("role", role, leader))

    # log + meta
    def append(self, entries: tuple[Entry, ...]) -> None:
        self.calls.append(("append", tuple(e.index for e in entries)))

    async def persist(self, term: int, voted_for: object) -> None:
        await self.vote_synced.wait()
        self.calls.append(("persisted", term, voted_for))


class Process:
    server_id = ME
    role = Role.FOLLOWER
    leader_id = None
    members = ()
    busy = False
    stopped = False

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        yield


def interpreter(rec: Recorder) -> EffectInterpreter:
    return EffectInterpreter(rec, rec, rec)  # type: ignore[arg-type]


async def test_a_vote_reply_is_sent_only_after_the_vote_is_durable() -> None:
    rec = Recorder()
    vote = RequestVoteResult(term=3, vote_granted=True)
    effects = [PersistMeta(3, PEER1), SendRpc(PEER1, vote, reply_to="from")]
    task = asyncio.create_task(interpreter(rec).execute(Process(), effects))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert rec.calls == []
    rec.vote_synced.set()
    await task
    assert rec.calls == [("persisted", 3, PEER1), ("send", PEER1, vote, "from")]


async def test_consecutive_aers_to_a_peer_are_coalesced_and_order_per_peer_is_kept() -> None:
    rec = Recorder()
    reply = AppendEntriesReply(2, True, 4, 3, 2)
    effects = [
        AppendToLog((entry(1),)),
        SendRpc(PEER1, aer(0, 1, 0)),
        SendRpc(PEER2, aer(0, 1, 0)),
        AppendToLog((entry(2),)),
        SendRpc(PEER1, aer(1, 1, 1)),
        SendRpc(PEER2, reply),
        SendRpc(PEER2, aer(1, 1, 1)),
        SendRpc(PEER1, aer(2, 0, 2)),
    ]
    await interpreter(rec).execute(Process(), effects)  # type: ignore[arg-type]

    assert rec.calls == [
        ("append", (1,)),
        ("append", (2,)),
        ("send", PEER2, aer(0, 1, 0), None),
        ("send", PEER2, reply, None),
        ("send", PEER1, AppendEntriesRpc(2, ME, 2, 0, 2, (entry(1), entry(2))), None),
        ("send", PEER2, aer(1, 1, 1), None),
    ]


async def test_aers_that_do_not_continue_each_other_are_sent_separately() -> None:
    rec = Recorder()
    effects = [SendRpc(PEER1, aer(0, 2, 0)), SendRpc(PEER1, aer(0, 1, 0))]
    await interpreter(rec).execute(Process(), effects)  # type: ignore[arg-type]
    assert rec.calls == [("send", PEER1, aer(0, 2, 0), None), ("send", PEER1, aer(0, 1, 0), None)]


async def test_client_replies_notifications_timers_and_role_changes_run_in_order() -> None:
    rec = Recorder()
    effects = [
        RoleChanged(Role.CANDIDATE, Role.LEADER, ME),
        StartTimer(TimerKind.ELECTION, 250),
        Reply("caller", WrapReply("ok")),
        Notify("pid", ME, ((1, "ok"), (2, "ok"))),
        MachineEffect(ReplyTo("from", 7)),
        MachineEffect(Timer("t", None)),
    ]
    process = Process()
    await interpreter(rec).execute(process, effects)  # type: ignore[arg-type]

    assert rec.calls == [
        ("role", Role.LEADER, ME),
        ("timer", TimerKind.ELECTION, 0.25),
        ("reply", "caller", WrapReply("ok")),
        ("event", "pid", RaEvent(ME, "applied", ((1, "ok"), (2, "ok")))),
        ("reply", "from", WrapReply(7)),
        ("cancel", MachineTimer("t")),
    ]
    assert (process.role, process.leader_id) == (Role.LEADER, ME)


async def test_stop_flushes_pending_sends_and_ends_the_server() -> None:
    rec = Recorder()
    with pytest.raises(ServerStopped) as info:
        effects = [SendRpc(PEER1, aer(0, 1, 0)), Stop("normal")]
        await interpreter(rec).execute(Process(), effects)  # type: ignore[arg-type]
    assert (info.value.reason, rec.calls) == ("normal", [("send", PEER1, aer(0, 1, 0), None)])


async def test_a_commit_only_aer_is_held_until_the_next_loop_iteration() -> None:
    rec = Recorder()
    reply = ("reply", "caller", WrapReply("ok"))
    effects = [Reply("caller", WrapReply("ok")), SendRpc(PEER1, aer(2, 0, 2))]
    await interpreter(rec).execute(Process(), effects)  # type: ignore[arg-type]
    assert rec.calls == [reply]
    await asyncio.sleep(0)
    assert rec.calls == [reply, ("send", PEER1, aer(2, 0, 2), None)]


async def test_with_a_hold_time_a_commit_only_aer_waits_for_the_next_aer_and_joins_it() -> None:
    rec = Recorder()
    process = Process()
    interp = EffectInterpreter(rec, rec, rec, commit_only_aer_hold_s=60.0)  # type: ignore[arg-type]
    await interp.execute(process, [SendRpc(PEER1, aer(2, 0, 2))])  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert rec.calls == []
    await interp.execute(process, [AppendToLog((entry(3),)), SendRpc(PEER1, aer(2, 1, 2))])  # type: ignore[arg-type]
    assert rec.calls == [("append", (3,)), ("send", PEER1, aer(2, 1, 2), None)]


async def test_with_a_hold_time_a_commit_only_aer_goes_out_once_it_expires() -> None:
    rec = Recorder()
    interp = EffectInterpreter(rec, rec, rec, commit_only_aer_hold_s=0.02)  # type: ignore[arg-type]
    await interp.execute(Process(), [SendRpc(PEER1, aer(2, 0, 2))])  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert rec.calls == []
    for _ in range(500):
        if rec.calls:
            break
        await asyncio.sleep(0.01)
    assert rec.calls == [("send", PEER1, aer(2, 0, 2), None)]


async def test_a_held_commit_only_aer_joins_the_next_aer_of_a_busy_process() -> None:
    rec = Recorder()
    process, interp = Process(), interpreter(rec)
    process.busy = True
    await interp.execute(process, [SendRpc(PEER1, aer(2, 0, 2)), SendRpc(PEER2, aer(2, 0, 2))])  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert rec.calls == []
    await interp.execute(process, [AppendToLog((entry(3),)), SendRpc(PEER1, aer(2, 1, 2))])  # type: ignore[arg-type]
    process.busy = False
    joined = [("append", (3,)), ("send", PEER1, aer(2, 1, 2), None)]
    assert rec.calls == joined
    await asyncio.sleep(0)
    assert rec.calls == [*joined, ("send", PEER2, aer(2, 0, 2), None)]


async def test_a_held_aer_goes_out_before_any_other_message_to_that_peer() -> None:
    rec = Recorder()
    process, interp = Process(), interpreter(rec)
    process.busy = True
    reply = AppendEntriesReply(3, False, 3, 2, 2)
    await interp.execute(process, [SendRpc(PEER1, aer(2, 0, 2))])  # type: ignore[arg-type]
    await interp.execute(process, [SendRpc(PEER1, reply)])  # type: ignore[arg-type]
    assert rec.calls == [("send", PEER1, aer(2, 0, 2), None), ("send", PEER1, reply, None)]
