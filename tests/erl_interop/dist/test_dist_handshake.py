"""The sans-IO v6 handshake: exact packets, and two handshakes wired back to back (h11 style)."""

from __future__ import annotations

import pytest

from erl_interop.dist.flags import DEFAULT_HIDDEN, DEFAULT_VISIBLE, MANDATORY_25, DistFlags, negotiate
from erl_interop.dist.handshake import (
    Challenge,
    ChallengeAck,
    ChallengeReply,
    Established,
    Handshake,
    HandshakeEvent,
    HandshakeFailed,
    HandshakeState,
    PeerAlive,
    PeerNamed,
    PeerState,
    Role,
    SendName,
    Status,
    check_node_name,
    gen_digest,
    parse_packet,
)

A = "a@vm"
B = "b@vm"


def initiator(name: str = A, peer: str = B, cookie: str = "c", flags: int = DEFAULT_HIDDEN) -> Handshake:
    return Handshake(
        role=Role.INITIATOR,
        name=name,
        flags=flags,
        creation=11,
        cookie=cookie,
        challenge=0xA0A0A0A0,
        required_flags=MANDATORY_25,
        peer_node=peer,
    )


def acceptor(name: str = B, cookie: str = "c", flags: int = DEFAULT_VISIBLE) -> Handshake:
    return Handshake(
        role=Role.ACCEPTOR,
        name=name,
        flags=flags,
        creation=22,
        cookie=cookie,
        challenge=0xB0B0B0B0,
        required_flags=MANDATORY_25,
    )


def pump(
    a: Handshake, b: Handshake, peer_state: PeerState = PeerState.NONE, alive_answer: bool = True
) -> tuple[list[HandshakeEvent], list[HandshakeEvent]]:
    """Move packets both ways until neither side has anything to send; collect events."""
    a_events: list[HandshakeEvent] = []
    b_events: list[HandshakeEvent] = []
    moved = True
    while moved:
        moved = False
        for packet in a.packets_to_send():
            moved = True
            for event in b.receive_packet(packet):
                b_events.append(event)
                if isinstance(event, PeerNamed):
                    b_events.extend(b.answer_peer(peer_state))
        for packet in b.packets_to_send():
            moved = True
            for event in a.receive_packet(packet):
                a_events.append(event)
                if isinstance(event, PeerAlive):
                    a_events.extend(a.answer_alive(alive_answer))
    return a_events, b_events


def test_send_name_packet_layout() -> None:
    assert SendName(flags=0xD03DF5FBC, creation=0x01020304, name="py@vm").to_bytes() == (
        b"N\x00\x00\x00\x0d\x03\xdf\x5f\xbc\x01\x02\x03\x04\x00\x05py@vm"
    )


def test_challenge_packet_layout() -> None:
    packet = Challenge(flags=0x1, challenge=0xDEADBEEF, creation=7, name="e@vm")
    assert packet.to_bytes() == (
        b"N\x00\x00\x00\x00\x00\x00\x00\x01"  # flags
        b"\xde\xad\xbe\xef\x00\x00\x00\x07"  # challenge, creation
        b"\x00\x04e@vm"
    )
    assert parse_packet(packet.to_bytes(), Challenge) == packet


def test_reply_ack_and_status_packet_layouts() -> None:
    digest = bytes(range(16))
    assert ChallengeReply(challenge=0x01020304, digest=digest).to_bytes() == b"r\x01\x02\x03\x04" + digest
    assert ChallengeAck(digest=digest).to_bytes() == b"a" + digest
    assert Status(status="ok_simultaneous").to_bytes() == b"sok_simultaneous"


def test_trailing_bytes_after_a_name_are_ignored() -> None:
    raw = SendName(flags=5, creation=6, name="x@y").to_bytes() + b"junk"
    assert parse_packet(raw, SendName) == SendName(flags=5, creation=6, name="x@y")


def test_truncated_or_mistagged_packets_do_not_parse() -> None:
    with pytest.raises(ValueError):
        parse_packet(b"N\x00\x00", SendName)
    with pytest.raises(ValueError):
        parse_packet(b"a" + bytes(15), ChallengeAck)
    with pytest.raises(ValueError):
        parse_packet(b"n\x00\x05" + bytes(20), SendName)


def test_digest_is_md5_of_cookie_and_decimal_challenge_as_erlang_computes_it() -> None:
    # erlang:md5(["secretcookie", integer_to_list(16#DEADBEEF)]) on OTP 25
    assert gen_digest(0xDEADBEEF, "secretcookie") == bytes(
        [77, 151, 87, 205, 122, 231, 115, 170, 241, 160, 141, 0, 255, 152, 19, 24]
    )


def test_initiator_starts_with_send_name_carrying_flags_creation_and_full_name() -> None:
    a = initiator()
    a.start()
    assert a.packets_to_send() == [SendName(flags=DEFAULT_HIDDEN, creation=11, name=A).to_bytes()]
    assert a.state is HandshakeState.RECV_STATUS


def test_two_handshakes_back_to_back_establish_with_the_negotiated_flags() -> None:
    a, b = initiator(), acceptor()
    a.start()
    a_events, b_events = pump(a, b)
    flags = negotiate(DEFAULT_HIDDEN, DEFAULT_VISIBLE)
    assert flags == DEFAULT_HIDDEN
    assert b_events == [
        PeerNamed(node=A, flags=DEFAULT_HIDDEN, creation=11),
        Established(peer_node=A, peer_creation=11, peer_flags=DEFAULT_HIDDEN, flags=flags),
    ]
    assert a_events == [Established(peer_node=B, peer_creation=22, peer_flags=DEFAULT_VISIBLE, flags=flags)]
    assert (a.state, b.state) == (HandshakeState.CONNECTED, HandshakeState.CONNECTED)


def test_acceptor_sends_ok_then_its_challenge() -> None:
    a, b = initiator(), acceptor()
    a.start()
    [name_packet] = a.packets_to_send()
    assert b.receive_packet(name_packet) == [PeerNamed(node=A, flags=DEFAULT_HIDDEN, creation=11)]
    assert b.answer_peer(PeerState.NONE) == []
    assert b.packets_to_send() == [
        b"sok",
        Challenge(flags=DEFAULT_VISIBLE, challenge=0xB0B0B0B0, creation=22, name=B).to_bytes(),
    ]


def test_wrong_cookie_is_rejected_by_the_acceptor_with_otps_wording_and_no_status() -> None:
    a, b = initiator(cookie="right"), acceptor(cookie="wrong")
    a.start()
    a_events, b_events = pump(a, b)
    assert a_events == []
    assert b_events[1:] == [
        HandshakeFailed(
            reason=f"Connection attempt from node {A} rejected. Invalid challenge reply (cookie mismatch)."
        )
    ]
    assert a.state is HandshakeState.RECV_CHALLENGE_ACK
    assert b.state is HandshakeState.FAILED


def test_a_forged_challenge_ack_is_rejected_by_the_initiator() -> None:
    a, b = initiator(), acceptor()
    a.start()
    b.receive_packet(a.packets_to_send()[0])
    b.answer_peer(PeerState.NONE)
    for packet in b.packets_to_send():
        assert a.receive_packet(packet) == []
    assert a.receive_packet(ChallengeAck(digest=bytes(16)).to_bytes()) == [
        HandshakeFailed(reason=f"Connection to node {B} rejected: invalid challenge ack (cookie mismatch)")
    ]


def test_initiator_aborts_when_the_challenge_carries_another_name() -> None:
    a, b = initiator(peer="b@localhost"), acceptor(name="b@vm")
    a.start()
    a_events, _ = pump(a, b)
    assert a_events == [
        HandshakeFailed(reason="connection to b@localhost aborted: the peer calls itself b@vm")
    ]


def test_acceptor_refuses_a_peer_missing_mandatory_flags_with_not_allowed() -> None:
    a = initiator(flags=DEFAULT_HIDDEN & ~DistFlags.BIG_CREATION)
    b = acceptor()
    a.start()
    a_events, b_events = pump(a, b)
    assert b_events == [
        HandshakeFailed(
            reason=f"Connection attempt from node {A} rejected since it cannot handle ['BIG_CREATION'].",
            status="not_allowed",
        )
    ]
    assert a_events == [
        HandshakeFailed(
            reason=f"connection to {B} refused (not_allowed): it rejects our flags or name",
            status="not_allowed",
        )
    ]


def test_initiator_refuses_an_acceptor_missing_mandatory_flags() -> None:
    a, b = initiator(), acceptor(flags=DEFAULT_VISIBLE & ~DistFlags.HANDSHAKE_23 & ~DistFlags.MAP_TAG)
    a.start()
    a_events, _ = pump(a, b)
    assert a_events == [
        HandshakeFailed(
            reason=f"Connection attempt to node {B} aborted "
            "since it cannot handle ['MAP_TAG', 'HANDSHAKE_23']."
        )
    ]


def test_mandatory_25_digest_bit_stands_for_the_whole_otp25_set() -> None:
    minimal = DistFlags.PUBLISHED | DistFlags.MANDATORY_25_DIGEST
    a, b = initiator(flags=minimal), acceptor()
    a.start()
    _, b_events = pump(a, b)
    assert isinstance(b_events[-1], Established)
    assert b_events[-1].flags == (MANDATORY_25 | DistFlags.PUBLISHED) & DEFAULT_VISIBLE


def test_simultaneous_connect_the_node_whose_name_sorts_later_keeps_its_attempt() -> None:
    # a@vm -> b@vm and b@vm -> a@vm at the same time; both sides have a PENDING attempt.
    a_out, b_in = initiator(name=A, peer=B), acceptor(name=B)
    b_out, a_in = initiator(name=B, peer=A), acceptor(name=A)
    a_out.start()
    b_out.start()
    a_out_events, b_in_events = pump(a_out, b_in, PeerState.PENDING)
    b_out_events, a_in_events = pump(b_out, a_in, PeerState.PENDING)
    # b@vm > a@vm: b answers nok to a's attempt and keeps its own; a yields with ok_simultaneous.
    assert b_in_events[-1] == HandshakeFailed(
        reason=f"simultaneous connect from {A}: keeping our own attempt (nok)", status="nok"
    )
    assert a_out_events == [
        HandshakeFailed(
            reason=f"connection to {B} not set up: simultaneous connect, "
            "the peer keeps its own attempt (nok)",
            status="nok",
        )
    ]
    assert isinstance(a_in_events[-1], Established) and a_in_events[-1].peer_node == B
    assert isinstance(b_out_events[-1], Established) and b_out_events[-1].peer_node == A


def test_acceptor_answers_ok_simultaneous_when_its_own_name_sorts_first() -> None:
    b_out, a_in = initiator(name=B, peer=A), acceptor(name=A)
    b_out.start()
    a_in.receive_packet(b_out.packets_to_send()[0])
    assert a_in.answer_peer(PeerState.PENDING) == []
    assert a_in.packets_to_send()[0] == b"sok_simultaneous"


def test_alive_status_answered_true_lets_the_acceptor_replace_its_old_connection() -> None:
    a, b = initiator(), acceptor()
    a.start()
    a_events, b_events = pump(a, b, PeerState.UP, alive_answer=True)
    assert a_events[0] == PeerAlive(node=B)
    assert isinstance(a_events[-1], Established)
    assert b_events[-1] == Established(
        peer_node=A,
        peer_creation=11,
        peer_flags=DEFAULT_HIDDEN,
        flags=negotiate(DEFAULT_HIDDEN, DEFAULT_VISIBLE),
        replaces_existing=True,
    )


def test_an_initiator_that_is_already_connected_answers_alive_with_false_and_gives_up() -> None:
    a, b = initiator(), acceptor()
    a.start()
    a_events, b_events = pump(a, b, PeerState.UP, alive_answer=False)
    assert a_events == [
        PeerAlive(node=B),
        HandshakeFailed(
            reason=f"connection to {B} not set up: we already have a connection to it (alive, false)",
            status="alive",
        ),
    ]
    assert b_events[-1] == HandshakeFailed(
        reason=f"{A} keeps its existing connection (answered false to alive)", status="alive"
    )


def test_alive_answered_false_ends_the_acceptor_handshake() -> None:
    b = acceptor()
    b.receive_packet(SendName(flags=DEFAULT_HIDDEN, creation=1, name=A).to_bytes())
    b.answer_peer(PeerState.UP)
    assert b.packets_to_send() == [b"salive"]
    assert b.receive_packet(b"sfalse") == [
        HandshakeFailed(reason=f"{A} keeps its existing connection (answered false to alive)", status="alive")
    ]


def test_a_packet_out_of_turn_fails_the_handshake() -> None:
    b = acceptor()
    assert b.receive_packet(ChallengeAck(digest=bytes(16)).to_bytes()) == [
        HandshakeFailed(
            reason="malformed SendName packet: expected send_name 'N', got b'a" + "\\x00" * 15 + "'"
        )
    ]


def test_acceptor_refuses_a_name_without_host() -> None:
    b = acceptor()
    events = b.receive_packet(SendName(flags=DEFAULT_HIDDEN, creation=1, name="nohost").to_bytes())
    assert events == [
        HandshakeFailed(
            reason="Connection attempt from node 'nohost' rejected: "
            "node name 'nohost' is not of the form alive@host",
            status="not_allowed",
        )
    ]
    assert b.packets_to_send() == [b"snot_allowed"]


@pytest.mark.parametrize(
    ("name", "long_names", "ok"),
    [
        ("py@vm", False, True),
        ("py@127.0.0.1", True, True),
        ("py@host.example.com", True, True),
        ("py@127.0.0.1", False, False),
        ("py@vm", True, False),
        ("py@", None, False),
        ("@vm", None, False),
        ("a@b@c", None, False),
    ],
)
def test_node_names_are_checked_like_net_kernel(name: str, long_names: bool | None, ok: bool) -> None:
    if ok:
        check_node_name(name, long_names=long_names)
    else:
        with pytest.raises(ValueError):
            check_node_name(name, long_names=long_names)
