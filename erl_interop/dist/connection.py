"""Sans-IO distribution connection: handshake, framing, dist header, ticks, message codec.

Owns: one connection's protocol state from the first handshake byte to the close, as a
bytes-in/events-out object (h11/aioquic shape): ``receive_data(data, now) -> list[DistEvent]``,
``send(control, payload)``, ``data_to_send() -> bytes``, ``get_timer()`` /
``handle_timer(now)``. Also ``LocalNode``, the description of our own node.
Must not: do I/O, read clocks (``now`` is passed in), draw randomness (the challenge is passed
in), or know about processes (messages go out as ``MessageReceived`` events).

Theory of operation:

* Handshake (``handshake.py``) with 2-byte framing, under a ``net_setuptime`` deadline that is
  re-armed by every packet received (the peer runs the same timer, reference §2.1).
* Then 4-byte framing. Messages use the dist header ``131,68`` (0 atom cache refs when we
  send) when FRAGMENTS or DIST_HDR_ATOM_CACHE is negotiated, otherwise pass-through
  ``'p',131,Control,131,Payload``; erts kills a connection that uses the wrong one (§3.2).
  Sent messages larger than ``fragment_size`` are split into ``131,69``/``131,70`` fragments
  when FRAGMENTS is negotiated, and every received header form is decoded.
* Ticks follow net_kernel/dist_util (§3.1): every ``net_ticktime / net_tickintensity`` a check
  runs. It writes a tick (empty packet) if nothing was written since the previous check (or
  nothing was read, on a hidden connection), and closes the connection with
  ``net_tick_timeout`` after ``net_tickintensity`` consecutive checks without reading anything.
* Any malformed packet, term or control message closes this connection (Erlang does the
  same, §4); nothing here can affect another connection.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final, TypeAlias

from erl_interop.dist.control import (
    ControlMessage,
    carries_payload,
    control_from_term,
    control_to_term,
    op_carries_payload,
)
from erl_interop.dist.errors import DistProtocolError
from erl_interop.dist.flags import DEFAULT_HIDDEN, DEFAULT_VISIBLE, REQUIRED, DistFlags
from erl_interop.dist.fragments import (
    DEFAULT_FRAGMENT_SIZE,
    DEFAULT_MAX_PENDING_BYTES,
    VERSION_MAGIC,
    FragmentAssembler,
    fragment_packets,
)
from erl_interop.dist.framing import DEFAULT_MAX_PACKET, PacketBuffer, Tick, frame
from erl_interop.dist.handshake import (
    Established,
    Handshake,
    HandshakeFailed,
    HandshakeState,
    PeerAlive,
    PeerNamed,
    PeerState,
    Role,
    check_node_name,
)
from erl_interop.errors import CodecError, ConnectionLost
from erl_interop.term import Atom, Term, decode, encode

__all__ = [
    "ConnectionClosed",
    "ConnectionState",
    "DistConnection",
    "DistEvent",
    "Established",
    "HandshakeFailed",
    "LocalNode",
    "MessageReceived",
    "PeerAlive",
    "PeerNamed",
    "PeerState",
    "Role",
]

_PASS_THROUGH: Final = 112  # 'p'
_TICK_FRAME: Final = b"\x00\x00\x00\x00"
_HEADER_0_REFS: Final = bytes((VERSION_MAGIC, 68, 0))
_U32: Final = struct.Struct(">I")


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalNode:
    """Who we are on the distribution: everything a connection needs to know about our node.

    Attributes:
        name: full node name ``alive@host``; it must be byte-identical to what peers use.
        creation: our creation from EPMD's ALIVE2_X_RESP (never 0).
        cookie: the distribution cookie (see ``erl_interop.dist.cookie.resolve_cookie``).
        hidden: hidden node (no PUBLISHED flag); the default, see reference §5.
        long_names: ``-name`` style (host with dots or an IP) instead of ``-sname``.
        flags: advertised flags; None means ``DEFAULT_HIDDEN`` / ``DEFAULT_VISIBLE``.
        required_flags: peers lacking any of these are refused.
        net_ticktime: seconds; a silent peer is dropped after about this long.
        net_tickintensity: checks per ``net_ticktime`` (OTP default 4).
        net_setuptime: handshake step timeout in seconds (OTP default 7).
        fragment_size: payload bytes per outgoing fragment.
        max_packet: largest packet accepted from a peer.
        max_pending_fragment_bytes: bound on incomplete fragmented messages per connection.
    """

    name: str
    creation: int
    cookie: str
    hidden: bool = True
    long_names: bool = False
    flags: int | None = None
    required_flags: int = REQUIRED
    net_ticktime: float = 60.0
    net_tickintensity: int = 4
    net_setuptime: float = 7.0
    fragment_size: int = DEFAULT_FRAGMENT_SIZE
    max_packet: int = DEFAULT_MAX_PACKET
    max_pending_fragment_bytes: int = DEFAULT_MAX_PENDING_BYTES

    def __post_init__(self) -> None:
        check_node_name(self.name, long_names=self.long_names)
        if not 0 < self.creation <= 0xFFFFFFFF:
            raise ValueError(f"creation must be a non-zero 32-bit value, got {self.creation}")
        if self.net_ticktime <= 0 or self.net_tickintensity < 1 or self.net_setuptime <= 0:
            raise ValueError("net_ticktime, net_tickintensity and net_setuptime must be positive")

    @property
    def advertised_flags(self) -> DistFlags:
        """The flags we send in the handshake."""
        if self.flags is not None:
            flags = DistFlags(self.flags)
            return flags & ~DistFlags.PUBLISHED if self.hidden else flags | DistFlags.PUBLISHED
        return DEFAULT_HIDDEN if self.hidden else DEFAULT_VISIBLE

    @property
    def host(self) -> str:
        """The host part of ``name``."""
        return self.name.partition("@")[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived:
    """A control message (and its payload, or None for ops without one) arrived."""

    control: ControlMessage
    payload: Term | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    """An established connection ended.

    ``reason`` is short and stable (``net_tick_timeout``, ``connection_closed``,
    ``protocol_error`` or what ``close()`` was given); ``detail`` is for the log.
    """

    reason: str
    detail: str = ""


DistEvent: TypeAlias = (
    PeerNamed | PeerAlive | Established | HandshakeFailed | MessageReceived | ConnectionClosed
)


class ConnectionState(Enum):
    """Coarse life cycle; the handshake has its own finer states."""

    HANDSHAKE = auto()
    CONNECTED = auto()
    CLOSED = auto()


class DistConnection:
    """One distribution connection, either role, with no I/O.

    Args:
        local: our node.
        role: initiator (we connected) or acceptor.
        challenge: our random 32-bit handshake challenge.
        now: the current time in seconds on the caller's clock (arms the handshake deadline).
        peer_node: initiator only: the node we are connecting to.
    """

    def __init__(
        self, local: LocalNode, *, role: Role, challenge: int, now: float, peer_node: str | None = None
    ) -> None:
        self.local = local
        self.role = role
        self.state = ConnectionState.HANDSHAKE
        self.handshake = Handshake(
            role=role,
            name=local.name,
            flags=local.advertised_flags,
            creation=local.creation,
            cookie=local.cookie,
            challenge=challenge,
            required_flags=local.required_flags,
            peer_node=peer_node,
        )
        self.peer_node: str | None = peer_node
        self.peer_creation = 0
        self.flags = DistFlags(0)
        self._frames = PacketBuffer(2, max_packet=local.max_packet)
        self._assembler = FragmentAssembler(max_pending_bytes=local.max_pending_fragment_bytes)
        self._out = bytearray()
        self._deadline: float | None = now + local.net_setuptime
        self._header_mode = False
        self._fragments = False
        self._next_sequence = 1
        self._tick_interval = local.net_ticktime / local.net_tickintensity
        self._written = False  # something other than a tick was written since the last check
        self._read = False  # anything (ticks included) was read since the last check
        self._missed_checks = 0
        self._hidden_connection = True

    # -- handshake -----------------------------------------------------------------------------

    def start(self) -> None:
        """Initiator: queue our send_name (no-op for an acceptor)."""
        self.handshake.start()
        self._flush_handshake()

    def answer_peer(self, peer_state: PeerState, now: float) -> list[DistEvent]:
        """Acceptor: answer ``PeerNamed`` with the node's view of that peer (tie-break, §2.2).

        Args:
            peer_state: whether the node has no, a pending or an established connection to it.
            now: the current time.

        Returns:
            Events (``HandshakeFailed`` when we answered ``nok``).
        """
        events: list[DistEvent] = list(self.handshake.answer_peer(peer_state))
        self._flush_handshake()
        self._deadline = now + self.local.net_setuptime
        return self._after_handshake_events(events, now)

    def answer_alive(self, proceed: bool, now: float) -> list[DistEvent]:
        """Initiator: answer ``PeerAlive`` (True: we have no connection to the peer, go on).

        Returns:
            Events (``HandshakeFailed`` with status ``alive`` when ``proceed`` is False).
        """
        events: list[DistEvent] = list(self.handshake.answer_alive(proceed))
        self._flush_handshake()
        self._deadline = now + self.local.net_setuptime
        return self._after_handshake_events(events, now)

    # -- I/O boundary --------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> list[DistEvent]:
        """Process bytes read from the socket.

        Args:
            data: any number of bytes (partial or several packets).
            now: the current time.

        Returns:
            Events in arrival order. After ``HandshakeFailed`` or ``ConnectionClosed`` the
            connection is closed and ignores further input.
        """
        if self.state is ConnectionState.CLOSED or not data:
            return []
        self._frames.feed(data)
        self._read = True
        events: list[DistEvent] = []
        while not self._is_closed():
            if self.state is ConnectionState.HANDSHAKE and not self.handshake.expecting():
                break  # acceptor awaiting answer_peer(); keep bytes buffered
            try:
                packet = self._frames.next_packet()
            except DistProtocolError as exc:
                events.append(self._close("protocol_error", str(exc)))
                break
            if packet is None:
                break
            if self.state is ConnectionState.HANDSHAKE:
                assert isinstance(packet, bytes)
                self._deadline = now + self.local.net_setuptime
                hs_events = self.handshake.receive_packet(packet)
                self._flush_handshake()
                events.extend(self._after_handshake_events(list(hs_events), now))
            elif isinstance(packet, Tick):
                continue
            else:
                event = self._receive_message(packet)
                if event is not None:
                    events.append(event)
        return events

    def eof(self) -> list[DistEvent]:
        """The peer closed the socket (or it broke).

        Returns:
            ``HandshakeFailed`` during the handshake, else ``ConnectionClosed("connection_closed")``;
            nothing if already closed.
        """
        match self.state:
            case ConnectionState.CLOSED:
                return []
            case ConnectionState.HANDSHAKE:
                self.state = ConnectionState.CLOSED
                hs_state = self.handshake.state
                if hs_state is HandshakeState.RECV_CHALLENGE_ACK:
                    reason = (
                        f"Connection to node {self.peer_node} rejected: the peer closed the connection "
                        "after our challenge reply (invalid cookie?)"
                    )
                else:
                    who = self.peer_node or "peer"
                    reason = f"connection closed by {who} during the handshake ({hs_state.name})"
                return [HandshakeFailed(reason=reason)]
            case ConnectionState.CONNECTED:
                return [self._close("connection_closed", f"{self.peer_node} closed the connection")]

    def close(self, reason: str, detail: str = "") -> list[DistEvent]:
        """Close locally (the transport then closes the socket after flushing ``data_to_send``).

        Returns:
            ``[ConnectionClosed(reason)]`` for an established connection, ``[HandshakeFailed]``
            during the handshake, ``[]`` if already closed.
        """
        match self.state:
            case ConnectionState.CLOSED:
                return []
            case ConnectionState.HANDSHAKE:
                self.state = ConnectionState.CLOSED
                return [HandshakeFailed(reason=detail or reason)]
            case ConnectionState.CONNECTED:
                return [self._close(reason, detail)]

    def data_to_send(self) -> bytes:
        """Take everything queued for the socket since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- sending -------------------------------------------------------------------------------

    def send(self, control: ControlMessage, payload: Term | None = None) -> None:
        """Encode one message and queue it (fragmented if large and FRAGMENTS is negotiated).

        Args:
            control: the control message.
            payload: the message / reason / argument list; ignored for ops that carry none.

        Raises:
            ConnectionLost: the connection is not established (or already closed).
            EncodeError: the control or payload has no external-format encoding; nothing is queued.
        """
        if self.state is not ConnectionState.CONNECTED:
            raise ConnectionLost(f"connection to {self.peer_node} is {self.state.name.lower()}")
        with_payload = carries_payload(control)
        if self._header_mode:
            body = bytearray()
            encode(control_to_term(control), body)
            if with_payload:
                encode(payload, body)
            if self._fragments and len(body) > self.local.fragment_size:
                sequence = self._next_sequence
                self._next_sequence = sequence % 0xFFFFFFFFFFFFFFFF + 1
                for packet in fragment_packets(bytes(body), sequence, self.local.fragment_size):
                    self._out += _U32.pack(len(packet))
                    self._out += packet
            else:
                self._out += _U32.pack(len(body) + 3)
                self._out += _HEADER_0_REFS
                self._out += body
        else:
            wire = bytearray((_PASS_THROUGH, VERSION_MAGIC))
            encode(control_to_term(control), wire)
            if with_payload:
                wire.append(VERSION_MAGIC)
                encode(payload, wire)
            self._out += _U32.pack(len(wire))
            self._out += wire
        self._written = True

    # -- timers --------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next run (caller's clock), or None when closed."""
        if self.state is ConnectionState.CLOSED:
            return None
        return self._deadline

    def handle_timer(self, now: float) -> list[DistEvent]:
        """Run the handshake deadline or the tick check, if due.

        Args:
            now: the current time.

        Returns:
            ``HandshakeFailed`` (handshake timeout), ``ConnectionClosed("net_tick_timeout")``, or
            nothing (possibly after queuing a tick).
        """
        if self._deadline is None or now < self._deadline or self.state is ConnectionState.CLOSED:
            return []
        if self.state is ConnectionState.HANDSHAKE:
            self.state = ConnectionState.CLOSED
            return [
                HandshakeFailed(
                    reason=f"handshake with {self.peer_node or 'peer'} timed out after "
                    f"{self.local.net_setuptime:g} s in state {self.handshake.state.name}"
                )
            ]
        # net_kernel tick check (§3.1).
        if self._read:
            self._missed_checks = 0
        else:
            self._missed_checks += 1
            if self._missed_checks >= self.local.net_tickintensity:
                return [
                    self._close(
                        "net_tick_timeout",
                        f"Node {self.peer_node} not responding: nothing read for "
                        f"{self._missed_checks} tick checks ({self.local.net_ticktime:g} s net_ticktime)",
                    )
                ]
        if not self._written or (self._hidden_connection and not self._read):
            self._out += _TICK_FRAME
        self._read = False
        self._written = False
        next_check = self._deadline + self._tick_interval
        self._deadline = next_check if next_check > now else now + self._tick_interval
        return []

    # -- internals -----------------------------------------------------------------------------

    def _flush_handshake(self) -> None:
        for payload in self.handshake.packets_to_send():
            self._out += frame(payload, 2)

    def _after_handshake_events(self, events: list[DistEvent], now: float) -> list[DistEvent]:
        for event in events:
            match event:
                case PeerNamed(node=node):
                    self.peer_node = node
                case Established():
                    self._on_established(event, now)
                case HandshakeFailed():
                    self.state = ConnectionState.CLOSED
                case _:
                    pass
        return events

    def _on_established(self, event: Established, now: float) -> None:
        self.state = ConnectionState.CONNECTED
        self.peer_node = event.peer_node
        self.peer_creation = event.peer_creation
        self.flags = event.flags
        self._frames.set_header_size(4)
        self._header_mode = bool(event.flags & (DistFlags.FRAGMENTS | DistFlags.DIST_HDR_ATOM_CACHE))
        self._fragments = bool(event.flags & DistFlags.FRAGMENTS)
        self._hidden_connection = not event.flags & DistFlags.PUBLISHED
        self._deadline = now + self._tick_interval
        self._read = True  # the handshake itself counts as traffic for the first check
        self._written = False

    def _receive_message(self, packet: bytes) -> DistEvent | None:
        try:
            return self._decode_message(packet)
        except (DistProtocolError, CodecError) as exc:
            return self._close("protocol_error", f"bad message from {self.peer_node}: {exc}")

    def _decode_message(self, packet: bytes) -> MessageReceived | None:
        if self._header_mode:
            if packet[:3] == _HEADER_0_REFS:
                # A normal header without atom cache refs (what peers send us unless we advertise
                # DIST_HDR_ATOM_CACHE): nothing for the assembler to do.
                return self._decode_terms(packet, 3, None)
            complete = self._assembler.receive(packet)
            if complete is None:
                return None
            data, offset, atom_cache = complete.data, complete.offset, complete.atom_cache
        else:
            if len(packet) < 2 or packet[0] != _PASS_THROUGH or packet[1] != VERSION_MAGIC:
                raise DistProtocolError(f"expected a pass-through packet ('p',131), got {packet[:8]!r}")
            data, offset, atom_cache = packet, 2, None
        return self._decode_terms(data, offset, atom_cache)

    def _decode_terms(self, data: bytes, offset: int, atom_cache: list[Atom] | None) -> MessageReceived:
        control_term, offset = decode(data, offset, atom_cache=atom_cache)
        control = control_from_term(control_term)
        payload: Term | None = None
        # control_from_term checked it is a tuple starting with an int.
        assert isinstance(control_term, tuple) and isinstance(control_term[0], int)
        if op_carries_payload(control_term[0]):
            if not self._header_mode:
                if offset >= len(data) or data[offset] != VERSION_MAGIC:
                    raise DistProtocolError("pass-through payload does not start with 131")
                offset += 1
            payload, offset = decode(data, offset, atom_cache=atom_cache)
        if offset != len(data):
            raise DistProtocolError(
                f"{len(data) - offset} trailing bytes after a {type(control).__name__} message"
            )
        return MessageReceived(control=control, payload=payload)

    def _is_closed(self) -> bool:
        # A method, not an inline comparison: handlers called in a loop change self.state.
        return self.state is ConnectionState.CLOSED

    def _close(self, reason: str, detail: str) -> ConnectionClosed:
        self.state = ConnectionState.CLOSED
        self._assembler.clear()
        self._deadline = None
        return ConnectionClosed(reason=reason, detail=detail)
