"""Two Python nodes in one process, connected over real TCP and EPMD (no globals between them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from erl_interop import EpmdError, GenServer, Node, SyncNode
from erl_interop.node.gen_server import From
from erl_interop.term import Atom, Term

DOWN = Atom("DOWN")
EXIT = Atom("EXIT")
PROCESS = Atom("process")


class Echo(GenServer):
    async def handle_call(self, request: Term, from_: From) -> Term:
        return (Atom("echo"), request)


async def test_two_nodes_ping_send_call_and_rpc_each_other(
    cookie: str, node_name: Callable[[str], str]
) -> None:
    async with Node(node_name("a"), cookie=cookie) as a, Node(node_name("b"), cookie=cookie) as b:
        assert await a.ping(b.name) is True
        assert b.nodes() == [a.name]
        b.start_gen_server(Echo(), name="echo")
        assert await a.call((Atom("echo"), b.name), 1) == (Atom("echo"), 1)
        b.expose("m", "add", lambda x, y: x + y)
        assert await a.rpc(b.name, "m", "add", [2, 3]) == 5
        inbox = b.process(name="inbox")
        async with a.process() as me:
            me.send((Atom("inbox"), b.name), (me.pid, [1, 2, 3]))
            sender, payload = await inbox.receive(timeout=10)
            assert (sender, payload) == (me.pid, [1, 2, 3])
            inbox.send(sender, b"back")
            assert await me.receive(timeout=10) == b"back"


async def test_messages_from_a_peer_reach_a_handler_process_in_sending_order(
    cookie: str, node_name: Callable[[str], str]
) -> None:
    async with Node(node_name("a"), cookie=cookie) as a, Node(node_name("b"), cookie=cookie) as b:
        seen: list[Term] = []
        done = asyncio.Event()

        def handle(message: Term) -> None:
            seen.append(message)
            if message == Atom("done"):
                done.set()

        b.process(name="handled", handler=handle)
        async with a.process() as me:
            for i in range(200):
                me.send((Atom("handled"), b.name), (i, b"x" * i))
            me.send((Atom("handled"), b.name), Atom("done"))
            await asyncio.wait_for(done.wait(), 30)
        assert seen == [(i, b"x" * i) for i in range(200)] + [Atom("done")]


async def test_links_and_monitors_across_nodes_fire_with_the_exit_reason(
    cookie: str, node_name: Callable[[str], str]
) -> None:
    async with Node(node_name("a"), cookie=cookie) as a, Node(node_name("b"), cookie=cookie) as b:
        remote = b.process(name="victim")
        async with a.process(trap_exit=True) as me:
            me.link(remote.pid)
            ref = me.monitor((Atom("victim"), b.name))
            assert await a.call((Atom("net_kernel"), b.name), (Atom("is_auth"), a.name)) == Atom("yes")
            remote.close(Atom("bye"))
            got = {await me.receive(timeout=10), await me.receive(timeout=10)}
            assert got == {
                (EXIT, remote.pid, Atom("bye")),
                (DOWN, ref, PROCESS, (Atom("victim"), b.name), Atom("bye")),
            }


async def test_losing_the_connection_fires_noconnection_for_links_and_monitors(
    cookie: str, node_name: Callable[[str], str]
) -> None:
    async with Node(node_name("a"), cookie=cookie) as a, Node(node_name("b"), cookie=cookie) as b:
        remote = b.process(trap_exit=True)
        async with a.process(trap_exit=True) as me:
            me.link(remote.pid)
            ref = me.monitor(remote.pid)
            assert await a.ping(b.name)
            assert a.disconnect(b.name) is True
            got = {await me.receive(timeout=10), await me.receive(timeout=10)}
            assert got == {
                (EXIT, remote.pid, Atom("noconnection")),
                (DOWN, ref, PROCESS, remote.pid, Atom("noconnection")),
            }
            assert await remote.receive(timeout=10) == (EXIT, me.pid, Atom("noconnection"))
            assert a.nodes() == []


async def test_stopping_a_node_exits_its_processes_with_shutdown(
    cookie: str, node_name: Callable[[str], str]
) -> None:
    async with Node(node_name("a"), cookie=cookie) as a:
        async with Node(node_name("b"), cookie=cookie) as b:
            remote = b.process()
            me = a.process(trap_exit=True)
            me.link(remote.pid)
            assert await a.ping(b.name)
        assert await me.receive(timeout=10) == (EXIT, remote.pid, Atom("shutdown"))
        me.close()


async def test_a_name_already_registered_in_epmd_is_refused(
    cookie: str, node_name: Callable[[str], str]
) -> None:
    name = node_name("dup")
    async with Node(name, cookie=cookie):
        with pytest.raises(EpmdError):
            async with Node(name, cookie=cookie):
                pass


def test_sync_facade_runs_a_node_in_a_background_thread(cookie: str, node_name: Callable[[str], str]) -> None:
    with SyncNode(node_name("s"), cookie=cookie) as s, Node.start_sync(node_name("t"), cookie=cookie) as t:
        t.expose("m", "neg", lambda x: -x)
        assert s.ping(t.name) is True
        assert s.rpc(t.name, "m", "neg", [4]) == -4
        box = t.process(name="box")
        s.send((Atom("box"), t.name), Atom("hello"))
        assert box.receive(timeout=10) == Atom("hello")


async def test_node_exit_stops_all_process_tasks(cookie: str, node_name: Callable[[str], str]) -> None:
    async def forever(proc: object) -> None:
        await asyncio.Event().wait()

    async with Node(node_name("a"), cookie=cookie) as a:
        p = a.spawn(forever)
    assert p.task is not None and p.task.done()
    assert p.exit_reason == Atom("shutdown")


async def test_sending_an_unencodable_message_raises_and_keeps_the_connection(
    cookie: str, node_name: Callable[[str], str]
) -> None:
    from erl_interop import EncodeError

    async with Node(node_name("a"), cookie=cookie) as a, Node(node_name("b"), cookie=cookie) as b:
        inbox = b.process(name="inbox")
        assert await a.ping(b.name)
        with pytest.raises(EncodeError):
            a.send((Atom("inbox"), b.name), float("nan"))
        a.send((Atom("inbox"), b.name), 1.5)
        assert await inbox.receive(timeout=10) == 1.5


async def test_monitor_node_and_monitor_nodes_report_connections(
    cookie: str, node_name: Callable[[str], str]
) -> None:
    nodeup, nodedown = Atom("nodeup"), Atom("nodedown")
    async with Node(node_name("a"), cookie=cookie) as a, Node(node_name("b"), cookie=cookie) as b:
        watcher = a.process()
        a.monitor_nodes(watcher.pid)
        watcher.monitor_node(b.name)  # connects on demand
        assert await watcher.receive(timeout=10) == (nodeup, b.name)
        assert a.disconnect(b.name)
        got = [await watcher.receive(timeout=10), await watcher.receive(timeout=10)]
        assert got == [(nodedown, b.name), (nodedown, b.name)]
        missing = Atom(node_name("nobody") + "@" + b.name.name.split("@")[1])
        watcher.monitor_node(missing)
        assert await watcher.receive(timeout=10) == (nodedown, missing)


async def test_node_start_and_stop_without_a_with_block(cookie: str, node_name: Callable[[str], str]) -> None:
    a = await Node.start(node_name("a"), cookie=cookie)
    async with a:  # scoping an already started node is allowed
        assert await a.call(Atom("net_kernel"), (Atom("is_auth"), a.name)) == Atom("yes")
    await a.stop()  # idempotent
    with pytest.raises(RuntimeError):
        a.process()
