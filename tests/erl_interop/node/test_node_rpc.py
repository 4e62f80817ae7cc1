"""RPC served by a Python node, exercised from Python: erpc over SPAWN_REQUEST, rex, allowlist."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from erl_interop import ErlangError, ErlangThrow, Node, ProcessExit, RpcError
from erl_interop.term import Atom

REX = Atom("rex")
BADRPC = Atom("badrpc")
EXIT = Atom("EXIT")


async def async_double(x: int) -> int:
    return 2 * x


def raise_erlang_error(reason: object) -> None:
    raise ErlangError(reason)


def raise_value_error() -> None:
    raise ValueError("not like this")


def throw(value: object) -> None:
    raise ErlangThrow(value)


def leave(reason: object) -> None:
    raise ProcessExit(reason)


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with Node("rpc", distributed=False) as n:
        n.expose("calc", "add", lambda a, b: a + b)
        n.expose("calc", "double", async_double)
        n.expose("calc", "fail", raise_erlang_error)
        n.expose("calc", "bad", raise_value_error)
        n.expose("calc", "throw", throw)
        n.expose("calc", "leave", leave)
        yield n


async def test_erpc_call_runs_plain_and_async_exposed_functions(node: Node) -> None:
    assert await node.rpc(node.name, "calc", "add", [1, 2]) == 3
    assert await node.rpc(node.name, "calc", "double", [21]) == 42


async def test_erpc_call_maps_each_exception_class(node: Node) -> None:
    with pytest.raises(RpcError) as err:
        await node.rpc(node.name, "calc", "fail", [Atom("oops")])
    assert (err.value.kind, err.value.reason, err.value.stack) == (
        Atom("error"),
        Atom("oops"),
        [(Atom("calc"), Atom("fail"), 1, [])],
    )
    with pytest.raises(RpcError) as err:
        await node.rpc(node.name, "calc", "bad", [])
    assert (err.value.kind, err.value.reason) == (
        Atom("error"),
        (Atom("python"), b"ValueError", b"not like this"),
    )
    with pytest.raises(RpcError) as err:
        await node.rpc(node.name, "calc", "throw", [7])
    assert (err.value.kind, err.value.reason) == (Atom("throw"), 7)
    with pytest.raises(RpcError) as err:
        await node.rpc(node.name, "calc", "leave", [Atom("bye")])
    assert (err.value.kind, err.value.reason) == (Atom("exit"), Atom("bye"))


async def test_blocking_functions_exposed_with_thread_run_off_the_loop(node: Node) -> None:
    import threading

    loop_thread = threading.get_ident()
    node.expose("calc", "where", lambda tag: (tag, threading.get_ident() != loop_thread), thread=True)
    assert await node.rpc(node.name, "calc", "where", [Atom("t")]) == (Atom("t"), True)
    with pytest.raises(RpcError) as err:
        await node.rpc(node.name, "calc", "where", [])
    assert err.value.reason == Atom("undef")


async def test_functions_that_were_not_exposed_are_undef(node: Node) -> None:
    with pytest.raises(RpcError) as err:
        await node.rpc(node.name, "os", "cmd", [b"true"])
    assert (err.value.kind, err.value.reason, err.value.stack) == (
        Atom("error"),
        Atom("undef"),
        [(Atom("os"), Atom("cmd"), [b"true"], [])],
    )


async def test_calling_an_exposed_function_with_the_wrong_arity_is_undef(node: Node) -> None:
    with pytest.raises(RpcError) as err:
        await node.rpc(node.name, "calc", "add", [1])
    assert (err.value.kind, err.value.reason, err.value.stack) == (
        Atom("error"),
        Atom("undef"),
        [(Atom("calc"), Atom("add"), [1], [])],
    )


async def test_rex_serves_block_call_and_the_raw_call_message(node: Node) -> None:
    call = (Atom("block_call"), Atom("calc"), Atom("add"), [5, 6], Atom("user"))
    assert await node.call(REX, call) == 11
    bad = (Atom("call"), Atom("calc"), Atom("fail"), [Atom("no")], Atom("user"))
    assert await node.call(REX, bad) == (BADRPC, (EXIT, (Atom("no"), [(Atom("calc"), Atom("fail"), 1, [])])))
    async with node.process() as me:
        me.send(REX, (me.pid, (Atom("call"), Atom("calc"), Atom("add"), [1, 1], Atom("user"))))
        assert await me.receive(timeout=5) == (REX, 2)
        me.send(REX, (me.pid, Atom("features_request")))
        assert await me.receive(timeout=5) == (Atom("features_reply"), node.name, [Atom("erpc")])


async def test_erpc_to_an_unreachable_node_raises_node_down() -> None:
    from erl_interop import NodeDown

    async with Node("lonely", distributed=False) as n:
        with pytest.raises(NodeDown):
            await n.rpc("far@away", "m", "f", [])
