"""Two sans-IO DistConnections wired back to back: handshake bytes, messages, fragments, ticks."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erl_interop.dist import control as c
from erl_interop.dist.connection import (
    ConnectionClosed,
    ConnectionState,
    DistConnection,
    DistEvent,
    Established,
    HandshakeFailed,
    LocalNode,
    MessageReceived,
    PeerNamed,
    PeerState,
    Role,
)
from erl_interop.dist.flags import DEFAULT_HIDDEN, DistFlags
from erl_interop.errors import ConnectionLost, EncodeError
from erl_interop.term import Atom, Encoded, Pid, encode

A = LocalNode(name="a@vm", creation=11, cookie="k", net_ticktime=4.0)
B = LocalNode(name="b@vm", creation=22, cookie="k", net_ticktime=4.0)
APID = Pid(Atom("a@vm"), 1, 0, 11)
BPID = Pid(Atom("b@vm"), 2, 0, 22)


def shuttle(
    a: DistConnection, b: DistConnection, now: float = 0.0
) -> tuple[list[DistEvent], list[DistEvent]]:
    a_events: list[DistEvent] = []
    b_events: list[DistEvent] = []
    while True:
        to_b, to_a = a.data_to_send(), b.data_to_send()
        if not to_b and not to_a:
            return a_events, b_events
        for event in b.receive_data(to_b, now):
            b_events.append(event)
            if isinstance(event, PeerNamed):
                b_events.extend(b.answer_peer(PeerState.NONE, now))
        a_events.extend(a.receive_data(to_a, now))


def pair(a_local: LocalNode = A, b_local: LocalNode = B) -> tuple[DistConnection, DistConnection]:
    a = DistConnection(a_local, role=Role.INITIATOR, challenge=1, now=0.0, peer_node=b_local.name)
    b = DistConnection(b_local, role=Role.ACCEPTOR, challenge=2, now=0.0)
    a.start()
    a_events, b_events = shuttle(a, b)
    assert [type(e) for e in a_events] == [Established]
    assert [type(e) for e in b_events] == [PeerNamed, Established]
    return a, b


def test_handshake_over_bytes_switches_both_sides_to_connected_with_peer_identity() -> None:
    a, b = pair()
    assert (a.state, b.state) == (ConnectionState.CONNECTED, ConnectionState.CONNECTED)
    assert (a.peer_node, a.peer_creation, b.peer_node, b.peer_creation) == ("b@vm", 22, "a@vm", 11)
    assert a.flags == b.flags == DEFAULT_HIDDEN


def test_first_bytes_of_an_initiator_are_a_2_byte_framed_send_name() -> None:
    a = DistConnection(A, role=Role.INITIATOR, challenge=1, now=0.0, peer_node="b@vm")
    a.start()
    assert a.data_to_send() == b"\x00\x13N" + struct.pack(">QI", DEFAULT_HIDDEN, 11) + b"\x00\x04a@vm"


def test_messages_use_the_131_68_header_with_zero_cache_refs_when_fragments_are_negotiated() -> None:
    a, b = pair()
    a.send(c.RegSend(from_pid=APID, to_name=Atom("echo")), (Atom("hello"), 1))
    wire = a.data_to_send()
    body = bytearray()
    encode((6, APID, Atom(""), Atom("echo")), body)
    encode((Atom("hello"), 1), body)
    assert wire == struct.pack(">I", len(body) + 3) + b"\x83\x44\x00" + bytes(body)
    assert b.receive_data(wire, 0.5) == [
        MessageReceived(control=c.RegSend(from_pid=APID, to_name=Atom("echo")), payload=(Atom("hello"), 1))
    ]


def test_without_fragments_or_atom_cache_messages_are_pass_through_p_packets() -> None:
    plain = DEFAULT_HIDDEN & ~DistFlags.FRAGMENTS
    a, b = pair(LocalNode(name="a@vm", creation=11, cookie="k", flags=plain), B)
    a.send(c.Link(from_pid=APID, to_pid=BPID))
    wire = a.data_to_send()
    term = bytearray()
    encode((1, APID, BPID), term)
    assert wire == struct.pack(">I", len(term) + 2) + b"p\x83" + bytes(term)
    assert b.receive_data(wire, 0.0) == [
        MessageReceived(control=c.Link(from_pid=APID, to_pid=BPID), payload=None)
    ]
    a.send(c.SendSender(from_pid=APID, to_pid=BPID), [1, 2])
    assert b.receive_data(a.data_to_send(), 0.0) == [
        MessageReceived(control=c.SendSender(from_pid=APID, to_pid=BPID), payload=[1, 2])
    ]


def test_a_pre_encoded_part_of_a_payload_goes_out_as_the_same_bytes_as_the_term_itself() -> None:
    a, b = pair()
    entries = [(1, 2, (Atom("$usr"), b"x" * 300)), (2, 2, Atom("noop"))]
    part = bytearray()
    encode(entries, part)
    a.send(c.RegSend(from_pid=APID, to_name=Atom("s")), (Atom("$gen_cast"), Encoded(bytes(part))))
    pre_encoded = a.data_to_send()
    a.send(c.RegSend(from_pid=APID, to_name=Atom("s")), (Atom("$gen_cast"), entries))
    assert pre_encoded == a.data_to_send()
    control = c.RegSend(from_pid=APID, to_name=Atom("s"))
    assert b.receive_data(pre_encoded, 0.0) == [
        MessageReceived(control=control, payload=(Atom("$gen_cast"), entries))
    ]


def test_payload_is_ignored_for_ops_that_carry_none() -> None:
    a, b = pair()
    a.send(c.Link(from_pid=APID, to_pid=BPID), Atom("ignored"))
    assert b.receive_data(a.data_to_send(), 0.0) == [
        MessageReceived(control=c.Link(from_pid=APID, to_pid=BPID), payload=None)
    ]


def test_a_big_message_is_fragmented_and_reassembled() -> None:
    small = LocalNode(name="a@vm", creation=11, cookie="k", fragment_size=1000)
    a, b = pair(small, B)
    big = bytes(range(256)) * 20
    a.send(c.SendSender(from_pid=APID, to_pid=BPID), big)
    wire = a.data_to_send()
    assert wire[4:6] == b"\x83\x45"
    assert wire.count(b"\x83\x46") >= 5
    events: list[DistEvent] = []
    for i in range(0, len(wire), 777):  # and split across reads at odd places
        events.extend(b.receive_data(wire[i : i + 777], 0.0))
    assert events == [MessageReceived(control=c.SendSender(from_pid=APID, to_pid=BPID), payload=big)]


def test_an_unencodable_payload_raises_and_queues_nothing() -> None:
    a, _ = pair()
    with pytest.raises(EncodeError):
        a.send(c.SendSender(from_pid=APID, to_pid=BPID), float("nan"))
    assert a.data_to_send() == b""
    assert a.state is ConnectionState.CONNECTED


def test_sending_before_the_handshake_completes_raises_connection_lost() -> None:
    a = DistConnection(A, role=Role.INITIATOR, challenge=1, now=0.0, peer_node="b@vm")
    with pytest.raises(ConnectionLost):
        a.send(c.Link(from_pid=APID, to_pid=BPID))


@pytest.mark.parametrize(
    ("packet", "detail"),
    [
        (b"\xde\xad\xbe\xef", "packet does not start with 131: b'\\xde\\xad\\xbe\\xef'"),
        (b"p\x83a\x01", "packet does not start with 131: b'p\\x83a\\x01'"),
        (b"\x83\x44\x00\x68\x01\x61\x25", "unknown control op 37"),
        (
            b"\x83\x44\x00\x46\x7f\xf8\x00\x00\x00\x00\x00\x00",
            "non-finite float (NaN or infinity) (at offset 3)",
        ),
        (b"\x83\x44\x00\x68\x01\x61\x05\x61\x00", "2 trailing bytes after a NodeLink message"),
        (b"\x83\x44\x00\x68\x03\x61\x16", "tuple arity 3 exceeds the remaining bytes (at offset 5)"),
    ],
    ids=["garbage", "p-packet-in-header-mode", "unknown-op", "nan-float", "trailing-bytes", "truncated"],
)
def test_garbage_or_a_malformed_term_closes_the_connection_with_a_protocol_error(
    packet: bytes, detail: str
) -> None:
    _, b = pair()
    assert b.receive_data(struct.pack(">I", len(packet)) + packet, 1.0) == [
        ConnectionClosed(reason="protocol_error", detail=f"bad message from a@vm: {detail}")
    ]
    assert b.state is ConnectionState.CLOSED
    assert b.receive_data(b"\x00\x00\x00\x00", 1.0) == []


def test_ticks_are_sent_every_check_while_idle_and_keep_the_peer_alive() -> None:
    a, b = pair()  # net_ticktime 4, intensity 4: a check every second
    assert a.get_timer() == 1.0
    for now in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
        assert a.handle_timer(now) == []
        assert b.handle_timer(now) == []
        a_out, b_out = a.data_to_send(), b.data_to_send()
        assert a_out == b"\x00\x00\x00\x00"  # hidden connection, nothing written: tick
        assert b.receive_data(a_out, now) == []
        assert a.receive_data(b_out, now) == []
    assert (a.state, b.state) == (ConnectionState.CONNECTED, ConnectionState.CONNECTED)


def test_no_tick_is_written_after_a_message_on_a_visible_connection() -> None:
    visible_a = LocalNode(name="a@vm", creation=11, cookie="k", hidden=False, net_ticktime=4.0)
    visible_b = LocalNode(name="b@vm", creation=22, cookie="k", hidden=False, net_ticktime=4.0)
    a, b = pair(visible_a, visible_b)
    b.send(c.SendSender(from_pid=BPID, to_pid=APID), 1)
    a.receive_data(b.data_to_send(), 0.5)
    a.send(c.SendSender(from_pid=APID, to_pid=BPID), 2)
    a.data_to_send()
    assert a.handle_timer(1.0) == []
    assert a.data_to_send() == b""
    assert a.handle_timer(2.0) == []
    assert a.data_to_send() == b"\x00\x00\x00\x00"


def test_a_silent_peer_is_dropped_after_net_tickintensity_checks_without_reading() -> None:
    a, _ = pair()
    # The handshake counts as read traffic for the first check (t=1); t=2..5 read nothing.
    assert [a.handle_timer(t) for t in (1.0, 2.0, 3.0, 4.0)] == [[], [], [], []]
    [closed] = a.handle_timer(5.0)
    assert isinstance(closed, ConnectionClosed)
    assert closed.reason == "net_tick_timeout"
    assert a.get_timer() is None


def test_a_timer_that_fires_early_does_nothing() -> None:
    a, _ = pair()
    assert a.handle_timer(0.5) == []
    assert a.data_to_send() == b""


def test_the_handshake_times_out_after_net_setuptime_without_progress() -> None:
    b = DistConnection(B, role=Role.ACCEPTOR, challenge=2, now=100.0)
    assert b.get_timer() == 107.0
    assert b.handle_timer(106.9) == []
    assert b.handle_timer(107.0) == [
        HandshakeFailed(reason="handshake with peer timed out after 7 s in state RECV_NAME")
    ]


def test_eof_after_our_challenge_reply_hints_at_a_wrong_cookie() -> None:
    wrong = LocalNode(name="b@vm", creation=22, cookie="other")
    a = DistConnection(A, role=Role.INITIATOR, challenge=1, now=0.0, peer_node="b@vm")
    b = DistConnection(wrong, role=Role.ACCEPTOR, challenge=2, now=0.0)
    a.start()
    _, b_events = shuttle(a, b)
    assert isinstance(b_events[-1], HandshakeFailed) and "Invalid challenge reply" in b_events[-1].reason
    assert a.eof() == [
        HandshakeFailed(
            reason="Connection to node b@vm rejected: the peer closed the connection after our "
            "challenge reply (invalid cookie?)"
        )
    ]


def test_close_reports_the_reason_once() -> None:
    a, _ = pair()
    assert a.close("shutdown") == [ConnectionClosed(reason="shutdown")]
    assert a.close("again") == []
    assert a.eof() == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=120), max_size=6))
def test_arbitrary_bytes_after_the_handshake_only_ever_close_the_connection(chunks: list[bytes]) -> None:
    _, b = pair()
    events: list[DistEvent] = []
    for chunk in chunks:
        events.extend(b.receive_data(chunk, 0.5))
    assert all(isinstance(e, MessageReceived | ConnectionClosed) for e in events)
    closes = [i for i, e in enumerate(events) if isinstance(e, ConnectionClosed)]
    assert closes in ([], [len(events) - 1])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=6))
def test_arbitrary_bytes_during_the_handshake_only_ever_fail_it(chunks: list[bytes]) -> None:
    b = DistConnection(B, role=Role.ACCEPTOR, challenge=2, now=0.0)
    events: list[DistEvent] = []
    for chunk in chunks:
        for event in b.receive_data(chunk, 0.0):
            events.append(event)
            if isinstance(event, PeerNamed):
                events.extend(b.answer_peer(PeerState.NONE, 0.0))
    assert all(isinstance(e, PeerNamed | HandshakeFailed) for e in events)
