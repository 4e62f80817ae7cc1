"""Decoder: exact values per tag, offsets, truncation at every cut point, and hostile input."""

from __future__ import annotations

import random
import struct
import zlib
from typing import Any

import pytest

from erl_interop.errors import DecodeError
from erl_interop.term import (
    MAX_DEPTH,
    Atom,
    BitString,
    ExportFun,
    ImproperList,
    Map,
    OpaqueFun,
    Pid,
    Port,
    Reference,
    binary_to_term,
    decode,
    encode,
    exact_equal,
    term_to_binary,
)
from erl_interop.term.decode import _decode

NODE = Atom("n@h")
NODE_UTF8 = "77036e4068"
NODE_LATIN1 = "6400036e4068"

# (name, hex after the 131 byte, expected value)
CASES: list[tuple[str, str, Any]] = [
    ("small_int", "61ff", 255),
    ("integer", "62ffffffff", -1),
    ("small_big", "6e0401ffffffff", -(2**32 - 1)),
    ("small_big_zero_length", "6e0000", 0),
    ("large_big", "6f000000020001ff", 0xFF01),
    ("new_float", "463ff8000000000000", 1.5),
    ("float_ext", "63" + b"1.50000000000000000000e+00".ljust(31, b"\x00").hex(), 1.5),
    ("atom_ext", "640002" + b"ok".hex(), Atom("ok")),
    ("atom_ext_latin1", "640001e4", Atom("ä")),
    ("small_atom_ext", "7302" + b"ok".hex(), Atom("ok")),
    ("atom_utf8_ext", "760002c3a4", Atom("ä")),
    ("small_atom_utf8_ext", "7702ceb1", Atom("α")),
    ("true_utf8", "770474727565", True),
    ("false_latin1", "640005" + b"false".hex(), False),
    ("undefined_stays_atom", "7709" + b"undefined".hex(), Atom("undefined")),
    ("elixir_nil_stays_atom", "7703" + b"nil".hex(), Atom("nil")),
    ("binary", "6d000000026162", b"ab"),
    ("bit_binary", "4d0000000103e0", BitString(b"\xe0", 3)),
    ("bit_binary_8_bits", "4d0000000108ff", BitString(b"\xff", 8)),
    ("bit_binary_empty", "4d0000000000", b""),
    ("small_tuple", "680261017701" + b"a".hex(), (1, Atom("a"))),
    ("large_tuple", "69000000026101" + "6102", (1, 2)),
    ("nil", "6a", []),
    ("string_ext", "6b00026869", [104, 105]),
    ("list_ext", "6c00000002" + "6101" + "680161026a", [1, (2,)]),
    ("improper_list", "6c00000002610161026103", ImproperList((1, 2), 3)),
    ("list_tail_list_is_spliced", "6c00000001" + "6101" + "6b00020203", [1, 2, 3]),
    (
        "map_ext",
        "7400000002" + "6101770161" + "463ff0000000000000770162",
        Map([(1, Atom("a")), (1.0, Atom("b"))]),
    ),
    ("map_list_key", "7400000001" + "6b000101" + "6a", Map([([1], [])])),
    ("new_pid", "58" + NODE_UTF8 + "000000010000000200000003", Pid(NODE, 1, 2, 3)),
    ("pid_ext", "67" + NODE_LATIN1 + "00000001" + "00000002" + "03", Pid(NODE, 1, 2, 3)),
    (
        "newer_reference",
        "5a0003" + NODE_UTF8 + "00000007" + "000000010000000200000003",
        Reference(NODE, 7, (1, 2, 3)),
    ),
    ("new_reference", "720002" + NODE_UTF8 + "07" + "0000000100000002", Reference(NODE, 7, (1, 2))),
    ("reference_ext", "65" + NODE_UTF8 + "00000009" + "02", Reference(NODE, 2, (9,))),
    ("new_port", "59" + NODE_UTF8 + "0000000500000001", Port(NODE, 5, 1)),
    ("v4_port", "78" + NODE_UTF8 + "0000010000000000" + "00000001", Port(NODE, 2**40, 1)),
    ("port_ext", "66" + NODE_UTF8 + "00000005" + "01", Port(NODE, 5, 1)),
    ("export", "71" + "77056c69737473" + "77036d6170" + "6102", ExportFun(Atom("lists"), Atom("map"), 2)),
]


@pytest.mark.parametrize(("data", "expected"), [(h, v) for _, h, v in CASES], ids=[n for n, _, _ in CASES])
def test_bytes_decode_to_exact_value(data: str, expected: Any) -> None:
    value = binary_to_term(bytes.fromhex("83" + data))
    assert isinstance(value, type(expected))
    assert value == expected
    assert exact_equal(value, expected)


@pytest.mark.parametrize(("data", "expected"), [(h, v) for _, h, v in CASES], ids=[n for n, _, _ in CASES])
def test_general_decoder_agrees_with_the_fast_path(data: str, expected: Any) -> None:
    raw = bytes.fromhex(data)
    value, end = _decode(raw, 0, None)
    assert end == len(raw)
    assert exact_equal(value, expected)


def test_negative_zero_float_is_kept() -> None:
    value = binary_to_term(bytes.fromhex("83468000000000000000"))
    assert str(value) == "-0.0"


def test_decoded_atoms_remember_their_encoding() -> None:
    data = bytes.fromhex("83" + "6802" + "640002" + b"ok".hex() + "7702" + b"ok".hex())
    assert term_to_binary(binary_to_term(data)) == data


def test_float_ext_reencodes_as_float_ext() -> None:
    data = bytes.fromhex("8363") + b"-1.00000000000000005250e+300".ljust(31, b"\x00")
    assert term_to_binary(binary_to_term(data)) == data


def test_decode_reads_one_term_at_an_offset_and_returns_the_next_offset() -> None:
    data = b"\xff\xff" + bytes.fromhex("6101" + "7702" + b"ok".hex()) + b"\xee"
    assert decode(data, 2) == (1, 4)
    assert decode(data, 4) == (Atom("ok"), 8)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_decode_accepts_bytes_bytearray_and_memoryview(wrap: Any) -> None:
    data = term_to_binary((Atom("a"), b"bin", [1, 2], 2**80, "s"))
    assert binary_to_term(wrap(data)) == (Atom("a"), b"bin", [1, 2], 2**80, b"s")
    assert type(binary_to_term(wrap(data))[1]) is bytes


def test_atom_cache_ref_resolves_through_the_header_refs() -> None:
    data = bytes.fromhex("6803" + "5201" + "5200" + "58" + "5201" + "000000010000000000000001")
    value, end = decode(data, atom_cache=[Atom("true"), Atom("n@h")])
    assert value == (Atom("n@h"), True, Pid(Atom("n@h"), 1, 0, 1))
    assert end == len(data)


def test_atom_cache_ref_without_a_cache_is_refused() -> None:
    with pytest.raises(DecodeError, match="ATOM_CACHE_REF outside") as info:
        decode(bytes.fromhex("68015200"))
    assert info.value.offset == 2


def test_atom_cache_ref_beyond_the_header_refs_is_refused() -> None:
    with pytest.raises(DecodeError, match="ATOM_CACHE_REF 3"):
        decode(bytes.fromhex("5203"), atom_cache=[NODE])


def _new_fun(module: bytes, pid: bytes, free: list[bytes]) -> bytes:
    body = bytes([1]) + bytes(range(16)) + struct.pack(">II", 0, len(free))
    body += module + bytes.fromhex("6100") + bytes.fromhex("62075bcd15") + pid + b"".join(free)
    return b"p" + struct.pack(">I", len(body) + 4) + body


def test_new_fun_is_kept_as_its_exact_bytes() -> None:
    pid = bytes.fromhex("58" + NODE_UTF8 + "000000010000000000000001")
    fun = _new_fun(bytes.fromhex("7701" + b"m".hex()), pid, [bytes.fromhex("6101"), bytes.fromhex("6a")])
    value = binary_to_term(b"\x83" + fun)
    assert value == OpaqueFun(fun)
    assert isinstance(value, OpaqueFun) and value.arity == 1
    assert term_to_binary(value) == b"\x83" + fun


def test_new_fun_with_atom_cache_refs_is_rewritten_with_spelled_out_atoms() -> None:
    pid = "58" + "5200" + "000000010000000000000001"
    cached = _new_fun(bytes.fromhex("5201"), bytes.fromhex(pid), [bytes.fromhex("5201")])
    spelled = _new_fun(
        bytes.fromhex("7701" + b"m".hex()),
        bytes.fromhex(pid.replace("5200", NODE_UTF8)),
        [bytes.fromhex("7701" + b"m".hex())],
    )
    value, _ = decode(cached, atom_cache=[NODE, Atom("m")])
    assert value == OpaqueFun(spelled)


def test_new_fun_with_a_wrong_size_field_is_refused() -> None:
    pid = bytes.fromhex("58" + NODE_UTF8 + "000000010000000000000001")
    fun = bytearray(_new_fun(bytes.fromhex("7701" + b"m".hex()), pid, [bytes.fromhex("6101")]))
    fun[4] -= 1
    with pytest.raises(DecodeError, match="size field"):
        binary_to_term(b"\x83" + bytes(fun) + b"\x00")


TRUNCATION_TERMS: list[Any] = [
    (Atom("ok"), 1, 300, -(2**70), 2**2100, 1.5, b"bin", "str", [1, 2], [1000, Atom("α")], []),
    Map([(Atom("k"), [Map([(1.0, (1,))])]), ((), b"")]),
    [ImproperList((1, 2), Atom("t")), BitString(b"\xf0", 4)],
    (Pid(NODE, 1, 2, 3), Reference(NODE, 1, (1, 2, 3)), Port(NODE, 7, 1), Port(NODE, 2**40, 1)),
    ExportFun(Atom("lists"), Atom("map"), 2),
    tuple(range(300)),
]


@pytest.mark.parametrize("term", TRUNCATION_TERMS, ids=range(len(TRUNCATION_TERMS)))
def test_every_truncation_raises_decode_error(term: Any) -> None:
    data = term_to_binary(term)
    for cut in range(len(data)):
        with pytest.raises(DecodeError) as info:
            binary_to_term(data[:cut])
        assert 0 <= info.value.offset <= cut
        if cut > 1:
            with pytest.raises(DecodeError):
                decode(memoryview(data)[1:cut])


def test_every_truncation_of_old_style_tags_raises_decode_error() -> None:
    pieces = [h for _, h, _ in CASES]
    data = bytes.fromhex("83" + "6c" + f"{len(pieces):08x}" + "".join(pieces) + "6a")
    binary_to_term(data)
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            binary_to_term(data[:cut])


def test_compressed_term_decodes() -> None:
    data = term_to_binary([b"x" * 100] * 10, compressed=True)
    assert data[1] == 80
    assert binary_to_term(data) == [b"x" * 100] * 10


def _compressed(size: int, payload: bytes) -> bytes:
    return b"\x83P" + struct.pack(">I", size) + zlib.compress(payload)


HOSTILE: list[tuple[str, bytes, str]] = [
    ("empty", b"", "too short"),
    ("bad_version", b"\x82a\x01", "bad version byte"),
    ("trailing_bytes", b"\x83a\x01\x00", "1 bytes left"),
    ("huge_tuple_arity", bytes.fromhex("8369ffffffff6101"), "tuple arity"),
    ("huge_small_tuple_arity", bytes.fromhex("8368ff6101"), "tuple arity"),
    ("huge_list_length", bytes.fromhex("836cffffffff6a"), "list length"),
    ("huge_map_arity", bytes.fromhex("8374ffffffff"), "map arity"),
    ("huge_binary", bytes.fromhex("836dffffffff00"), "truncated binary"),
    ("huge_string", bytes.fromhex("836bffff00"), "truncated string"),
    ("huge_big", bytes.fromhex("836fffffffff00"), "truncated big"),
    ("huge_atom", bytes.fromhex("8376ffff61"), "atom"),
    ("huge_bitstring", bytes.fromhex("834dffffffff0300"), "truncated bitstring"),
    ("nan", bytes.fromhex("83467ff8000000000000"), "non-finite"),
    ("infinity", bytes.fromhex("83467ff0000000000000"), "non-finite"),
    ("neg_infinity", bytes.fromhex("8346fff0000000000000"), "non-finite"),
    ("float_ext_nan", b"\x83c" + b"nan".ljust(31, b"\x00"), "non-finite"),
    ("float_ext_garbage", b"\x83c" + b"1.5zz".ljust(31, b"\x00"), "unparsable"),
    ("float_ext_underscore", b"\x83c" + b"1_5.0".ljust(31, b"\x00"), "unparsable"),
    ("bad_utf8_atom", bytes.fromhex("837702fffe"), "UTF-8"),
    ("surrogate_utf8_atom", bytes.fromhex("837703eda080"), "UTF-8"),
    ("atom_256_chars", b"\x83v\x01\x00" + b"a" * 256, "255 characters"),
    ("atom_ext_256_chars", b"\x83d\x01\x00" + b"a" * 256, "255 characters"),
    ("local_ext", bytes.fromhex("8379000000"), "LOCAL_EXT"),
    ("fun_ext", bytes.fromhex("8375000000"), "FUN_EXT"),
    ("unknown_tag", bytes.fromhex("8300"), "unknown term tag 0"),
    ("unknown_tag_255", bytes.fromhex("83ff"), "unknown term tag 255"),
    ("nested_version_byte", bytes.fromhex("83680183"), "version byte"),
    ("compressed_inside_term", bytes.fromhex("836801" + "50"), "compressed term"),
    ("duplicate_map_keys", bytes.fromhex("8374000000026101610161016102"), "duplicate keys"),
    ("duplicate_complex_map_keys", bytes.fromhex("83740000000268016101610168016101610a"), "duplicate keys"),
    ("bitstring_zero_bits", bytes.fromhex("834d0000000100ff"), "bit count 0"),
    ("bitstring_nine_bits", bytes.fromhex("834d0000000109ff"), "bit count 9"),
    ("empty_bitstring_with_bits", bytes.fromhex("834d0000000003"), "non-zero bit count"),
    ("big_sign_2", bytes.fromhex("836e010201"), "sign byte"),
    ("reference_6_words", bytes.fromhex("835a0006" + NODE_UTF8 + "00" * 28), "6 id words"),
    ("reference_0_words", bytes.fromhex("835a0000" + NODE_UTF8 + "00" * 4), "0 id words"),
    ("pid_with_non_atom_node", bytes.fromhex("83586101" + "00" * 12), "expected an atom"),
    ("export_with_big_arity", bytes.fromhex("8371" + "7701" + "6d" + "7701" + "66" + "62000000ff"), "arity"),
    ("compressed_over_limit", _compressed(2**31, b"a"), "over the"),
    ("compressed_short_payload", _compressed(10, b"\x61\x01"), "inflate to exactly"),
    (
        "compressed_long_payload",
        _compressed(2, b"\x6d" + b"\x00\x00\x03\xe8" + b"x" * 1000),
        "inflate to exactly",
    ),
    ("compressed_garbage", b"\x83P\x00\x00\x00\x02garbage", "zlib"),
    ("compressed_truncated_stream", _compressed(1000, b"x" * 1000)[:-4], "inflate to exactly"),
    ("compressed_trailing_term_bytes", _compressed(3, b"\x61\x01\x00"), "left after the term"),
]


@pytest.mark.parametrize(("data", "message"), [(d, m) for _, d, m in HOSTILE], ids=[n for n, _, _ in HOSTILE])
def test_hostile_input_raises_decode_error(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        binary_to_term(data)


def test_compression_bomb_is_refused_without_inflating_it() -> None:
    ten_mb_of_zeros = zlib.compress(b"\x6d" + b"\x00" * 10_000_000, 9)
    assert len(ten_mb_of_zeros) < 20_000
    lying = b"\x83P" + struct.pack(">I", 1000) + ten_mb_of_zeros
    with pytest.raises(DecodeError, match="inflate to exactly"):
        binary_to_term(lying)
    honest = b"\x83P" + struct.pack(">I", 10_000_001) + ten_mb_of_zeros
    with pytest.raises(DecodeError, match="over the"):
        binary_to_term(honest, max_uncompressed=10_000_000)
    with pytest.raises(DecodeError, match="over the"):
        binary_to_term(_compressed(2000, b"\x6d\x00\x00\x07\xcb" + b"x" * 1995), max_uncompressed=1000)


def _nested_lists(depth: int) -> bytes:
    return b"\x83" + b"l\x00\x00\x00\x01" * depth + b"j" + b"j" * depth


def test_nesting_up_to_the_limit_decodes() -> None:
    value = binary_to_term(_nested_lists(MAX_DEPTH - 1))
    for _ in range(MAX_DEPTH - 1):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == []


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000_000])
def test_nesting_beyond_the_limit_raises_decode_error(depth: int) -> None:
    with pytest.raises(DecodeError, match="nested deeper"):
        binary_to_term(_nested_lists(depth))


def test_deep_nesting_inside_map_keys_raises_decode_error_not_recursion_error() -> None:
    data = b"\x83" + b"t\x00\x00\x00\x01" * 300 + b"j" + b"a\x01" * 300
    with pytest.raises(DecodeError, match="unusable map key"):
        binary_to_term(data)


def test_deep_decoded_term_reencodes_identically() -> None:
    data = _nested_lists(5000)
    assert term_to_binary(binary_to_term(data)) == data


def test_encode_then_decode_at_offset_after_a_prefix() -> None:
    out = bytearray(b"\x83D\x00")
    encode(Map({Atom("a"): [1.5, ImproperList((1,), 2)]}), out)
    value, end = decode(out, 3)
    assert end == len(out)
    assert value == Map({Atom("a"): [1.5, ImproperList((1,), 2)]})


def test_mutated_valid_terms_only_ever_raise_decode_error() -> None:
    # Seeded fuzzing: flip, drop and insert bytes of valid encodings; anything but a value or a
    # DecodeError (IndexError, RecursionError, UnicodeError, MemoryError ...) is a bug.
    rng = random.Random(20261128)
    seeds = [term_to_binary(t) for t in TRUNCATION_TERMS] + [bytes.fromhex("83" + h) for _, h, _ in CASES]
    seeds.append(term_to_binary([b"x" * 100] * 10, compressed=True))
    for _ in range(50_000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            k = rng.randrange(len(data) + 1)
            op = rng.randrange(3)
            if op == 0 and k < len(data):
                data[k] = rng.randrange(256)
            elif op == 1 and k < len(data):
                del data[k]
            else:
                data.insert(k, rng.randrange(256))
        try:
            binary_to_term(bytes(data))
        except DecodeError:
            pass
