"""Sans-IO v6 distribution handshake for both roles (initiator ``A`` and acceptor ``B``).

Owns: the handshake packets (``N`` send_name / challenge, ``s`` status, ``r`` challenge_reply,
``a`` challenge_ack) as frozen dataclasses with exact byte layouts, the MD5 challenge digest,
node-name validation, the simultaneous-connect tie-break rule, and the handshake state machine
(Enum states plus one transition table).
Must not: do I/O, frame packets (the 2-byte length prefix is ``framing.py``'s), read clocks or
draw random numbers (our challenge is passed in), or decide what a connection is used for.

Theory of operation (erts ``erl_dist_protocol`` "Distribution Handshake", reference §2)::

    A (initiator)                                   B (acceptor)
    SEND_NAME --- N flags,creation,name ------------> RECV_NAME
                                                      -> PeerNamed event; the node answers
                                                         answer_peer(PeerState) from its
                                                         connection map (AWAIT_PEER_STATE)
    RECV_STATUS <-- s ok|ok_simultaneous|nok|... ----
                  (alive: PeerAlive event; the node decides with
                   answer_alive() (AWAIT_ALIVE_DECISION) and A
                   sends s true|false ---------------> RECV_ALIVE_ANSWER)
    RECV_CHALLENGE <-- N flags,chB,creation,name ----
    RECV_CHALLENGE_ACK -- r chA, md5(cookie,chB) ---> RECV_CHALLENGE_REPLY (check digest)
    CONNECTED <-- a md5(cookie,chA) ----------------- CONNECTED

Every packet received in a state not listed in ``_TRANSITIONS`` fails the handshake. Failures
are reported as a ``HandshakeFailed`` event carrying a log line phrased like OTP's own.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final, TypeAlias, assert_never

from erl_interop.dist.flags import DistFlags, missing_flags, negotiate

__all__ = [
    "Challenge",
    "ChallengeAck",
    "ChallengeReply",
    "Established",
    "Handshake",
    "HandshakeEvent",
    "HandshakeFailed",
    "HandshakePacket",
    "HandshakeState",
    "PeerAlive",
    "PeerNamed",
    "PeerState",
    "Role",
    "SendName",
    "Status",
    "check_node_name",
    "gen_digest",
    "parse_packet",
]

_U64_U32: Final = struct.Struct(">QI")
_U64_U32_U32: Final = struct.Struct(">QII")
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")


class Role(Enum):
    """Which end of the TCP connection we are."""

    INITIATOR = auto()
    ACCEPTOR = auto()


class PeerState(Enum):
    """What the node's connection map knows about the peer that just named itself (acceptor side)."""

    NONE = auto()
    PENDING = auto()  # our own outgoing attempt to the same node is in progress
    UP = auto()  # we already have an established connection to it


class HandshakeState(Enum):
    """States of both roles; each role uses its own subset."""

    SEND_NAME = auto()  # initiator: nothing sent yet
    RECV_STATUS = auto()  # initiator
    AWAIT_ALIVE_DECISION = auto()  # initiator: got "alive", waiting for answer_alive() from the node
    RECV_CHALLENGE = auto()  # initiator
    RECV_CHALLENGE_ACK = auto()  # initiator
    RECV_NAME = auto()  # acceptor: waiting for send_name
    AWAIT_PEER_STATE = auto()  # acceptor: waiting for answer_peer() from the node
    RECV_ALIVE_ANSWER = auto()  # acceptor: sent "alive", waiting for s true/false
    RECV_CHALLENGE_REPLY = auto()  # acceptor
    CONNECTED = auto()
    FAILED = auto()


# ---------------------------------------------------------------------------------------------
# Packets (payloads without the 2-byte length prefix)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendName:
    """``['N'][Flags:8][Creation:4][Nlen:2][Name]``: the initiator introduces itself."""

    flags: int
    creation: int
    name: str

    def to_bytes(self) -> bytes:
        """The packet payload."""
        raw = self.name.encode("latin-1")
        return b"N" + _U64_U32.pack(self.flags, self.creation) + _U16.pack(len(raw)) + raw


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """``['s'][text]``: the acceptor's verdict, or the initiator's ``true``/``false`` after ``alive``."""

    status: str

    def to_bytes(self) -> bytes:
        """The packet payload."""
        return b"s" + self.status.encode("latin-1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """``['N'][Flags:8][Challenge:4][Creation:4][Nlen:2][Name]``: the acceptor's challenge."""

    flags: int
    challenge: int
    creation: int
    name: str

    def to_bytes(self) -> bytes:
        """The packet payload."""
        raw = self.name.encode("latin-1")
        return b"N" + _U64_U32_U32.pack(self.flags, self.challenge, self.creation) + _U16.pack(len(raw)) + raw


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeReply:
    """``['r'][Challenge:4][Digest:16]``: the initiator's own challenge and its answer to ours."""

    challenge: int
    digest: bytes

    def to_bytes(self) -> bytes:
        """The packet payload."""
        return b"r" + _U32.pack(self.challenge) + self.digest


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeAck:
    """``['a'][Digest:16]``: the acceptor's answer to the initiator's challenge."""

    digest: bytes

    def to_bytes(self) -> bytes:
        """The packet payload."""
        return b"a" + self.digest


HandshakePacket: TypeAlias = SendName | Status | Challenge | ChallengeReply | ChallengeAck


class _Malformed(Exception):
    """A handshake packet that does not parse (internal; becomes HandshakeFailed)."""


def _name_at(data: bytes, offset: int) -> str:
    if len(data) < offset + 2:
        raise _Malformed("truncated name length")
    (nlen,) = _U16.unpack_from(data, offset)
    if len(data) < offset + 2 + nlen:
        raise _Malformed("truncated name")
    # Trailing bytes after the name are ignored, as the spec demands.
    return data[offset + 2 : offset + 2 + nlen].decode("latin-1")


def parse_packet(data: bytes, expected: type[HandshakePacket]) -> HandshakePacket:
    """Parse one handshake payload as the packet the current state expects.

    The tag byte alone is ambiguous (``N`` is both send_name and challenge), so the caller says
    which packet it expects.

    Args:
        data: one packet payload (without the length prefix).
        expected: the packet class the state machine expects.

    Returns:
        The parsed packet (of class ``expected``).

    Raises:
        ValueError: wrong tag, or the packet is truncated.
    """
    try:
        return _parse(data, expected)
    except (_Malformed, struct.error) as exc:
        raise ValueError(f"malformed {expected.__name__} packet: {exc}") from None


def _parse(data: bytes, expected: type[HandshakePacket]) -> HandshakePacket:
    tag = data[:1]
    if expected is SendName:
        if tag != b"N" or len(data) < 13:
            raise _Malformed(f"expected send_name 'N', got {bytes(data[:16])!r}")
        flags, creation = _U64_U32.unpack_from(data, 1)
        return SendName(flags=flags, creation=creation, name=_name_at(data, 13))
    if expected is Challenge:
        if tag != b"N" or len(data) < 17:
            raise _Malformed(f"expected challenge 'N', got {bytes(data[:16])!r}")
        flags, challenge, creation = _U64_U32_U32.unpack_from(data, 1)
        return Challenge(flags=flags, challenge=challenge, creation=creation, name=_name_at(data, 17))
    if expected is Status:
        if tag != b"s":
            raise _Malformed(f"expected status 's', got {bytes(data[:16])!r}")
        return Status(status=data[1:].decode("latin-1"))
    if expected is ChallengeReply:
        if tag != b"r" or len(data) < 21:
            raise _Malformed(f"expected challenge_reply 'r', got {bytes(data[:16])!r}")
        (challenge,) = _U32.unpack_from(data, 1)
        return ChallengeReply(challenge=challenge, digest=bytes(data[5:21]))
    if expected is ChallengeAck:
        if tag != b"a" or len(data) < 17:
            raise _Malformed(f"expected challenge_ack 'a', got {bytes(data[:16])!r}")
        return ChallengeAck(digest=bytes(data[1:17]))
    raise AssertionError(f"not a handshake packet class: {expected!r}")


def gen_digest(challenge: int, cookie: str) -> bytes:
    """``md5(Cookie ++ integer_to_list(Challenge))`` as ``dist_util:gen_digest/2`` computes it.

    Args:
        challenge: the unsigned 32-bit challenge.
        cookie: the cookie's atom text (latin-1 in practice, as Erlang's md5 over a char list).

    Returns:
        The 16-byte MD5 digest.
    """
    return hashlib.md5(cookie.encode("latin-1") + str(challenge).encode("ascii")).digest()


def check_node_name(name: str, *, long_names: bool | None = None) -> None:
    """Validate ``alive@host`` like OTP's ``net_kernel`` does.

    Args:
        name: a full node name.
        long_names: ``True`` requires a host with dots or an IP address (``-name``), ``False`` a
            host without dots (``-sname``); ``None`` checks only the ``alive@host`` shape
            (what an acceptor checks, §2.7).

    Raises:
        ValueError: the name is not a valid node name for that mode.
    """
    alive, at, host = name.partition("@")
    if not at or not alive or not host or "@" in host:
        raise ValueError(f"node name {name!r} is not of the form alive@host")
    if len(name) > 255:
        raise ValueError(f"node name {name!r} is longer than 255 characters (atom limit)")
    if long_names is True and "." not in host and ":" not in host:
        raise ValueError(f"Hostname {host} is illegal for long names (needs dots or an IP address)")
    if long_names is False and "." in host:
        raise ValueError(f"Hostname {host} is illegal for short names (no dots allowed)")


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerNamed:
    """Acceptor only: the peer introduced itself; the node must call ``Handshake.answer_peer``."""

    node: str
    flags: int
    creation: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Established:
    """The handshake succeeded; switch to 4-byte framing.

    ``replaces_existing`` is True when the acceptor answered ``alive`` and the peer said ``true``:
    the node must tear down its old connection to ``peer_node`` (§2.2).
    """

    peer_node: str
    peer_creation: int
    peer_flags: int
    flags: DistFlags
    replaces_existing: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeFailed:
    """The handshake ended without a connection.

    ``status`` is the status we received (initiator) or sent (acceptor) when the failure was a
    status, e.g. ``"nok"``; ``reason`` is the human-readable log line.
    """

    reason: str
    status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerAlive:
    """Initiator only: the acceptor believes an older connection from us is still up.

    The node must call ``Handshake.answer_alive``: ``True`` when it has no established
    connection to ``node`` (the old one is dead; the acceptor replaces it), ``False`` when it
    does (for instance one that the peer itself opened meanwhile), which aborts this attempt.
    """

    node: str


HandshakeEvent: TypeAlias = PeerNamed | PeerAlive | Established | HandshakeFailed


# The legal (state, packet) pairs of both roles and the state each one leads to on success
# (h11-style single table; a handler may still divert to FAILED on a bad digest or status).
_TRANSITIONS: Final[dict[tuple[HandshakeState, type[HandshakePacket]], HandshakeState]] = {
    (HandshakeState.RECV_STATUS, Status): HandshakeState.RECV_CHALLENGE,
    (HandshakeState.RECV_CHALLENGE, Challenge): HandshakeState.RECV_CHALLENGE_ACK,
    (HandshakeState.RECV_CHALLENGE_ACK, ChallengeAck): HandshakeState.CONNECTED,
    (HandshakeState.RECV_NAME, SendName): HandshakeState.AWAIT_PEER_STATE,
    (HandshakeState.RECV_ALIVE_ANSWER, Status): HandshakeState.RECV_CHALLENGE_REPLY,
    (HandshakeState.RECV_CHALLENGE_REPLY, ChallengeReply): HandshakeState.CONNECTED,
}

# What each receiving state expects; states missing here expect nothing.
_EXPECTS: Final[dict[HandshakeState, type[HandshakePacket]]] = {
    state: packet for (state, packet) in _TRANSITIONS
}


class Handshake:
    """One side of one v6 handshake.

    Feed it packet payloads with ``receive_packet``; collect what to send with
    ``packets_to_send`` (payloads, to be framed with a 2-byte length).

    Args:
        role: initiator or acceptor.
        name: our full node name.
        flags: the flags we advertise.
        creation: our creation (from EPMD).
        cookie: the cookie shared with the peer.
        challenge: our random 32-bit challenge (injected: this module draws no randomness).
        required_flags: flags the peer must support, else we refuse it.
        peer_node: initiator only: the node we meant to reach (the challenge must carry it).
    """

    def __init__(
        self,
        *,
        role: Role,
        name: str,
        flags: int,
        creation: int,
        cookie: str,
        challenge: int,
        required_flags: int,
        peer_node: str | None = None,
    ) -> None:
        if role is Role.INITIATOR and peer_node is None:
            raise ValueError("an initiating handshake needs the peer node name")
        self.role = role
        self.name = name
        self.flags = flags
        self.creation = creation
        self.cookie = cookie
        self.challenge = challenge & 0xFFFFFFFF
        self.required_flags = required_flags
        self.peer_node = peer_node
        self.peer_flags = 0
        self.peer_creation = 0
        self.state = HandshakeState.SEND_NAME if role is Role.INITIATOR else HandshakeState.RECV_NAME
        self._peer_challenge = 0
        self._replaces_existing = False
        self._out: list[bytes] = []

    # -- API -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Initiator: queue our send_name. Does nothing for an acceptor (it waits for one)."""
        if self.role is Role.INITIATOR and self.state is HandshakeState.SEND_NAME:
            self._out.append(SendName(flags=self.flags, creation=self.creation, name=self.name).to_bytes())
            self.state = HandshakeState.RECV_STATUS

    def packets_to_send(self) -> list[bytes]:
        """Take the payloads queued since the last call (each needs a 2-byte length prefix)."""
        out, self._out = self._out, []
        return out

    def expecting(self) -> bool:
        """Whether the state machine is waiting for a packet from the peer."""
        return self.state in _EXPECTS

    def receive_packet(self, data: bytes) -> list[HandshakeEvent]:
        """Advance by one received packet payload.

        Args:
            data: one packet payload (the 2-byte length already stripped).

        Returns:
            The resulting events (empty, ``PeerNamed``, ``Established`` or ``HandshakeFailed``).
        """
        expected = _EXPECTS.get(self.state)
        if expected is None:
            return self._fail(f"unexpected handshake packet in state {self.state.name}: {bytes(data[:16])!r}")
        try:
            packet = parse_packet(data, expected)
        except ValueError as exc:
            return self._fail(str(exc))
        next_state = _TRANSITIONS[(self.state, type(packet))]
        match packet:
            case SendName():
                return self._on_send_name(packet, next_state)
            case Status():
                if self.state is HandshakeState.RECV_STATUS:
                    return self._on_status(packet, next_state)
                return self._on_alive_answer(packet, next_state)
            case Challenge():
                return self._on_challenge(packet, next_state)
            case ChallengeReply():
                return self._on_challenge_reply(packet, next_state)
            case ChallengeAck():
                return self._on_challenge_ack(packet, next_state)
            case _:
                assert_never(packet)

    def answer_peer(self, peer_state: PeerState) -> list[HandshakeEvent]:
        """Acceptor: reply to ``PeerNamed`` with what the node knows about that peer (§2.2).

        ``NONE`` -> ``ok``. ``PENDING`` -> tie-break on names: if our name sorts after the
        peer's we keep our own attempt and answer ``nok``, else ``ok_simultaneous`` (the node
        must then abandon its attempt, which the peer answers with ``nok`` anyway). ``UP`` ->
        ``alive``, and the peer decides with ``true``/``false``.

        Args:
            peer_state: the node's view of the peer.

        Returns:
            Events: empty, or ``HandshakeFailed`` when we answered ``nok``.
        """
        if self.state is not HandshakeState.AWAIT_PEER_STATE:
            raise RuntimeError(f"answer_peer() in state {self.state.name}")
        assert self.peer_node is not None
        match peer_state:
            case PeerState.NONE:
                return self._send_status_and_challenge("ok")
            case PeerState.PENDING:
                if self.name > self.peer_node:
                    self._out.append(Status(status="nok").to_bytes())
                    return self._fail(
                        f"simultaneous connect from {self.peer_node}: keeping our own attempt (nok)",
                        status="nok",
                    )
                return self._send_status_and_challenge("ok_simultaneous")
            case PeerState.UP:
                self._out.append(Status(status="alive").to_bytes())
                self.state = HandshakeState.RECV_ALIVE_ANSWER
                return []
            case _:
                assert_never(peer_state)

    def answer_alive(self, proceed: bool) -> list[HandshakeEvent]:
        """Initiator: reply to ``PeerAlive``; ``True`` sends ``s true``, ``False`` sends ``s false``.

        Args:
            proceed: whether our side has no established connection to the peer.

        Returns:
            Events: empty, or ``HandshakeFailed(status="alive")`` when we answered false.
        """
        if self.state is not HandshakeState.AWAIT_ALIVE_DECISION:
            raise RuntimeError(f"answer_alive() in state {self.state.name}")
        if proceed:
            self._out.append(Status(status="true").to_bytes())
            self.state = HandshakeState.RECV_CHALLENGE
            return []
        self._out.append(Status(status="false").to_bytes())
        return self._fail(
            f"connection to {self.peer_node} not set up: we already have a connection to it (alive, false)",
            status="alive",
        )

    # -- initiator -----------------------------------------------------------------------------

    def _on_status(self, packet: Status, next_state: HandshakeState) -> list[HandshakeEvent]:
        status = packet.status
        if status in ("ok", "ok_simultaneous"):
            self.state = next_state
            return []
        if status == "alive":
            # The peer thinks an older connection from us is still up; only the node knows
            # whether that is so (§2.2).
            self.state = HandshakeState.AWAIT_ALIVE_DECISION
            assert self.peer_node is not None
            return [PeerAlive(node=self.peer_node)]
        if status == "nok":
            return self._fail(
                f"connection to {self.peer_node} not set up: simultaneous connect, "
                "the peer keeps its own attempt (nok)",
                status=status,
            )
        if status == "not_allowed":
            return self._fail(
                f"connection to {self.peer_node} refused (not_allowed): it rejects our flags or name",
                status=status,
            )
        return self._fail(f"connection to {self.peer_node} got unsupported status {status!r}", status=status)

    def _on_challenge(self, packet: Challenge, next_state: HandshakeState) -> list[HandshakeEvent]:
        if packet.name != self.peer_node:
            # OTP checks this with list_to_existing_atom + equality (§2.1 step 3).
            return self._fail(f"connection to {self.peer_node} aborted: the peer calls itself {packet.name}")
        missing = missing_flags(packet.flags, self.required_flags)
        if missing:
            return self._fail(
                f"Connection attempt to node {self.peer_node} aborted since it cannot handle {missing}."
            )
        self.peer_flags = packet.flags
        self.peer_creation = packet.creation
        self._out.append(
            ChallengeReply(
                challenge=self.challenge, digest=gen_digest(packet.challenge, self.cookie)
            ).to_bytes()
        )
        self.state = next_state
        return []

    def _on_challenge_ack(self, packet: ChallengeAck, next_state: HandshakeState) -> list[HandshakeEvent]:
        if not hmac.compare_digest(packet.digest, gen_digest(self.challenge, self.cookie)):
            return self._fail(
                f"Connection to node {self.peer_node} rejected: invalid challenge ack (cookie mismatch)"
            )
        self.state = next_state
        return [self._established()]

    # -- acceptor ------------------------------------------------------------------------------

    def _on_send_name(self, packet: SendName, next_state: HandshakeState) -> list[HandshakeEvent]:
        try:
            check_node_name(packet.name)
        except ValueError as exc:
            self._out.append(Status(status="not_allowed").to_bytes())
            return self._fail(
                f"Connection attempt from node {packet.name!r} rejected: {exc}", status="not_allowed"
            )
        if packet.flags & DistFlags.NAME_ME:
            self._out.append(Status(status="not_allowed").to_bytes())
            return self._fail(
                f"Connection attempt from {packet.name} rejected: "
                "dynamic node names (NAME_ME) are not supported",
                status="not_allowed",
            )
        missing = missing_flags(packet.flags, self.required_flags)
        if missing:
            self._out.append(Status(status="not_allowed").to_bytes())
            return self._fail(
                f"Connection attempt from node {packet.name} rejected since it cannot handle {missing}.",
                status="not_allowed",
            )
        self.peer_node = packet.name
        self.peer_flags = packet.flags
        self.peer_creation = packet.creation
        self.state = next_state
        return [PeerNamed(node=packet.name, flags=packet.flags, creation=packet.creation)]

    def _on_alive_answer(self, packet: Status, next_state: HandshakeState) -> list[HandshakeEvent]:
        if packet.status == "true":
            self._replaces_existing = True
            self._out.append(self._challenge_packet())
            self.state = next_state
            return []
        if packet.status == "false":
            return self._fail(
                f"{self.peer_node} keeps its existing connection (answered false to alive)", status="alive"
            )
        return self._fail(f"{self.peer_node} answered {packet.status!r} to alive")

    def _on_challenge_reply(self, packet: ChallengeReply, next_state: HandshakeState) -> list[HandshakeEvent]:
        if not hmac.compare_digest(packet.digest, gen_digest(self.challenge, self.cookie)):
            # OTP's wording; the socket is closed without a status (§2.1 step 5).
            return self._fail(
                f"Connection attempt from node {self.peer_node} rejected. "
                "Invalid challenge reply (cookie mismatch)."
            )
        self._out.append(ChallengeAck(digest=gen_digest(packet.challenge, self.cookie)).to_bytes())
        self.state = next_state
        return [self._established()]

    def _send_status_and_challenge(self, status: str) -> list[HandshakeEvent]:
        self._out.append(Status(status=status).to_bytes())
        self._out.append(self._challenge_packet())
        self.state = HandshakeState.RECV_CHALLENGE_REPLY
        return []

    def _challenge_packet(self) -> bytes:
        return Challenge(
            flags=self.flags, challenge=self.challenge, creation=self.creation, name=self.name
        ).to_bytes()

    # -- both ----------------------------------------------------------------------------------

    def _established(self) -> Established:
        assert self.peer_node is not None
        return Established(
            peer_node=self.peer_node,
            peer_creation=self.peer_creation,
            peer_flags=self.peer_flags,
            flags=negotiate(self.flags, self.peer_flags),
            replaces_existing=self._replaces_existing,
        )

    def _fail(self, reason: str, status: str | None = None) -> list[HandshakeEvent]:
        self.state = HandshakeState.FAILED
        return [HandshakeFailed(reason=reason, status=status)]
