"""The node's side of distribution: EPMD registration, listener, and one channel per peer.

Owns: the map peer name -> ``DistChannel`` (erl_interop.dist keeps none), connect on demand
with the signals queued meanwhile (sent in order once up, or turned into ``noconnection``
for links/monitors/spawns if the connection fails), the simultaneous-connect arbiter
answer, and the ``noconnection`` fan-out when a channel closes (erlang-distribution.md §4).

Must not: interpret signals (``process.py`` / ``node.py`` do) or encode bytes
(``erl_interop.dist`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from erl_interop.dist.control import RegSend
from erl_interop.dist.cookie import resolve_cookie
from erl_interop.dist.errors import DistProtocolError
from erl_interop.dist.flags import DistFlags
from erl_interop.dist.transport import (
    DistChannel,
    Listener,
    LocalNode,
    PeerState,
    SimultaneousConnect,
    connect,
    listen,
)
from erl_interop.epmd.client import ensure_epmd
from erl_interop.epmd.client import register as epmd_register
from erl_interop.errors import CodecError, ConnectionLost, EncodeError, ErlInteropError
from erl_interop.node import signals as s
from erl_interop.node.wire import signal_from_control, signal_to_control
from erl_interop.term import Atom, Term

if TYPE_CHECKING:
    from erl_interop.dist.control import ControlMessage
    from erl_interop.epmd.client import EpmdRegistration
    from erl_interop.epmd.server import EpmdServer
    from erl_interop.node.node import Node

__all__ = ["Peers"]

log = logging.getLogger(__name__)

# How long we wait for the peer's own inbound connection after losing a simultaneous
# connect (erts dist_util: the other side continues its handshake; setup time 7 s).
_SIMULTANEOUS_WAIT = 7.0


class Peers:
    """Connections of one node, keyed by peer node name. Also the dist ``Handler`` and ``Arbiter``."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._channels: dict[Atom, DistChannel] = {}
        # Signals for peers whose connection is being set up, in emission order.
        self._pending: dict[Atom, list[s.Signal]] = {}
        self._connecting: dict[Atom, asyncio.Task[None]] = {}
        self._inbound_up: dict[Atom, asyncio.Event] = {}
        self._listener: Listener | None = None
        self._epmd: EpmdRegistration | None = None
        self._local: LocalNode | None = None
        self._epmd_server: EpmdServer | None = None

    async def start(self) -> int:
        """Make sure EPMD runs, bind, register, start accepting; return the creation EPMD assigned.

        The creation is part of ``LocalNode`` and comes from EPMD, which needs our port first:
        bind (``listen``), register, then accept. Peers find the port only through EPMD.
        """
        node = self._node
        alive = node.name.name.split("@", 1)[0]
        cookie = resolve_cookie(node.cookie)
        self._epmd_server = await ensure_epmd()
        listener = await listen()
        self._listener = listener
        registration = await epmd_register(alive, listener.port)
        self._epmd = registration
        local = LocalNode(
            name=node.name.name,
            creation=registration.creation,
            cookie=cookie,
            hidden=node.hidden,
            long_names=node.long_names,
            net_ticktime=node.net_ticktime,
        )
        self._local = local
        await listener.start(local, self._accept, arbiter=self)
        return registration.creation

    async def close(self) -> None:
        """Close the listener, every channel and the EPMD registration."""
        for task in list(self._connecting.values()):
            task.cancel()
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(Exception):
                await self._listener.wait_closed()
        channels = list(self._channels.values())
        for channel in channels:
            channel.close("shutdown")
        for channel in channels:
            with contextlib.suppress(Exception):
                await channel.wait_closed()
        if self._epmd is not None:
            with contextlib.suppress(Exception):
                await self._epmd.close()
        if self._epmd_server is not None:
            with contextlib.suppress(Exception):
                await self._epmd_server.close()

    def disconnect(self, peer: Atom) -> bool:
        """Close the channel to ``peer``; ``on_closed`` fans out ``noconnection``."""
        channel = self._channels.get(peer)
        if channel is None or channel.closed:
            return False
        channel.close("disconnect")
        return True

    def connected(self) -> list[Atom]:
        """Peers with an established channel."""
        return [name for name, ch in self._channels.items() if not ch.closed]

    # -- Arbiter ------------------------------------------------------------------------

    def peer_state(self, peer_node: str) -> PeerState:
        """Simultaneous-connect question from the dist layer: our state towards ``peer_node``."""
        atom = Atom(peer_node)
        if atom in self._channels and not self._channels[atom].closed:
            return PeerState.UP
        if atom in self._connecting:
            return PeerState.PENDING
        return PeerState.NONE

    # -- inbound -----------------------------------------------------------------------

    def _accept(self, channel: DistChannel) -> Peers:
        peer = _peer_atom(channel)
        old = self._channels.get(peer)
        if old is not None and old is not channel and not old.closed:
            old.close("replaced")
        self._up(peer, channel)
        event = self._inbound_up.get(peer)
        if event is not None:
            event.set()
        return self

    def _up(self, peer: Atom, channel: DistChannel) -> None:
        self._channels[peer] = channel
        log.info("%s: connection up to %s", self._node.name, peer)
        self._node._node_up(peer, published=bool(channel.flags & DistFlags.PUBLISHED))
        for signal in self._pending.pop(peer, []):
            # Queued while connecting: nobody is left to raise an encoding error to.
            self._write(channel, signal, raise_errors=False)

    # -- Handler -----------------------------------------------------------------------

    def on_message(self, channel: DistChannel, control: ControlMessage, payload: Term | None) -> None:
        """A control message from a peer: turn it into a signal for one of our processes."""
        node = self._node
        if type(control) is RegSend:
            node._receive_named(control.from_pid, control.to_name, payload)
            return
        signal = signal_from_control(control, payload, local=node.name, peer=channel.peer_atom)
        if signal is None:
            return
        if s.destination(signal) != node.name:
            log.debug("%s: dropping %r addressed to another node", node.name, signal)
            return
        node._emit_local(signal)

    def on_closed(self, channel: DistChannel, reason: str) -> None:
        """A channel closed: every link and monitor over it fires ``noconnection``."""
        peer = _peer_atom(channel)
        if self._channels.get(peer) is not channel:
            return
        del self._channels[peer]
        log.info("%s: connection to %s closed: %r", self._node.name, peer, reason)
        self._node._node_down(peer)

    # -- outbound ----------------------------------------------------------------------

    def send(self, signal: s.Signal) -> None:
        """Send a signal to its node, connecting first if needed (signals queue meanwhile)."""
        peer = s.destination(signal)
        channel = self._channels.get(peer)
        if channel is not None and not channel.closed:
            self._write(channel, signal)
            return
        self._pending.setdefault(peer, []).append(signal)
        if peer not in self._connecting:
            self._connecting[peer] = self._node.task_group.create_task(self._connect(peer))

    def _write(self, channel: DistChannel, signal: s.Signal, *, raise_errors: bool = True) -> None:
        """Send one signal. An unencodable message raises (``!`` of a bad term is the caller's
        error) unless ``raise_errors`` is False; other unencodable signals (exit reasons) are
        logged and dropped, since their sender is already gone."""
        wire = signal_to_control(signal, channel.flags)
        if wire is None:
            return
        control, payload = wire
        try:
            channel.send(control, payload)
        except ConnectionLost:
            pass  # on_closed fans out noconnection
        except (EncodeError, CodecError, DistProtocolError):
            if raise_errors and isinstance(signal, s.Message | s.NamedMessage | s.AliasMessage):
                raise
            log.exception("%s: cannot encode %r; dropped", self._node.name, signal)

    def ensure(self, peer: Atom) -> None:
        """Start connecting to ``peer`` in the background unless connected or connecting."""
        channel = self._channels.get(peer)
        if (channel is not None and not channel.closed) or peer in self._connecting:
            return
        self._pending.setdefault(peer, [])
        self._connecting[peer] = self._node.task_group.create_task(self._connect(peer))

    async def connect(self, peer: Atom) -> bool:
        """Connect to ``peer`` now; True once a channel is up."""
        if peer == self._node.name:
            return True
        channel = self._channels.get(peer)
        if channel is not None and not channel.closed:
            return True
        task = self._connecting.get(peer)
        if task is None:
            self._pending.setdefault(peer, [])
            task = self._node.task_group.create_task(self._connect(peer))
            self._connecting[peer] = task
        with contextlib.suppress(Exception):
            await asyncio.shield(task)
        channel = self._channels.get(peer)
        return channel is not None and not channel.closed

    async def _connect(self, peer: Atom) -> None:
        assert self._local is not None
        try:
            try:
                channel = await connect(self._local, peer.name, self)
            except SimultaneousConnect:
                # The peer's own connection wins; it arrives through _accept.
                event = self._inbound_up.setdefault(peer, asyncio.Event())
                async with asyncio.timeout(_SIMULTANEOUS_WAIT):
                    await event.wait()
            else:
                self._up(peer, channel)
        except (ErlInteropError, OSError, TimeoutError) as exc:
            log.info("%s: cannot connect to %s: %r", self._node.name, peer, exc)
        finally:
            self._connecting.pop(peer, None)
            self._inbound_up.pop(peer, None)
            failed = self._pending.pop(peer, [])
            for signal in failed:
                self._node._unreachable(signal)
            channel_up = peer in self._channels and not self._channels[peer].closed
            if not channel_up:
                self._node._connect_failed(peer)


def _peer_atom(channel: DistChannel) -> Atom:
    return channel.peer_atom
