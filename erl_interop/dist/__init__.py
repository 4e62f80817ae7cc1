"""Erlang distribution connections: handshake, framing, dist header, control messages.

Owns: everything between a TCP socket and decoded ``(control, payload)`` pairs, in both
directions. Must not: implement processes, links, monitors or any node service (that is
``erl_interop.node``), or keep a map of connections (the node owns it).

Interface for the node layer (stable; see ``docs/internals/dist.md``)
---------------------------------------------------------------------

``erl_interop.dist.control``
    One frozen dataclass per control message: ``Link, Send, Exit, Unlink, NodeLink, RegSend,
    GroupLeader, Exit2, MonitorP, DemonitorP, MonitorPExit, SendSender, PayloadExit,
    PayloadExit2, PayloadMonitorPExit, SpawnRequest, SpawnReply, AliasSend, UnlinkId,
    UnlinkIdAck``; ``ControlMessage`` is their union. ``_TT`` ops decode to the plain class with
    ``token`` set (``token=None`` encodes the plain op). ``control_to_term(msg)``,
    ``control_from_term(term)`` (raises ``DistProtocolError`` for unknown ops / bad shapes),
    ``carries_payload(msg)``.

``erl_interop.dist.transport``
    ``LocalNode(name, creation, cookie, hidden=True, long_names=False, net_ticktime=60.0, ...)``
    describes us. ``await connect(local, peer_node, handler, arbiter=None, port=None)`` ->
    ``DistChannel`` (EPMD PORT_PLEASE2 + handshake as initiator; raises ``EpmdError``,
    ``HandshakeError`` or its subclass ``SimultaneousConnect`` when a simultaneous connect was
    resolved in favour of the peer's connection: use / wait for the inbound one instead).
    ``await serve(local, accept, arbiter=None, host=..., port=0)`` -> ``Listener`` (``.port``,
    ``close()``, ``await wait_closed()``), or in two steps ``listener = await listen(host,
    port)``, register ``listener.port`` with EPMD to learn the creation, then ``await
    listener.start(local, accept, arbiter=...)``. ``accept(channel)`` is called once per
    established inbound connection, before any message is read, and returns the ``Handler``
    for it. ``Arbiter.peer_state(node) -> PeerState`` (NONE / PENDING / UP) answers the
    simultaneous-connect questions on both sides (pass the same arbiter to ``connect``); an
    inbound channel with ``channel.replaces_existing`` means the node must close its old
    channel to that peer.

    ``DistChannel``: ``.peer_node``, ``.peer_creation``, ``.flags`` (negotiated ``DistFlags``),
    ``send(control, payload=None)`` (non-blocking; payload is encoded only for ops that carry
    one; raises ``ConnectionLost`` once closed), ``close(reason)``, ``await wait_closed() ->
    reason``, ``.closed``. ``Handler`` protocol: ``on_message(channel, control, payload)`` and
    ``on_closed(channel, reason)``, both plain (non-async) callbacks run on the loop, in
    packet order; ``on_closed`` runs exactly once.

``erl_interop.dist.cookie``
    ``resolve_cookie(explicit=None)``: argument, else ``$ERL_INTEROP_COOKIE``, else
    ``~/.erlang.cookie`` (created like ``erl`` does when missing).
"""

from __future__ import annotations

from erl_interop.dist.errors import DistProtocolError
from erl_interop.dist.flags import DEFAULT_HIDDEN, DEFAULT_VISIBLE, DistFlags
from erl_interop.dist.handshake import PeerState

__all__ = [
    "DEFAULT_HIDDEN",
    "DEFAULT_VISIBLE",
    "DistFlags",
    "DistProtocolError",
    "PeerState",
]
