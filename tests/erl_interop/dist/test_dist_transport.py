"""The asyncio transport between two Python sides over loopback: simultaneous connect, alive, cookie."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest

from erl_interop.dist import control as c
from erl_interop.dist.connection import ConnectionState, DistConnection, LocalNode, PeerNamed, Role
from erl_interop.dist.cookie import COOKIE_ENV, resolve_cookie
from erl_interop.dist.transport import DistChannel, Listener, PeerState, SimultaneousConnect, connect, listen
from erl_interop.errors import ConnectionLost, HandshakeError
from erl_interop.term import Atom, Pid, Term


class Side:
    """A node-like owner of a connection map, answering the arbiter question from it."""

    def __init__(self, name: str, cookie: str) -> None:
        self.local = LocalNode(name=name, creation=secrets.randbelow(1000) + 1, cookie=cookie)
        self.pending: set[str] = set()
        self.up: dict[str, DistChannel] = {}
        self.inbound: asyncio.Queue[DistChannel] = asyncio.Queue()
        self.messages: asyncio.Queue[tuple[c.ControlMessage, Term | None]] = asyncio.Queue()
        self.listener: Listener | None = None

    async def start(self) -> int:
        self.listener = await listen("127.0.0.1", 0)
        await self.listener.start(self.local, self.accept, arbiter=self)
        return self.listener.port

    def peer_state(self, peer_node: str) -> PeerState:
        if peer_node in self.up:
            return PeerState.UP
        return PeerState.PENDING if peer_node in self.pending else PeerState.NONE

    def accept(self, channel: DistChannel) -> Side:
        self.up[channel.peer_node] = channel
        self.inbound.put_nowait(channel)
        return self

    async def connect(self, peer: Side, port: int) -> DistChannel:
        self.pending.add(peer.local.name)
        try:
            channel = await connect(self.local, peer.local.name, self, arbiter=self, port=port)
        finally:
            self.pending.discard(peer.local.name)
        self.up[peer.local.name] = channel
        return channel

    def on_message(self, channel: DistChannel, control: c.ControlMessage, payload: Term | None) -> None:
        self.messages.put_nowait((control, payload))

    def on_closed(self, channel: DistChannel, reason: str) -> None:
        if self.up.get(channel.peer_node) is channel:
            del self.up[channel.peer_node]

    def close(self) -> None:
        for channel in list(self.up.values()):
            channel.close("shutdown")
        if self.listener is not None:
            self.listener.close()


def pair(cookie_a: str = "k", cookie_b: str = "k") -> tuple[Side, Side]:
    tag = secrets.token_hex(3)
    return Side(f"a{tag}@vm", cookie_a), Side(f"b{tag}@vm", cookie_b)


async def test_messages_cross_a_python_to_python_connection_in_order() -> None:
    a, b = pair()
    b_port = await b.start()
    try:
        channel = await a.connect(b, b_port)
        inbound = await asyncio.wait_for(b.inbound.get(), 5)
        assert (channel.peer_node, inbound.peer_node) == (b.local.name, a.local.name)
        to = Pid(Atom(b.local.name), 5, 0, b.local.creation)
        for i in range(100):
            channel.send(c.Send(to_pid=to), i)
        received = [await asyncio.wait_for(b.messages.get(), 5) for _ in range(100)]
        assert received == [(c.Send(to_pid=to), i) for i in range(100)]
        channel.close("done")
        assert await asyncio.wait_for(inbound.wait_closed(), 5) == "connection_closed"
        with pytest.raises(ConnectionLost):
            channel.send(c.Send(to_pid=to), 0)
    finally:
        a.close()
        b.close()


async def test_simultaneous_connect_leaves_exactly_one_connection_the_one_b_opened() -> None:
    a, b = pair()  # a... < b...
    a_port, b_port = await a.start(), await b.start()
    try:
        a_result, b_result = await asyncio.gather(
            a.connect(b, b_port), b.connect(a, a_port), return_exceptions=True
        )
        # Usually b answers nok to a (b sorts later, §2.2); if b's own attempt won the race
        # outright, b answers alive and a, already connected, answers false. Either way a's
        # attempt yields and b's is the one connection.
        assert isinstance(a_result, SimultaneousConnect)
        assert isinstance(b_result, DistChannel) and b_result.peer_node == a.local.name
        inbound = await asyncio.wait_for(a.inbound.get(), 5)
        assert inbound.peer_node == b.local.name
        assert b.inbound.empty()
        assert (list(a.up), list(b.up)) == ([b.local.name], [a.local.name])
    finally:
        a.close()
        b.close()


async def test_a_reconnect_while_the_acceptor_thinks_the_old_connection_is_up_replaces_it() -> None:
    a, b = pair()
    b_port = await b.start()
    try:
        await a.connect(b, b_port)
        old = await asyncio.wait_for(b.inbound.get(), 5)
        a.up.clear()  # a forgot the old connection (as after a crash); b still has it
        await connect(a.local, b.local.name, a, arbiter=a, port=b_port)
        new = await asyncio.wait_for(b.inbound.get(), 5)
        assert (old.replaces_existing, new.replaces_existing) == (False, True)
    finally:
        a.close()
        b.close()


async def test_a_wrong_cookie_fails_the_initiator_and_never_reaches_the_acceptors_accept() -> None:
    a, b = pair(cookie_a="one", cookie_b="two")
    b_port = await b.start()
    try:
        with pytest.raises(HandshakeError, match="invalid cookie"):
            await a.connect(b, b_port)
        assert b.inbound.empty()
    finally:
        a.close()
        b.close()


async def test_a_peer_that_says_nothing_is_dropped_after_net_setuptime() -> None:
    b = Side(f"b{secrets.token_hex(3)}@vm", "k")
    b.local = LocalNode(name=b.local.name, creation=1, cookie="k", net_setuptime=0.3)
    port = await b.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        b.close()


async def test_messages_in_the_same_read_as_the_challenge_ack_reach_the_initiators_handler() -> None:
    # An acceptor (here a sans-IO connection behind a plain socket) may write its first messages
    # together with the challenge ack, as a busy erl does: the initiator must not lose them.
    a, b = pair()
    b_pid = Pid(Atom(b.local.name), 1, 0, b.local.creation)
    a_pid = Pid(Atom(a.local.name), 2, 0, a.local.creation)

    async def acceptor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = DistConnection(b.local, role=Role.ACCEPTOR, challenge=7, now=0.0)
        while conn.state is not ConnectionState.CONNECTED:
            for event in conn.receive_data(await reader.read(4096), 0.0):
                if isinstance(event, PeerNamed):
                    conn.answer_peer(PeerState.NONE, 0.0)
            if conn.state is not ConnectionState.CONNECTED:
                writer.write(conn.data_to_send())
        conn.send(c.SendSender(from_pid=b_pid, to_pid=a_pid), Atom("first"))
        conn.send(c.SendSender(from_pid=b_pid, to_pid=a_pid), Atom("second"))
        writer.write(conn.data_to_send())  # ack + both messages in one write
        await reader.read()  # until the initiator closes
        writer.close()

    server = await asyncio.start_server(acceptor, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        channel = await connect(a.local, b.local.name, a, port=port)
        got = [await asyncio.wait_for(a.messages.get(), 5) for _ in range(2)]
        assert got == [
            (c.SendSender(from_pid=b_pid, to_pid=a_pid), Atom("first")),
            (c.SendSender(from_pid=b_pid, to_pid=a_pid), Atom("second")),
        ]
        channel.close("done")
    finally:
        server.close()


def test_an_explicit_cookie_wins_over_the_environment_and_the_file(tmp_path: Path) -> None:
    (tmp_path / ".erlang.cookie").write_text("FROMFILE")
    (tmp_path / ".erlang.cookie").chmod(0o400)
    assert resolve_cookie("given", env={COOKIE_ENV: "fromenv"}, home=tmp_path) == "given"
    assert resolve_cookie(env={COOKIE_ENV: "fromenv"}, home=tmp_path) == "fromenv"
    assert resolve_cookie(env={}, home=tmp_path) == "FROMFILE"


def test_a_missing_cookie_file_is_created_like_erl_does(tmp_path: Path) -> None:
    cookie = resolve_cookie(env={}, home=tmp_path)
    path = tmp_path / ".erlang.cookie"
    assert path.read_text() == cookie
    assert len(cookie) == 20 and cookie.isupper() and cookie.isalpha()
    assert path.stat().st_mode & 0o777 == 0o400
    assert resolve_cookie(env={}, home=tmp_path) == cookie


def test_a_cookie_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / ".erlang.cookie"
    path.write_text("OPEN")
    path.chmod(0o644)
    with pytest.raises(ValueError, match="must be accessible by owner only"):
        resolve_cookie(env={}, home=tmp_path)
