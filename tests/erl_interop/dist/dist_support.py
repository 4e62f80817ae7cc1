"""Test support for the dist interop tests: a minimal test-side node and real BEAM peer kinds.

``PyNode`` is *not* the real node layer (``erl_interop.node`` is): it only listens, registers
with EPMD, answers ``net_kernel``'s ``{is_auth, Node}`` call with ``yes`` (so ``net_adm:ping``
from Erlang gets ``pong``, reference §5), and records everything else it receives.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from erl_interop.dist import control as c
from erl_interop.dist.connection import ConnectionState, DistConnection, LocalNode, Role
from erl_interop.dist.transport import DistChannel, Listener, connect, listen
from erl_interop.epmd.client import EpmdRegistration, register
from erl_interop.term import Atom, ImproperList, Pid, Reference, Term
from erl_interop.testing import ErlPeer, otp28_erl

SHORT_HOST = socket.gethostname().split(".")[0]


@dataclass(frozen=True)
class Received:
    channel: DistChannel
    control: c.ControlMessage
    payload: Term | None


class PyNode:
    """Listener + EPMD registration + a recording handler (see module docstring)."""

    def __init__(
        self, alive: str, cookie: str, *, long_names: bool = False, hidden: bool = True, **local: Any
    ) -> None:
        host = "127.0.0.1" if long_names else SHORT_HOST
        self.name = f"{alive}@{host}"
        self.alive = alive
        self.cookie = cookie
        self.long_names = long_names
        self.hidden = hidden
        self.local_options = local
        self.inbox: asyncio.Queue[Received] = asyncio.Queue()
        self.closed: asyncio.Queue[tuple[DistChannel, str]] = asyncio.Queue()
        self.channels: list[DistChannel] = []
        self._listener: Listener | None = None
        self._registration: EpmdRegistration | None = None
        self._local: LocalNode | None = None

    @property
    def local(self) -> LocalNode:
        assert self._local is not None
        return self._local

    @property
    def port(self) -> int:
        assert self._listener is not None
        return self._listener.port

    @property
    def pid(self) -> Pid:
        """The pid our test handler answers from."""
        return Pid(Atom(self.name), 1, 0, self.local.creation)

    async def __aenter__(self) -> PyNode:
        self._listener = await listen("0.0.0.0", 0)
        self._registration = await register(self.alive, self._listener.port)
        self._local = LocalNode(
            name=self.name,
            creation=self._registration.creation,
            cookie=self.cookie,
            long_names=self.long_names,
            hidden=self.hidden,
            **self.local_options,
        )
        await self._listener.start(self._local, self._accept)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for channel in self.channels:
            channel.close("shutdown")
        if self._listener is not None:
            self._listener.close()
        if self._registration is not None:
            await self._registration.close()

    def _accept(self, channel: DistChannel) -> PyNode:
        self.channels.append(channel)
        return self

    async def connect(self, peer: str) -> DistChannel:
        channel = await connect(self.local, peer, self)
        self.channels.append(channel)
        return channel

    # Handler protocol
    def on_message(self, channel: DistChannel, control: c.ControlMessage, payload: Term | None) -> None:
        if (
            isinstance(control, c.RegSend)
            and control.to_name == Atom("net_kernel")
            and self._is_auth(channel, payload)
        ):
            return
        self.inbox.put_nowait(Received(channel, control, payload))

    def on_closed(self, channel: DistChannel, reason: str) -> None:
        self.closed.put_nowait((channel, reason))

    def _is_auth(self, channel: DistChannel, payload: Term | None) -> bool:
        """Answer ``{'$gen_call', {Pid, Tag}, {is_auth, Node}}`` with ``{Tag, yes}`` (reference §6.1)."""
        match payload:
            case (Atom(name="$gen_call"), (Pid() as caller, tag), (Atom(name="is_auth"), _)):
                reply = (tag, Atom("yes"))
                if isinstance(tag, ImproperList) and tag.items == (Atom("alias"),):
                    assert isinstance(tag.tail, Reference)
                    channel.send(c.AliasSend(from_pid=self.pid, alias=tag.tail), reply)
                else:
                    channel.send(c.SendSender(from_pid=self.pid, to_pid=caller), reply)
                return True
            case _:
                return False

    async def receive(self, match: Callable[[Received], bool], limit: float = 20.0) -> Received:
        """The next received message that satisfies ``match`` (others are dropped)."""
        async with asyncio.timeout(limit):
            while True:
                item = await self.inbox.get()
                if match(item):
                    return item


async def peer_eval(peer: ErlPeer, expr: str, limit: float = 30.0) -> str:
    """Evaluate on the peer without blocking our loop (the peer may need us to answer)."""
    return await asyncio.to_thread(peer.eval, expr, limit)


async def wait_for_output(peer: ErlPeer, needle: str, limit: float = 15.0) -> str:
    """The first line of the peer's console output containing ``needle``."""
    async with asyncio.timeout(limit):
        while True:
            for line in list(peer.output):
                if needle in line:
                    return line
            await asyncio.sleep(0.05)


async def raw_handshake(
    local: LocalNode, peer_node: str, port: int
) -> tuple[DistConnection, asyncio.StreamReader, asyncio.StreamWriter]:
    """Handshake as initiator over a plain socket with the sans-IO connection, and hand the socket
    back: lets a test write bytes no well-behaved channel would (garbage) or go silent."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = DistConnection(
        local, role=Role.INITIATOR, challenge=secrets.randbits(32), now=loop.time(), peer_node=peer_node
    )
    conn.start()
    writer.write(conn.data_to_send())
    async with asyncio.timeout(10):
        while conn.state is ConnectionState.HANDSHAKE:
            data = await reader.read(65536)
            events = conn.receive_data(data, loop.time()) if data else conn.eof()
            writer.write(conn.data_to_send())
            assert all(type(e).__name__ in ("Established",) for e in events), events
    assert conn.state is ConnectionState.CONNECTED
    return conn, reader, writer


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


@dataclass(frozen=True)
class PeerKind:
    label: str
    long_names: bool
    otp28: bool = False
    elixir: bool = False

    def make(self, cookie: str, *extra: str, name: str | None = None) -> ErlPeer:
        return ErlPeer(
            name or unique("e"),
            cookie,
            long_names=self.long_names,
            erl=otp28_erl() if self.otp28 else None,
            elixir=self.elixir,
            extra_args=list(extra),
        )


PEER_KINDS = [
    PeerKind("otp25-short", long_names=False),
    PeerKind("otp25-long", long_names=True),
    PeerKind("otp28-short", long_names=False, otp28=True),
    PeerKind("otp28-long", long_names=True, otp28=True),
    PeerKind("elixir-short", long_names=False, elixir=True),
    PeerKind("elixir-long", long_names=True, elixir=True),
]


@dataclass
class RunningPeer:
    kind: PeerKind
    peer: ErlPeer
    cookie: str
