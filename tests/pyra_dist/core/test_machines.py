"""The ra_machine contract: simple and kv machines, apply meta, machine effects by role (ra-internals §6)."""

from __future__ import annotations

from typing import Literal

from raft_harness import S1, S2, make_cluster

from pyra_dist.core.effects import (
    AuxReply,
    MachineEffect,
    Reply,
    StartTimer,
    WrapReply,
    WriteSnapshot,
)
from pyra_dist.core.events import (
    AuxCommand,
    CommandRequest,
    MachineDown,
    MachineTimer,
    TimerFired,
)
from pyra_dist.core.machine import (
    ApplyMeta,
    ApplyResult,
    AuxResult,
    Down,
    LogRead,
    Machine,
    MachineConfig,
    MachineEffectT,
    Monitor,
    ReleaseCursor,
    ReplyTo,
    SendMsg,
    Timeout,
    Timer,
)
from pyra_dist.machines.kv import KvMachine
from pyra_dist.machines.simple import SimpleMachine
from pyra_dist.types import AWAIT_CONSENSUS, SnapshotMeta


def test_simple_machine_replies_with_the_new_state() -> None:
    """ra-internals §6.1: ``{simple, Fun, InitialState}``; the reply **is** the new state."""
    c = make_cluster(machine=SimpleMachine(lambda cmd, s: s + cmd, 10))  # type: ignore[operator]
    c.elect("s1")
    c.handle("s1", CommandRequest(data=5, reply_mode=AWAIT_CONSENSUS, from_="c"))
    c.settle()
    assert c.replies == [("c", WrapReply(reply=15))]
    assert c.states() == {"s1": 15, "s2": 15, "s3": 15}


def test_kv_machine_commands_and_replies() -> None:
    m = KvMachine()
    meta = ApplyMeta(index=1, term=1, system_time=0, machine_version=0)
    state = m.init(MachineConfig(name="s1"))
    state, reply, _ = m.apply(meta, ("put", "a", 1), state)  # type: ignore[misc]
    assert reply == "ok"
    assert m.apply(meta, ("get", "a"), state)[1] == 1
    assert m.apply(meta, ("cas", "a", 2, 3), state)[1] == ("error", 1)
    state, reply, _ = m.apply(meta, ("cas", "a", 1, 3), state)  # type: ignore[misc]
    assert (state, reply) == ({"a": 3}, ("ok", 3))
    state, reply, _ = m.apply(meta, ("delete", "a"), state)  # type: ignore[misc]
    assert state == {}


class Effectful(Machine):
    """Returns the effects named in the command; records apply metas."""

    def init(self, config: MachineConfig) -> object:
        return []

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        assert isinstance(state, list)
        effects: list[MachineEffectT] = []
        match command:
            case ("effects", list() as effs):
                effects = effs
            case _:
                pass
        return [*state, (meta.index, command)], "ok", effects

    def handle_aux(
        self, role: str, kind: Literal["call", "cast"], command: object, aux: object, state: object
    ) -> AuxResult:
        count = aux if isinstance(aux, int) else 0
        if kind == "call":
            return ("reply", ("aux", role, command, count), count)
        return ("no_reply", count + 1)


def test_apply_meta_carries_index_term_system_time_and_from() -> None:
    """ra-internals §6.3 (ra_machine_int_SUITE:meta_data)."""

    class Meta(Machine):
        def init(self, config: MachineConfig) -> object:
            return None

        def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
            return meta, "ok"

    c = make_cluster(machine=Meta())
    c.elect("s1")
    c.handle("s1", CommandRequest(data="x", reply_mode=AWAIT_CONSENSUS, from_="caller", system_time=1234))
    c.settle()
    assert c["s2"].machine_state == ApplyMeta(
        index=2, term=1, system_time=1234, machine_version=0, from_="caller"
    )


def test_leader_only_effects_run_on_the_leader_and_release_cursor_everywhere() -> None:
    c = make_cluster(machine=Effectful(), snapshot_interval=1)
    c.elect("s1")
    effs = [SendMsg(to="pid", msg="hi"), Monitor("process", "pid"), ReleaseCursor(index=2, state=["snap"])]
    c.handle("s1", CommandRequest(data=("effects", effs)))
    c.settle()
    leader = list(c.effects_of("s1"))
    follower = list(c.effects_of("s2"))
    assert MachineEffect(effect=SendMsg(to="pid", msg="hi")) in leader
    assert MachineEffect(effect=Monitor("process", "pid")) in leader
    assert not any(isinstance(e, MachineEffect) for e in follower)
    snap = WriteSnapshot(meta=SnapshotMeta(index=2, term=1, cluster=(S1, S2, c["s3"].id)), state=["snap"])
    assert snap in leader and snap in follower


def test_machine_timers_and_monitors_come_back_as_log_entries() -> None:
    """ra_machine_int_SUITE:timer_effect / leader_monitors: ``{timeout, Name}`` and ``{down, Pid, Info}``."""
    c = make_cluster(machine=Effectful())
    c.elect("s1")
    c.handle("s1", CommandRequest(data=("effects", [Timer(name="t", ms=50)])))
    c.settle()
    assert StartTimer(key=MachineTimer(name="t"), after_ms=50) in list(c.effects_of("s1"))
    c.handle("s1", TimerFired(key=MachineTimer(name="t")))
    c.handle("s1", MachineDown(pid="p", info="noproc"))
    c.settle()
    assert c["s2"].machine_state[-2:] == [(3, Timeout(name="t")), (4, Down(pid="p", info="noproc"))]  # type: ignore[index]


def test_reply_effect_and_log_effect() -> None:
    c = make_cluster(machine=Effectful())
    c.elect("s1")

    def from_log(commands: list[object]) -> list[MachineEffectT]:
        return [ReplyTo(from_="later", reply=commands)]

    c.handle("s1", CommandRequest(data="first"))
    c.handle("s1", CommandRequest(data=("effects", [LogRead(indexes=(2,), fun=from_log)])))
    c.settle()
    assert ("later", WrapReply(reply=["first"])) in c.replies


def test_aux_commands_are_answered_and_eval_follows_applies() -> None:
    c = make_cluster(machine=Effectful())
    c.elect("s1")
    c.handle("s1", CommandRequest(data="x"))
    c.settle()
    effects = c.handle("s1", AuxCommand(command="ask", from_="c"))
    assert effects == [Reply(to="c", reply=AuxReply(reply=("aux", "leader", "ask", c["s1"].aux_state)))]
    assert isinstance(c["s1"].aux_state, int) and c["s1"].aux_state >= 1


def test_server_ids_hash_once_and_unpickle_with_a_fresh_hash() -> None:
    import pickle

    from pyra_dist.types import ServerId

    sid = ServerId("s1", "n@h")
    data = pickle.dumps({sid: 1})
    assert b"_hash" not in data  # pickled through __reduce__ (name, node) only
    assert pickle.loads(data)[ServerId("s1", "n@h")] == 1
    assert repr(sid) == "ServerId(name='s1', node='n@h')" and ServerId.__match_args__ == ("name", "node")
