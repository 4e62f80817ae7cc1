"""Packet framing (split/merged input, ticks, length switch) and the dist header / fragments."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erl_interop.dist.errors import DistProtocolError
from erl_interop.dist.flags import DEFAULT_HIDDEN, DEFAULT_VISIBLE, MANDATORY_25, negotiate
from erl_interop.dist.fragments import AtomCache, CompleteMessage, FragmentAssembler, fragment_packets
from erl_interop.dist.framing import TICK, PacketBuffer, frame
from erl_interop.term import Atom

# -- framing -----------------------------------------------------------------------------------


def test_frame_prefixes_a_2_or_4_byte_big_endian_length() -> None:
    assert frame(b"sok", 2) == b"\x00\x03sok"
    assert frame(b"abc", 4) == b"\x00\x00\x00\x03abc"
    with pytest.raises(ValueError):
        frame(bytes(70000), 2)


def test_packets_split_across_reads_come_out_whole() -> None:
    buf = PacketBuffer(4)
    stream = frame(b"hello", 4) + frame(b"world!", 4)
    out = []
    for i in range(len(stream)):
        buf.feed(stream[i : i + 1])
        while (packet := buf.next_packet()) is not None:
            out.append(packet)
    assert out == [b"hello", b"world!"]
    assert len(buf) == 0


def test_packets_merged_in_one_read_come_out_in_order_with_ticks_between() -> None:
    buf = PacketBuffer(4)
    buf.feed(frame(b"a", 4) + b"\x00\x00\x00\x00" + frame(b"bc", 4) + b"\x00\x00")
    assert [buf.next_packet(), buf.next_packet(), buf.next_packet(), buf.next_packet()] == [
        b"a",
        TICK,
        b"bc",
        None,
    ]
    assert len(buf) == 2


def test_switching_from_2_to_4_byte_framing_keeps_buffered_bytes() -> None:
    buf = PacketBuffer(2)
    buf.feed(frame(b"a" + bytes(16), 2) + frame(b"first", 4))
    assert buf.next_packet() == b"a" + bytes(16)
    buf.set_header_size(4)
    assert buf.next_packet() == b"first"


def test_an_empty_2_byte_packet_is_not_a_tick() -> None:
    buf = PacketBuffer(2)
    buf.feed(b"\x00\x00")
    assert buf.next_packet() == b""


def test_a_length_above_the_limit_is_a_protocol_error() -> None:
    buf = PacketBuffer(4, max_packet=100)
    buf.feed(b"\x00\x00\x00\x65")
    with pytest.raises(DistProtocolError):
        buf.next_packet()


def test_many_packets_through_one_buffer_compact_it() -> None:
    buf = PacketBuffer(4)
    payload = bytes(1000)
    for _ in range(300):
        buf.feed(frame(payload, 4) + frame(payload, 4)[:10])
        assert buf.next_packet() == payload
        buf.feed(frame(payload, 4)[10:])
        assert buf.next_packet() == payload
    assert len(buf) == 0


# -- atom cache (erl_ext_dist "Distribution Header") -------------------------------------------


def test_header_with_zero_refs_is_three_bytes() -> None:
    assert FragmentAssembler().receive(b"\x83\x44\x00rest") == CompleteMessage(b"\x83\x44\x00rest", 3, [])


def test_new_atom_cache_entries_fill_slots_and_old_entries_read_them() -> None:
    asm = FragmentAssembler()
    # 2 refs: ref0 new in segment 1, ref1 new in segment 0; flags nibbles 0x9, 0x8, then LongAtoms=0.
    first = b"\x83\x44\x02" + bytes([0x89, 0x00]) + b"\x05\x03foo" + b"\x07\x03bar" + b"T"
    assert asm.receive(first) == CompleteMessage(first, len(first) - 1, [Atom("foo"), Atom("bar")])
    # 1 old ref to slot 1*256+5 (segment 1, not new): nibble 0x1, then the LongAtoms nibble 0.
    second = b"\x83\x44\x01" + bytes([0x01]) + b"\x05" + b"U"
    assert asm.receive(second) == CompleteMessage(second, len(second) - 1, [Atom("foo")])


def test_long_atoms_use_2_byte_lengths() -> None:
    cache = AtomCache()
    data = b"\x01" + bytes([0x18]) + b"\x00\x00\x03abc"  # ref0 new seg 0; extra nibble LongAtoms=1
    assert cache.parse_refs(data, 0) == ([Atom("abc")], len(data))


def test_a_reference_to_an_empty_cache_slot_is_a_protocol_error() -> None:
    with pytest.raises(DistProtocolError):
        FragmentAssembler().receive(b"\x83\x44\x01\x00\x09")


def test_a_truncated_header_is_a_protocol_error() -> None:
    with pytest.raises(DistProtocolError):
        FragmentAssembler().receive(b"\x83\x44\x02\x89")


def test_an_unknown_header_kind_is_a_protocol_error() -> None:
    with pytest.raises(DistProtocolError):
        FragmentAssembler().receive(b"\x83\x50\x00")


# -- fragments (erl_ext_dist "Distribution Header for Fragmented Messages") --------------------


def test_fragment_packets_count_ids_down_to_one_with_a_first_header_of_zero_refs() -> None:
    assert fragment_packets(b"abcdefg", 0x0102, fragment_size=3) == [
        b"\x83\x45" + (0x0102).to_bytes(8, "big") + (3).to_bytes(8, "big") + b"\x00abc",
        b"\x83\x46" + (0x0102).to_bytes(8, "big") + (2).to_bytes(8, "big") + b"def",
        b"\x83\x46" + (0x0102).to_bytes(8, "big") + (1).to_bytes(8, "big") + b"g",
    ]


def test_fragments_reassemble_into_the_original_body() -> None:
    body = bytes(range(256)) * 10
    asm = FragmentAssembler()
    packets = fragment_packets(body, 7, fragment_size=1000)
    assert [asm.receive(p) for p in packets[:-1]] == [None, None]
    assert asm.receive(packets[-1]) == CompleteMessage(body, 0, [])
    assert asm.pending_sequences == 0


def test_interleaved_sequences_complete_independently_in_completion_order() -> None:
    asm = FragmentAssembler()
    one = fragment_packets(b"1" * 10, 1, fragment_size=4)
    two = fragment_packets(b"2" * 6, 2, fragment_size=4)
    results = [asm.receive(p) for p in (one[0], two[0], one[1], two[1], one[2])]
    assert results == [None, None, None, CompleteMessage(b"2" * 6, 0, []), CompleteMessage(b"1" * 10, 0, [])]


def test_a_fragment_out_of_order_within_its_sequence_is_a_protocol_error() -> None:
    asm = FragmentAssembler()
    packets = fragment_packets(b"x" * 9, 5, fragment_size=3)
    asm.receive(packets[0])
    with pytest.raises(DistProtocolError, match="out of order"):
        asm.receive(packets[2])


def test_a_continuation_without_its_first_fragment_is_a_protocol_error() -> None:
    packets = fragment_packets(b"x" * 9, 5, fragment_size=3)
    with pytest.raises(DistProtocolError, match="unknown sequence"):
        FragmentAssembler().receive(packets[1])


def test_the_first_fragments_atom_cache_refs_apply_to_the_whole_message() -> None:
    asm = FragmentAssembler()
    seq = (9).to_bytes(8, "big")
    first = b"\x83\x45" + seq + (2).to_bytes(8, "big") + b"\x01\x08\x00\x02ok" + b"AB"
    cont = b"\x83\x46" + seq + (1).to_bytes(8, "big") + b"CD"
    assert asm.receive(first) is None
    assert asm.receive(cont) == CompleteMessage(b"ABCD", 0, [Atom("ok")])


def test_incomplete_sequences_are_bounded_in_memory() -> None:
    asm = FragmentAssembler(max_pending_bytes=10)
    with pytest.raises(DistProtocolError, match="exceed"):
        for seq in range(5):
            asm.receive(fragment_packets(b"y" * 8, seq, fragment_size=4)[0])


def test_negotiation_is_the_intersection_of_both_sets() -> None:
    assert negotiate(DEFAULT_VISIBLE, DEFAULT_HIDDEN) == DEFAULT_HIDDEN
    assert negotiate(DEFAULT_VISIBLE, MANDATORY_25) == MANDATORY_25


@settings(max_examples=150, deadline=None)
@given(payloads=st.lists(st.binary(max_size=300), max_size=20), data=st.data())
def test_any_split_of_a_framed_stream_yields_the_same_packets(
    payloads: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(frame(p, 4) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    buf = PacketBuffer(4)
    out: list[object] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        buf.feed(stream[previous:cut])
        previous = cut
        while (packet := buf.next_packet()) is not None:
            out.append(packet)
    assert out == [TICK if p == b"" else p for p in payloads]


@settings(max_examples=150, deadline=None)
@given(
    bodies=st.lists(st.binary(min_size=0, max_size=200), min_size=1, max_size=6),
    size=st.integers(1, 50),
    data=st.data(),
)
def test_interleaved_fragment_sequences_always_reassemble(
    bodies: list[bytes], size: int, data: st.DataObject
) -> None:
    queues = [fragment_packets(body, seq, fragment_size=size) for seq, body in enumerate(bodies)]
    asm = FragmentAssembler()
    done: dict[bytes, int] = {}
    while any(queues):
        i = data.draw(st.sampled_from([n for n, q in enumerate(queues) if q]))
        result = asm.receive(queues[i].pop(0))
        if result is not None:
            assert result.offset == 0 or result.data[:2] == b"\x83\x45"
            body = result.data[result.offset :]
            done[body] = done.get(body, 0) + 1
    expected: dict[bytes, int] = {}
    for body in bodies:
        expected[body] = expected.get(body, 0) + 1
    assert done == expected
    assert asm.pending_sequences == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_from_the_dist_header_decoder(packet: bytes) -> None:
    asm = FragmentAssembler(max_pending_bytes=10_000)
    for candidate in (packet, b"\x83\x44" + packet, b"\x83\x45" + packet, b"\x83\x46" + packet):
        try:
            asm.receive(candidate)
        except DistProtocolError:
            pass
