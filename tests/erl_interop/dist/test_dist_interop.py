"""The dist layer against real peers: OTP 25 and OTP 28 ``erl`` (short and long names) and Elixir.

Each test runs once per peer kind (module-scoped peers); the Python side is the small
test-side ``PyNode`` from conftest.py.
"""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest
from dist_support import PyNode, RunningPeer, peer_eval, raw_handshake, unique, wait_for_output

from erl_interop.dist import control as c
from erl_interop.dist.connection import LocalNode
from erl_interop.dist.flags import DEFAULT_HIDDEN, REQUIRED, DistFlags
from erl_interop.dist.transport import DistChannel
from erl_interop.errors import HandshakeError
from erl_interop.term import Atom, Pid, Term, binary_to_term, encode

pytestmark = pytest.mark.erlang


def ping(rp: RunningPeer, node: str) -> str:
    return f'Node.ping(:"{node}")' if rp.kind.elixir else f"net_adm:ping('{node}')."


def pong(rp: RunningPeer) -> str:
    return ":pong" if rp.kind.elixir else "pong"


def pang(rp: RunningPeer) -> str:
    return ":pang" if rp.kind.elixir else "pang"


async def test_real_peer_pings_us_as_acceptor_and_a_send_to_a_name_arrives_as_reg_send(
    rp: RunningPeer,
) -> None:
    async with PyNode(unique("py"), rp.cookie, long_names=rp.kind.long_names) as node:
        assert await peer_eval(rp.peer, ping(rp, node.name)) == pong(rp)
        if rp.kind.elixir:
            await peer_eval(rp.peer, f'send({{:some_name, :"{node.name}"}}, {{:hello, [1, 2], "bin"}})')
        else:
            await peer_eval(rp.peer, f"{{some_name, '{node.name}'}} ! {{hello, [1, 2], <<\"bin\">>}}.")
        got = await node.receive(lambda r: isinstance(r.control, c.RegSend))
        assert isinstance(got.control, c.RegSend)
        assert got.control.to_name == Atom("some_name")
        assert got.control.from_pid.node == Atom(rp.peer.node)
        assert got.payload == (Atom("hello"), [1, 2], b"bin")
        assert got.channel.peer_node == rp.peer.node
        [channel] = node.channels
        await _close_and_wait(channel)


async def test_we_connect_as_initiator_and_messages_flow_both_ways_on_that_connection(
    rp: RunningPeer,
) -> None:
    box = unique("box")
    async with PyNode(unique("py"), rp.cookie, long_names=rp.kind.long_names) as node:
        channel = await node.connect(rp.peer.node)
        assert channel.peer_node == rp.peer.node
        await register_driver(rp, box)
        message = (Atom("hi"), [1, 2, 3], b"\x00\xff", 2**70, Pid(Atom(node.name), 7, 0, node.local.creation))
        channel.send(c.RegSend(from_pid=node.pid, to_name=Atom(box)), message)
        receive = (
            "receive do m -> m after 10000 -> :timeout end"
            if rp.kind.elixir
            else "receive M -> M after 10000 -> timeout end."
        )
        result = await asyncio.to_thread(rp.peer.eval_result, receive)
        assert binary_to_term(result.etf) == message
        # The peer sends back over the same connection (it is the one in its connection table).
        if rp.kind.elixir:
            await peer_eval(rp.peer, f'send({{:pybox, :"{node.name}"}}, {{self(), :ping}})')
        else:
            await peer_eval(rp.peer, f"{{pybox, '{node.name}'}} ! {{self(), ping}}.")
        got = await node.receive(lambda r: isinstance(r.control, c.RegSend))
        assert got.channel is channel
        assert got.payload is not None and got.payload[1] == Atom("ping")
        await _close_and_wait(channel)


async def test_a_wrong_cookie_on_our_side_is_refused_by_the_peer_which_logs_it(rp: RunningPeer) -> None:
    async with PyNode(unique("py"), "not-" + rp.cookie, long_names=rp.kind.long_names) as node:
        with pytest.raises(HandshakeError, match=r"after our challenge reply \(invalid cookie\?\)"):
            await node.connect(rp.peer.node)
        line = await wait_for_output(rp.peer, "Invalid challenge reply")
        # The peer prints our name as an atom: quoted when it has dots, with a colon in Elixir.
        quoted = f'"{node.name}"' if rp.kind.elixir else f"'{node.name}'"
        shown = quoted if rp.kind.long_names else node.name
        shown = f":{shown}" if rp.kind.elixir else shown
        assert f"** Connection attempt from node {shown} rejected. Invalid challenge reply. **" in line


async def test_a_peer_with_a_wrong_cookie_is_refused_by_us_with_a_clear_log_line(
    rp: RunningPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="erl_interop.dist.transport")
    async with PyNode(unique("py"), "not-" + rp.cookie, long_names=rp.kind.long_names) as node:
        assert await peer_eval(rp.peer, ping(rp, node.name)) == pang(rp)
        messages = [r.getMessage() for r in caplog.records]
        assert any(
            f"Connection attempt from node {rp.peer.node} rejected. "
            "Invalid challenge reply (cookie mismatch)." in m
            for m in messages
        ), messages
        assert node.channels == []


async def test_garbage_from_one_of_our_connections_makes_the_peer_drop_only_that_one(rp: RunningPeer) -> None:
    async with (
        PyNode(unique("py"), rp.cookie, long_names=rp.kind.long_names) as bad,
        PyNode(unique("py"), rp.cookie, long_names=rp.kind.long_names) as good,
    ):
        good_channel = await good.connect(rp.peer.node)
        _, reader, writer = await raw_handshake(bad.local, rp.peer.node, await _peer_port(rp))
        writer.write(struct.pack(">I", 4) + b"\xde\xad\xbe\xef")
        async with asyncio.timeout(10):
            while await reader.read(65536):
                pass  # the peer closes this connection
        writer.close()
        await wait_for_output(rp.peer, "** Got message from incompatible erlang on channel")
        assert await peer_eval(rp.peer, ping(rp, good.name)) == pong(rp)
        assert not good_channel.closed
        await _close_and_wait(good_channel)


async def test_a_malformed_term_from_us_makes_the_peer_drop_that_connection_and_log_it(
    rp: RunningPeer,
) -> None:
    async with PyNode(unique("py"), rp.cookie, long_names=rp.kind.long_names) as node:
        conn, reader, writer = await raw_handshake(node.local, rp.peer.node, await _peer_port(rp))
        body = bytearray(b"\x83\x44\x00")
        # REG_SEND to a process that exists and reads its mailbox (rex), with a NaN payload: erts
        # decodes it when the receiver looks at the message and kills the connection.
        encode((6, node.pid, Atom(""), Atom("rex")), body)
        body += b"\x46\x7f\xf8\x00\x00\x00\x00\x00\x00"  # NEW_FLOAT_EXT NaN
        writer.write(struct.pack(">I", len(body)) + body)
        async with asyncio.timeout(10):
            while await reader.read(65536):
                pass
        writer.close()
        await wait_for_output(rp.peer, "corrupted external term")
        del conn


async def test_garbage_on_one_inbound_connection_closes_it_while_the_peers_connection_keeps_working(
    rp: RunningPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="erl_interop.dist.transport")
    async with PyNode(unique("py"), rp.cookie, long_names=rp.kind.long_names) as node:
        assert await peer_eval(rp.peer, ping(rp, node.name)) == pong(rp)
        intruder = LocalNode(
            name=f"{unique('raw')}@{node.local.host}",
            creation=5,
            cookie=rp.cookie,
            long_names=rp.kind.long_names,
        )
        _, reader, writer = await raw_handshake(intruder, node.name, node.port)
        writer.write(struct.pack(">I", 7) + b"\x83\x44\x00\x68\x01\x61\x25")  # unknown control op 37
        channel, reason = await asyncio.wait_for(node.closed.get(), 10)
        assert (channel.peer_node, reason) == (intruder.name, "protocol_error")
        assert await reader.read() == b""
        writer.close()
        assert any("unknown control op 37" in r.getMessage() for r in caplog.records)
        # The listener and the real peer's connection are unaffected.
        assert await peer_eval(rp.peer, ping(rp, node.name)) == pong(rp)
        if rp.kind.elixir:
            await peer_eval(rp.peer, f'send({{:later, :"{node.name}"}}, :still_up)')
        else:
            await peer_eval(rp.peer, f"{{later, '{node.name}'}} ! still_up.")
        got = await node.receive(lambda r: isinstance(r.control, c.RegSend))
        assert got.payload == Atom("still_up")
        assert got.channel.peer_node == rp.peer.node


async def register_driver(rp: RunningPeer, name: str) -> None:
    """Register the peer's driver process as ``name`` (dropping the name an earlier test gave it)."""
    if rp.kind.elixir:
        expr = (
            "case Process.info(self(), :registered_name) do {:registered_name, old} when is_atom(old) -> "
            f"Process.unregister(old); _ -> :ok end; Process.register(self(), :{name})"
        )
    else:
        expr = (
            "case process_info(self(), registered_name) of {registered_name, Old} -> unregister(Old); "
            f"_ -> ok end, register({name}, self())."
        )
    assert await peer_eval(rp.peer, expr) == "true"


async def _peer_port(rp: RunningPeer) -> int:
    from erl_interop.epmd.client import port_please

    alive, _, host = rp.peer.node.partition("@")
    return await port_please(host, alive)


async def _close_and_wait(channel: DistChannel) -> None:
    channel.close("test_done")
    assert await asyncio.wait_for(channel.wait_closed(), 5) == "test_done"


@pytest.fixture
def rp(any_peer: RunningPeer) -> RunningPeer:
    return any_peer


async def test_big_messages_are_fragmented_both_ways_and_reassembled(rp: RunningPeer) -> None:
    box = unique("big")
    big = bytes(range(256)) * 800  # 200 KiB: erts sends it as 4 fragments of 64 KiB (reference §3.4)
    async with PyNode(unique("py"), rp.cookie, long_names=rp.kind.long_names) as node:
        channel = await node.connect(rp.peer.node)
        await register_driver(rp, box)
        channel.send(c.RegSend(from_pid=node.pid, to_name=Atom(box)), (Atom("big"), big))
        if rp.kind.elixir:
            expr = (
                f'receive do {{:big, b}} -> send({{:pybig, :"{node.name}"}}, {{:echo, b}}); byte_size(b) end'
            )
        else:
            expr = f"receive {{big, B}} -> {{pybig, '{node.name}'}} ! {{echo, B}}, byte_size(B) end."
        assert await peer_eval(rp.peer, expr) == str(len(big))
        got = await node.receive(lambda r: isinstance(r.control, c.RegSend))
        assert got.payload == (Atom("echo"), big)
        await _close_and_wait(channel)


async def test_atom_cache_refs_from_the_peer_are_decoded_when_we_offer_dist_hdr_atom_cache(
    rp: RunningPeer,
) -> None:
    flags = DEFAULT_HIDDEN | DistFlags.DIST_HDR_ATOM_CACHE
    async with PyNode(unique("py"), rp.cookie, long_names=rp.kind.long_names, flags=flags) as node:
        channel = await node.connect(rp.peer.node)
        assert channel.flags & DistFlags.DIST_HDR_ATOM_CACHE
        for i in range(3):  # later messages refer to atoms cached by earlier headers
            if rp.kind.elixir:
                await peer_eval(rp.peer, f'send({{:cached, :"{node.name}"}}, {{:alpha, :beta, {i}}})')
            else:
                await peer_eval(rp.peer, f"{{cached, '{node.name}'}} ! {{alpha, beta, {i}}}.")
            got = await node.receive(lambda r: isinstance(r.control, c.RegSend))
            assert isinstance(got.control, c.RegSend) and got.control.to_name == Atom("cached")
            assert got.payload == (Atom("alpha"), Atom("beta"), i)
        await _close_and_wait(channel)


async def test_a_visible_python_node_is_listed_in_nodes_and_gets_the_nodeup_traffic(rp: RunningPeer) -> None:
    async with PyNode(unique("py"), rp.cookie, long_names=rp.kind.long_names, hidden=False) as node:
        assert await peer_eval(rp.peer, ping(rp, node.name)) == pong(rp)
        [channel] = node.channels
        assert channel.flags & DistFlags.PUBLISHED
        if rp.kind.elixir:
            listed = await peer_eval(rp.peer, f'Enum.member?(Node.list(), :"{node.name}")')
        else:
            listed = await peer_eval(rp.peer, f"lists:member('{node.name}', nodes()).")
        assert listed == "true"
        # On nodeup of a visible connection it opened, the peer's rex asks for our features and
        # global starts its protocol with a map keyed by tuples (reference §5).
        seen: dict[Atom, Term | None] = {}
        async with asyncio.timeout(20):
            while len(seen) < 2:
                got = await node.receive(lambda r: isinstance(r.control, c.RegSend))
                assert isinstance(got.control, c.RegSend)
                seen[got.control.to_name] = got.payload
        rex = seen[Atom("rex")]
        assert isinstance(rex, tuple) and rex[1] == Atom("features_request")
        init_connect = seen[Atom("global_name_server")]
        assert isinstance(init_connect, tuple) and init_connect[0] == Atom("$gen_cast")
        assert init_connect[1][0] == Atom("init_connect")
        await _close_and_wait(channel)


async def test_the_peer_refuses_us_when_we_lack_one_of_its_mandatory_flags_and_says_which(
    rp: RunningPeer,
) -> None:
    flags = DEFAULT_HIDDEN & ~DistFlags.BIG_CREATION
    async with PyNode(unique("py"), rp.cookie, long_names=rp.kind.long_names, flags=flags) as node:
        with pytest.raises(HandshakeError, match=r"refused \(not_allowed\)"):
            await node.connect(rp.peer.node)
        line = await wait_for_output(rp.peer, "BIG_CREATION")
        assert "rejected since it cannot handle" in line


async def test_we_refuse_a_peer_lacking_one_of_our_required_flags_in_both_roles(
    rp: RunningPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="erl_interop.dist.transport")
    required = REQUIRED | DistFlags.NAME_ME  # no real node sets NAME_ME in a normal handshake
    async with PyNode(
        unique("py"), rp.cookie, long_names=rp.kind.long_names, required_flags=required
    ) as node:
        # Acceptor first: right after an attempt of ours that we aborted, the peer's net_kernel
        # may still hold it as pending for our name and answer a ping with pang without dialling.
        assert await peer_eval(rp.peer, ping(rp, node.name)) == pang(rp)
        assert any(
            f"Connection attempt from node {rp.peer.node} rejected since it cannot handle ['NAME_ME']"
            in r.getMessage()
            for r in caplog.records
        ), [r.getMessage() for r in caplog.records]
        with pytest.raises(HandshakeError, match=r"aborted since it cannot handle \['NAME_ME'\]"):
            await node.connect(rp.peer.node)
        assert node.channels == []
