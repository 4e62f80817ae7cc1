"""Asyncio driver for distribution connections: connect, serve, and the ``DistChannel``.

Owns: the sockets. It opens (``connect``: EPMD PORT_PLEASE2 lookup + handshake as initiator)
and accepts (``serve``) TCP connections, feeds their bytes into a sans-IO ``DistConnection``,
writes whatever it queues, arms its one timer on the loop clock, and hands decoded messages
to the node's ``Handler``. Handshake failures and broken connections are logged here.
Must not: interpret control messages, keep a map of connections (the node owns it), or let
one connection's failure touch the listener or any other connection.

Writes are non-blocking: ``DistChannel.send`` encodes and hands the bytes to the asyncio
transport, which flushes them in the background in order. There is one writer per connection,
so signal order between two processes is kept (reference §4.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Final, Protocol, assert_never

from erl_interop.dist.connection import (
    ConnectionClosed,
    DistConnection,
    DistEvent,
    Established,
    HandshakeFailed,
    LocalNode,
    MessageReceived,
    PeerAlive,
    PeerNamed,
    PeerState,
    Role,
)
from erl_interop.dist.control import ControlMessage
from erl_interop.dist.flags import DistFlags
from erl_interop.epmd.client import port_please
from erl_interop.errors import ConnectionLost, HandshakeError
from erl_interop.term import Atom, Term

__all__ = [
    "Arbiter",
    "DistChannel",
    "Handler",
    "Listener",
    "LocalNode",
    "PeerState",
    "SimultaneousConnect",
    "connect",
    "listen",
    "serve",
]

log = logging.getLogger(__name__)

_READ_SIZE: Final = 256 * 1024


class SimultaneousConnect(HandshakeError):
    """A simultaneous connect was resolved against this attempt (reference §2.2).

    Initiator: the peer answered ``nok`` (it keeps its own attempt), or it answered ``alive``
    and we already had a connection to it. The node should use / wait for the other connection.
    Acceptor side (logged only): we answered ``nok``, or the peer answered ``false`` to ``alive``.
    """


class Handler(Protocol):
    """What the node supplies for each channel. Both callbacks run on the loop, never concurrently."""

    def on_message(self, channel: DistChannel, control: ControlMessage, payload: Term | None) -> None:
        """A message arrived (``payload`` is None for ops that carry none), in packet order."""

    def on_closed(self, channel: DistChannel, reason: str) -> None:
        """The channel closed (called exactly once, after the last ``on_message``)."""


class Arbiter(Protocol):
    """The node's answer to "do we already have a connection to X?" for simultaneous connects."""

    def peer_state(self, peer_node: str) -> PeerState:
        """``NONE``, ``PENDING`` (our own outgoing attempt runs) or ``UP`` (established)."""


class DistChannel:
    """One established distribution connection.

    Created by ``connect`` or ``serve`` only. Attributes: ``peer_node`` (and the same as an
    ``Atom``, ``peer_atom``), ``peer_creation``,
    ``flags`` (negotiated), ``replaces_existing`` (inbound only: the peer confirmed that our
    old connection to it is dead; the node must close that one).
    """

    def __init__(
        self,
        conn: DistConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        established: Established,
        early: list[DistEvent] | None = None,
    ) -> None:
        assert conn.peer_node is not None
        self.local = conn.local
        self.peer_node: str = established.peer_node
        self.peer_atom = Atom(established.peer_node)
        self.peer_creation: int = established.peer_creation
        self.flags: DistFlags = established.flags
        self.replaces_existing: bool = established.replaces_existing
        self._conn = conn
        self._reader = reader
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._handler: Handler | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0  # the deadline _timer was armed for
        self._closed: asyncio.Future[str] = self._loop.create_future()
        self._task: asyncio.Task[None] | None = None  # the reader task, for connect()ed channels
        self._flush_scheduled = False
        # Events that came in the read that completed the handshake; handled first by _run.
        self._early: list[DistEvent] = early or []

    def __repr__(self) -> str:
        return f"<DistChannel {self.local.name} <-> {self.peer_node}{' closed' if self.closed else ''}>"

    @property
    def closed(self) -> bool:
        """Whether the channel has closed (for any reason)."""
        return self._closed.done()

    def send(self, control: ControlMessage, payload: Term | None = None) -> None:
        """Encode one message and queue it for sending; never blocks.

        Args:
            control: the control message.
            payload: the message, exit reason or spawn arguments; ignored for ops without one.

        Raises:
            ConnectionLost: the channel is closed.
            EncodeError: the payload cannot be encoded (nothing is sent; the channel stays up).
        """
        if self.closed:
            raise ConnectionLost(f"connection to {self.peer_node} is closed")
        self._conn.send(control, payload)
        if not self._flush_scheduled:
            # Coalesce the messages sent in one loop iteration into one socket write.
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def close(self, reason: str = "closed") -> None:
        """Close the channel (idempotent); ``on_closed(reason)`` follows synchronously."""
        self._process(self._conn.close(reason, f"closed locally: {reason}"))

    async def wait_closed(self) -> str:
        """Wait until the channel is closed; returns the reason."""
        return await asyncio.shield(self._closed)

    # -- driver --------------------------------------------------------------------------------

    async def _run(self, handler: Handler) -> None:
        """Read until the connection ends. Runs in the task that owns this socket."""
        self._handler = handler
        try:
            early, self._early = self._early, []
            if early:
                self._process(early)
            self._arm_timer()
            while not self.closed:
                try:
                    data = await self._reader.read(_READ_SIZE)
                except (OSError, asyncio.IncompleteReadError):
                    data = b""
                if self._closed.done():
                    break
                if not data:
                    self._process(self._conn.eof())
                    break
                self._process(self._conn.receive_data(data, self._loop.time()))
        except asyncio.CancelledError:
            self.close("cancelled")
            raise
        except Exception as exc:
            # A bug here must still end only this connection, with a reason.
            log.exception("%s: connection to %s failed", self.local.name, self.peer_node)
            self._process(self._conn.close("internal_error", repr(exc)))
            self._finish("internal_error", repr(exc))

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._conn.data_to_send()
        if out and not self._writer.is_closing():
            self._writer.write(out)

    def _arm_timer(self) -> None:
        when = self._conn.get_timer()
        if self._timer is not None:
            if when == self._timer_when and not self.closed:
                return  # already armed for that deadline (the usual case: it moves every 15 s)
            self._timer.cancel()
            self._timer = None
        if when is not None and not self.closed:
            self._timer = self._loop.call_at(when, self._on_timer)
            self._timer_when = when

    def _on_timer(self) -> None:
        self._timer = None
        self._process(self._conn.handle_timer(self._loop.time()))

    def _process(self, events: list[DistEvent]) -> None:
        self._flush()
        for event in events:
            match event:
                case MessageReceived(control=control, payload=payload):
                    if self._handler is not None and not self.closed:
                        try:
                            self._handler.on_message(self, control, payload)
                        except Exception:
                            log.exception(
                                "%s: handler failed on %r from %s", self.local.name, control, self.peer_node
                            )
                case ConnectionClosed(reason=reason, detail=detail):
                    self._finish(reason, detail)
                case HandshakeFailed(reason=reason):
                    self._finish("closed", reason)
                case PeerNamed() | PeerAlive() | Established():
                    pass
                case _:
                    assert_never(event)
        if not self.closed:
            self._arm_timer()

    def _finish(self, reason: str, detail: str) -> None:
        if self.closed:
            return
        if reason in ("protocol_error", "net_tick_timeout"):
            log.warning(
                "%s: connection to %s closed (%s): %s", self.local.name, self.peer_node, reason, detail
            )
        else:
            log.info("%s: connection to %s closed (%s) %s", self.local.name, self.peer_node, reason, detail)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush()
        self._writer.close()
        self._closed.set_result(reason)
        if self._handler is not None:
            try:
                self._handler.on_closed(self, reason)
            except Exception:
                log.exception("%s: handler failed in on_closed for %s", self.local.name, self.peer_node)


async def _handshake(
    conn: DistConnection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    arbiter: Arbiter | None,
) -> tuple[Established, list[DistEvent]]:
    """Drive ``conn`` through the handshake; raises HandshakeError (socket left to the caller).

    Returns:
        ``Established`` and the events decoded after it from the same read (the channel's first
        messages, or its close), which the channel processes before reading on.
    """
    loop = asyncio.get_running_loop()

    def flush() -> None:
        out = conn.data_to_send()
        if out:
            writer.write(out)

    def settle(events: list[DistEvent]) -> tuple[Established, list[DistEvent]] | None:
        # Returns Established and the events that followed it: the peer's first messages (or its
        # close) can arrive in the same read as the last handshake packet, and belong to the channel.
        for i, event in enumerate(events):
            match event:
                case PeerNamed(node=node):
                    state = arbiter.peer_state(node) if arbiter is not None else PeerState.NONE
                    more = conn.answer_peer(state, loop.time())
                    flush()
                    result = settle(more)
                    if result is not None:
                        return result[0], result[1] + events[i + 1 :]
                case PeerAlive(node=node):
                    proceed = arbiter is None or arbiter.peer_state(node) is not PeerState.UP
                    more = conn.answer_alive(proceed, loop.time())
                    flush()
                    result = settle(more)
                    if result is not None:
                        return result[0], result[1] + events[i + 1 :]
                case Established():
                    return event, events[i + 1 :]
                case HandshakeFailed(reason=reason, status=status):
                    flush()
                    if status in ("nok", "alive"):
                        raise SimultaneousConnect(reason)
                    raise HandshakeError(reason)
                case MessageReceived() | ConnectionClosed():
                    pass  # only ever after Established (the connection decodes nothing before)
                case _:
                    assert_never(event)
        return None

    flush()
    while True:
        deadline = conn.get_timer()
        assert deadline is not None
        try:
            async with asyncio.timeout_at(deadline):
                data = await reader.read(_READ_SIZE)
        except TimeoutError:
            settle(conn.handle_timer(loop.time()))
            continue
        except OSError:
            data = b""
        events = conn.eof() if not data else conn.receive_data(data, loop.time())
        flush()
        result = settle(events)
        if result is not None:
            return result


async def connect(
    local: LocalNode,
    peer_node: str,
    handler: Handler,
    *,
    arbiter: Arbiter | None = None,
    port: int | None = None,
    port_epmd: int | None = None,
) -> DistChannel:
    """Connect to ``peer_node`` as the initiator and complete the v6 handshake.

    Args:
        local: our node.
        peer_node: the full name to reach, exactly as the peer calls itself (``alive@host``).
        handler: receives the channel's messages and its close.
        arbiter: the node's connection map; consulted when the peer answers ``alive`` (it still
            has an older connection from us): if we have an established connection to it too,
            we answer ``false`` and raise ``SimultaneousConnect``; otherwise ``true``. None
            always answers ``true``.
        port: the peer's distribution port; looked up with EPMD PORT_PLEASE2 when None.
        port_epmd: the epmd port on the peer's host (default ``$ERL_EPMD_PORT`` or 4369).

    Returns:
        The established channel; it is already reading.

    Raises:
        EpmdError: the peer is not registered / epmd is unreachable.
        SimultaneousConnect: the peer keeps its own simultaneous attempt (``nok``), or both
            sides already have a connection (``alive`` answered ``false``): use that one.
        HandshakeError: refused (``not_allowed``, wrong cookie, missing flags, timeout, name mismatch).
    """
    alive, _, host = peer_node.partition("@")
    if not alive or not host:
        raise HandshakeError(f"invalid node name {peer_node!r}")
    if port is None:
        port = await port_please(host, alive, port_epmd=port_epmd, time_limit=local.net_setuptime)
    try:
        async with asyncio.timeout(local.net_setuptime):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        raise HandshakeError(f"cannot connect to {peer_node} at {host}:{port}: {exc!r}") from exc
    loop = asyncio.get_running_loop()
    conn = DistConnection(
        local, role=Role.INITIATOR, challenge=secrets.randbits(32), now=loop.time(), peer_node=peer_node
    )
    conn.start()
    try:
        established, early = await _handshake(conn, reader, writer, arbiter)
    except HandshakeError as exc:
        level = logging.INFO if isinstance(exc, SimultaneousConnect) else logging.WARNING
        log.log(level, "%s: handshake with %s failed: %s", local.name, peer_node, exc)
        writer.close()
        raise
    except BaseException:
        writer.close()
        raise
    channel = DistChannel(conn, reader, writer, established, early)
    log.info("%s: connected to %s (flags %#x)", local.name, peer_node, int(channel.flags))
    task = loop.create_task(channel._run(handler), name=f"dist {local.name}->{peer_node}")
    channel._task = task
    return channel


class Listener:
    """Accepts inbound distribution connections.

    Two ways to get one: ``serve(local, accept)`` binds and accepts at once; or
    ``listen(host, port)`` binds without accepting, so the node can register the port with
    EPMD first (which hands out the creation that ``LocalNode`` needs) and then call
    ``start(local, accept)``. Peers only find us through EPMD, so nothing connects earlier.
    """

    def __init__(self, server: asyncio.Server) -> None:
        self._server = server
        self.local: LocalNode | None = None
        self._accept: Callable[[DistChannel], Handler] | None = None
        self._arbiter: Arbiter | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound TCP port (register it with EPMD)."""
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(
        self, local: LocalNode, accept: Callable[[DistChannel], Handler], *, arbiter: Arbiter | None = None
    ) -> None:
        """Start accepting (see ``serve`` for the arguments)."""
        self.local = local
        self._accept = accept
        self._arbiter = arbiter
        await self._server.start_serving()

    def close(self) -> None:
        """Stop accepting new connections; accepted channels (the node owns them) stay up."""
        self._server.close()

    async def wait_closed(self) -> None:
        """Wait until the listening socket is closed."""
        await self._server.wait_closed()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self.local is not None and self._accept is not None
        self._tasks.add(task)
        try:
            await _accept_one(self.local, reader, writer, self._accept, self._arbiter)
        except Exception:
            # Never let one connection's failure reach the server (reference §4).
            log.exception("%s: inbound connection failed", self.local.name)
            writer.close()
        finally:
            self._tasks.discard(task)


async def listen(host: str = "0.0.0.0", port: int = 0) -> Listener:
    """Bind a distribution listener without accepting yet; call ``Listener.start`` next.

    Args:
        host: address to bind.
        port: port to bind (0 = any free port; see ``Listener.port``).

    Returns:
        The bound listener.

    Raises:
        OSError: the address is taken.
    """
    holder: list[Listener] = []

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Python 3.11's stream callback calls task.exception() on this task, which raises if
        # the task was cancelled (loop shutdown): end quietly instead; the channel is closed.
        with contextlib.suppress(asyncio.CancelledError):
            await holder[0]._on_client(reader, writer)

    server = await asyncio.start_server(on_client, host, port, start_serving=False)
    holder.append(Listener(server))
    return holder[0]


async def serve(
    local: LocalNode,
    accept: Callable[[DistChannel], Handler],
    *,
    arbiter: Arbiter | None = None,
    host: str = "0.0.0.0",
    port: int = 0,
) -> Listener:
    """Listen for inbound distribution connections (acceptor side of the handshake).

    Args:
        local: our node.
        accept: called once per established inbound channel, before anything is read from it;
            returns the channel's handler. If it raises, that channel is closed.
        arbiter: the node's view of existing connections, for simultaneous connects (§2.2);
            None answers ``ok`` to everyone.
        host: address to bind.
        port: port to bind (0 = any free port; see ``Listener.port``).

    Returns:
        The running listener.

    Raises:
        OSError: the address is taken.
    """
    listener = await listen(host, port)
    await listener.start(local, accept, arbiter=arbiter)
    return listener


async def _accept_one(
    local: LocalNode,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    accept: Callable[[DistChannel], Handler],
    arbiter: Arbiter | None,
) -> None:
    loop = asyncio.get_running_loop()
    conn = DistConnection(local, role=Role.ACCEPTOR, challenge=secrets.randbits(32), now=loop.time())
    peer = writer.get_extra_info("peername")
    try:
        established, early = await _handshake(conn, reader, writer, arbiter)
    except HandshakeError as exc:
        # e.g. "Connection attempt from node x@h rejected. Invalid challenge reply (cookie mismatch)."
        level = logging.INFO if isinstance(exc, SimultaneousConnect) else logging.WARNING
        log.log(level, "%s: inbound handshake from %s failed: %s", local.name, peer, exc)
        writer.close()
        return
    channel = DistChannel(conn, reader, writer, established, early)
    log.info("%s: accepted connection from %s (flags %#x)", local.name, channel.peer_node, int(channel.flags))
    try:
        handler = accept(channel)
    except Exception:
        log.exception("%s: accept callback failed for %s", local.name, channel.peer_node)
        channel.close("accept_failed")
        return
    await channel._run(handler)
