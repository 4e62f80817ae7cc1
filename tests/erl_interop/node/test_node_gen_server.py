"""GenServer and call() between Python processes: replies, alias tags, errors, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from erl_interop import NO_REPLY, CallExit, CallTimeout, GenServer, Node, NodeDown, NoProc
from erl_interop.node.gen_server import From
from erl_interop.term import Atom, ImproperList, Term

GEN_CALL = Atom("$gen_call")


class Kv(GenServer):
    def __init__(self) -> None:
        super().__init__()
        self.data: dict[Term, Term] = {}
        self.infos: list[Term] = []
        self.parked: list[From] = []

    async def handle_call(self, request: Term, from_: From) -> Term:
        match request:
            case (Atom(name="get"), key):
                return self.data.get(key, Atom("undefined"))
            case Atom(name="park"):
                self.parked.append(from_)
                return NO_REPLY
            case Atom(name="release"):
                for waiting in self.parked:
                    self.reply(waiting, Atom("released"))
                return Atom("ok")
            case Atom(name="crash"):
                raise RuntimeError("asked to crash")
            case Atom(name="slow"):
                await asyncio.sleep(0.5)
                return Atom("late")
            case _:
                return (Atom("error"), Atom("unknown"))

    async def handle_cast(self, request: Term) -> None:
        match request:
            case (Atom(name="put"), key, value):
                self.data[key] = value

    async def handle_info(self, message: Term) -> None:
        self.infos.append(message)


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with Node("gs", distributed=False) as n:
        yield n


async def test_call_cast_and_info_reach_the_right_handlers(node: Node) -> None:
    kv = Kv()
    node.start_gen_server(kv, name="kv")
    node.cast(Atom("kv"), (Atom("put"), 1, b"one"))
    assert await node.call(Atom("kv"), (Atom("get"), 1)) == b"one"
    node.send(Atom("kv"), "just info")
    assert await node.call(Atom("kv"), (Atom("get"), 2)) == Atom("undefined")
    assert kv.infos == ["just info"]


async def test_no_reply_then_reply_answers_the_parked_caller(node: Node) -> None:
    node.start_gen_server(Kv(), name="kv")
    parked = asyncio.create_task(node.call(Atom("kv"), Atom("park")))
    await asyncio.sleep(0.01)
    assert await node.call(Atom("kv"), Atom("release")) == Atom("ok")
    assert await parked == Atom("released")


async def test_reply_to_an_alias_tag_goes_through_the_alias(node: Node) -> None:
    node.start_gen_server(Kv(), name="kv")
    async with node.process() as caller:
        alias = caller.alias()
        tag = ImproperList((Atom("alias"),), alias)
        caller.send(Atom("kv"), (GEN_CALL, (caller.pid, tag), (Atom("get"), 9)))
        assert await caller.receive(timeout=5) == (tag, Atom("undefined"))


async def test_call_to_a_free_name_raises_noproc(node: Node) -> None:
    with pytest.raises(NoProc):
        await node.call(Atom("nobody"), Atom("ping"))


async def test_call_raises_call_exit_when_the_server_crashes(node: Node) -> None:
    node.start_gen_server(Kv(), name="kv")
    with pytest.raises(CallExit) as info:
        await node.call(Atom("kv"), Atom("crash"))
    assert info.value.reason == (Atom("python"), b"RuntimeError", b"asked to crash")
    assert node.whereis("kv") is None


async def test_call_timeout_raises_and_the_late_reply_is_dropped(node: Node) -> None:
    node.start_gen_server(Kv(), name="kv")
    with pytest.raises(CallTimeout):
        await node.call(Atom("kv"), Atom("slow"), timeout=0.05)
    # The server still answers later; the reply goes to a dead temporary process.
    assert await node.call(Atom("kv"), (Atom("get"), 1), timeout=5) == Atom("undefined")


async def test_call_to_an_unreachable_node_raises_node_down(node: Node) -> None:
    with pytest.raises(NodeDown):
        await node.call((Atom("srv"), Atom("far@nowhere")), Atom("ping"))


async def test_net_kernel_answers_is_auth_with_yes(node: Node) -> None:
    assert await node.call(Atom("net_kernel"), (Atom("is_auth"), Atom("x@y"))) == Atom("yes")
