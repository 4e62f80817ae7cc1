"""Processes of one node: sends, links, monitors, exit signals, aliases, names (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from erl_interop.node import Node, ProcessExit
from erl_interop.node.process import Process
from erl_interop.term import Atom, Pid

EXIT = Atom("EXIT")
DOWN = Atom("DOWN")
PROCESS = Atom("process")
NORMAL = Atom("normal")


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with Node("local", distributed=False) as n:
        yield n


async def wait_dead(proc: Process) -> None:
    """Wait until ``proc`` has exited (its task, if any, finished)."""
    if proc.task is not None:
        await asyncio.wait([proc.task], timeout=10)
    assert not proc.alive


async def idle(proc: Process) -> None:
    await proc.receive()


async def test_messages_reach_a_pid_a_registered_name_and_an_alias(node: Node) -> None:
    async with node.process(name="inbox") as me:
        alias = me.alias()
        node.send(me.pid, 1)
        node.send(Atom("inbox"), 2)
        node.send((Atom("inbox"), node.name), 3)
        node.send(alias, 4)
        assert [await me.receive(timeout=5) for _ in range(4)] == [1, 2, 3, 4]
        me.unalias(alias)
        node.send(alias, 5)
        node.send(me.pid, 6)
        assert await me.receive(timeout=5) == 6


async def test_messages_to_free_names_and_dead_pids_are_dropped(node: Node) -> None:
    dead = node.process()
    dead.close()
    async with node.process() as me:
        me.send(Atom("nobody"), 1)
        me.send(dead.pid, 2)
        me.send(me.pid, 3)
        assert await me.receive(timeout=5) == 3
        assert me.mailbox.peek_all() == []


async def test_abnormal_exit_kills_linked_processes_that_do_not_trap_exits(node: Node) -> None:
    a = node.spawn(idle)
    b = node.spawn(idle, link=a.pid)
    async with node.process(trap_exit=True) as watcher:
        watcher.link(b.pid)
        a.close(Atom("boom"))
        await wait_dead(b)
        assert b.exit_reason == Atom("boom")
        assert await watcher.receive(timeout=5) == (EXIT, b.pid, Atom("boom"))


async def test_normal_exit_does_not_kill_a_linked_process(node: Node) -> None:
    a = node.spawn(idle)
    b = node.spawn(idle, link=a.pid)
    a.close(NORMAL)
    await wait_dead(a)
    await asyncio.sleep(0)
    assert b.alive
    assert b.links() == []


async def test_trapping_process_receives_exit_messages_even_for_normal(node: Node) -> None:
    async with node.process(trap_exit=True) as me:
        other = node.spawn(idle)
        me.link(other.pid)
        other.close(NORMAL)
        assert await me.receive(timeout=5) == (EXIT, other.pid, NORMAL)


async def test_exit_kill_is_untrappable_and_links_see_killed(node: Node) -> None:
    victim = node.spawn(idle, trap_exit=True)
    async with node.process(trap_exit=True) as me:
        me.link(victim.pid)
        me.exit(victim.pid, Atom("kill"))
        await wait_dead(victim)
        assert victim.exit_reason == Atom("killed")
        assert await me.receive(timeout=5) == (EXIT, victim.pid, Atom("killed"))


async def test_exit_signal_normal_is_ignored_unless_trapping(node: Node) -> None:
    plain = node.spawn(idle)
    trapping = node.process(trap_exit=True)
    async with node.process() as me:
        me.exit(plain.pid, NORMAL)
        me.exit(trapping.pid, NORMAL)
        await asyncio.sleep(0)
        assert plain.alive
        assert trapping.mailbox.peek_all() == [(EXIT, me.pid, NORMAL)]
        me.exit(plain.pid, Atom("stop"))
        await wait_dead(plain)
        assert plain.exit_reason == Atom("stop")


async def test_unlinked_process_no_longer_receives_exit_signals(node: Node) -> None:
    other = node.spawn(idle)
    async with node.process(trap_exit=True) as me:
        me.link(other.pid)
        me.unlink(other.pid)
        assert me.links() == []
        assert other.links() == []
        other.close(Atom("boom"))
        await wait_dead(other)
        with pytest.raises(TimeoutError):
            await me.receive(timeout=0.05)


async def test_monitor_by_pid_delivers_down_with_the_pid(node: Node) -> None:
    other = node.spawn(idle)
    async with node.process() as me:
        ref = me.monitor(other.pid)
        other.close(Atom("bye"))
        assert await me.receive(timeout=5) == (DOWN, ref, PROCESS, other.pid, Atom("bye"))


async def test_monitor_by_name_delivers_down_with_name_and_node(node: Node) -> None:
    other = node.spawn(idle, name="named")
    async with node.process() as me:
        ref = me.monitor(Atom("named"))
        other.close(Atom("bye"))
        assert await me.receive(timeout=5) == (DOWN, ref, PROCESS, (Atom("named"), node.name), Atom("bye"))
    assert node.whereis("named") is None


async def test_monitor_and_link_to_missing_processes_answer_noproc(node: Node) -> None:
    dead = node.process()
    dead.close()
    async with node.process(trap_exit=True) as me:
        ref1 = me.monitor(dead.pid)
        ref2 = me.monitor(Atom("nosuch"))
        me.link(dead.pid)
        got = [await me.receive(timeout=5) for _ in range(3)]
        assert got == [
            (DOWN, ref1, PROCESS, dead.pid, Atom("noproc")),
            (DOWN, ref2, PROCESS, (Atom("nosuch"), node.name), Atom("noproc")),
            (EXIT, dead.pid, Atom("noproc")),
        ]


async def test_demonitor_with_flush_removes_a_queued_down(node: Node) -> None:
    other = node.spawn(idle)
    async with node.process() as me:
        ref = me.monitor(other.pid)
        other.close(Atom("bye"))
        await wait_dead(other)
        me.demonitor(ref, flush=True)
        assert me.mailbox.peek_all() == []


async def test_crashing_body_exits_with_python_reason(node: Node) -> None:
    async def crash(proc: Process) -> None:
        raise ValueError("bad value")

    async with node.process() as me:
        proc = node.spawn(crash)
        ref = me.monitor(proc.pid)
        assert await me.receive(timeout=5) == (
            DOWN,
            ref,
            PROCESS,
            proc.pid,
            (Atom("python"), b"ValueError", b"bad value"),
        )


async def test_body_raising_process_exit_uses_that_reason(node: Node) -> None:
    async def leave(proc: Process) -> None:
        raise ProcessExit((Atom("shutdown"), 3))

    proc = node.spawn(leave)
    await wait_dead(proc)
    assert proc.exit_reason == (Atom("shutdown"), 3)


async def test_receive_in_a_killed_attached_process_raises_process_exit(node: Node) -> None:
    async with node.process() as me:
        victim = node.process()
        waiting = asyncio.create_task(victim.receive())
        await asyncio.sleep(0)
        me.exit(victim.pid, Atom("kill"))
        with pytest.raises(ProcessExit) as info:
            await waiting
        assert info.value.reason == Atom("killed")


async def test_linking_to_an_unreachable_node_gives_noconnection(node: Node) -> None:
    far = Pid(node=Atom("far@nowhere"), id=1, serial=0, creation=1)
    async with node.process(trap_exit=True) as me:
        me.link(far)
        ref = me.monitor((Atom("srv"), Atom("far@nowhere")))
        got = [await me.receive(timeout=5) for _ in range(2)]
        assert got == [
            (EXIT, far, Atom("noconnection")),
            (DOWN, ref, PROCESS, (Atom("srv"), Atom("far@nowhere")), Atom("noconnection")),
        ]


async def test_pids_carry_node_name_and_creation_and_stale_creation_is_dead(node: Node) -> None:
    async with node.process() as me:
        assert (me.pid.node, me.pid.creation) == (node.name, node.creation)
        stale = Pid(node=me.pid.node, id=me.pid.id, serial=me.pid.serial, creation=node.creation + 1)
        node.send(stale, "lost")
        node.send(me.pid, "kept")
        assert await me.receive(timeout=5) == "kept"
        assert me.mailbox.peek_all() == []


async def test_two_nodes_in_one_process_are_independent() -> None:
    async with Node("one", distributed=False) as a, Node("two", distributed=False) as b:
        pa = a.process(name="x")
        pb = b.process(name="x")
        assert pa.pid.node != pb.pid.node
        a.send(Atom("x"), "for a")
        b.send(Atom("x"), "for b")
        assert await pa.receive(timeout=5) == "for a"
        assert await pb.receive(timeout=5) == "for b"


async def test_monitor_node_on_an_unreachable_node_reports_nodedown_at_once(node: Node) -> None:
    async with node.process() as me:
        me.monitor_node("far@nowhere")
        me.monitor_node("far@nowhere")
        assert [await me.receive(timeout=5) for _ in range(2)] == [
            (Atom("nodedown"), Atom("far@nowhere"))
        ] * 2


async def test_a_dead_process_cannot_create_links_monitors_or_aliases(node: Node) -> None:
    gone = node.process()
    gone.close(Atom("bye"))
    other = node.process()
    for action in (lambda: gone.link(other.pid), lambda: gone.monitor(other.pid), gone.alias):
        with pytest.raises(ProcessExit) as info:
            action()
        assert info.value.reason == Atom("bye")
    assert other.links() == []


async def test_a_handler_process_gets_each_message_synchronously_in_order_and_has_nothing_to_receive(
    node: Node,
) -> None:
    seen: list[object] = []
    proc = node.process(name="handled", handler=seen.append)
    node.send(proc.pid, 1)
    node.send(Atom("handled"), 2)
    node.send(proc.make_ref(), 3)  # not its alias: dropped
    alias = proc.alias()
    node.send(alias, 4)
    assert seen == [1, 2, 4]
    assert proc.mailbox.peek_all() == []
    with pytest.raises(RuntimeError, match="handler"):
        await proc.receive(timeout=0)
    proc.close()
    node.send(proc.pid, 5)
    assert seen == [1, 2, 4]


async def test_a_handler_process_is_a_process_for_links_and_monitors(node: Node) -> None:
    seen: list[object] = []
    proc = node.process(handler=seen.append)
    async with node.process() as watcher:
        ref = watcher.monitor(proc.pid)
        proc.close(Atom("bye"))
        assert await watcher.receive(timeout=5) == (DOWN, ref, PROCESS, proc.pid, Atom("bye"))
