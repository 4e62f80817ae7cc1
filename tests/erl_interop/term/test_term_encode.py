"""Encoder: Python values to exact external-format bytes, one case per tag and per Python type."""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from typing import Any, NamedTuple

import pytest

from erl_interop.errors import EncodeError
from erl_interop.term import (
    Atom,
    BitString,
    Charlist,
    ExportFun,
    ImproperList,
    Map,
    OpaqueFun,
    Pid,
    Port,
    Reference,
    canonical_bytes,
    encode,
    exact_equal,
    term_to_binary,
)
from erl_interop.term.encode import _encode

NODE = Atom("n@h")
NODE_BYTES = "77036e4068"  # SMALL_ATOM_UTF8_EXT 'n@h'


class Color(enum.IntEnum):
    RED = 300


class Point(NamedTuple):
    x: int
    y: int


# (value, hex of the bytes after the 131 version byte)
CASES: list[tuple[str, Any, str]] = [
    ("small_int_0", 0, "6100"),
    ("small_int_255", 255, "61ff"),
    ("integer_256", 256, "6200000100"),
    ("integer_neg1", -1, "62ffffffff"),
    ("integer_max", 2**31 - 1, "627fffffff"),
    ("integer_min", -(2**31), "6280000000"),
    ("small_big_2_31", 2**31, "6e040000000080"),
    ("small_big_neg", -(2**31) - 1, "6e040101000080"),
    ("small_big_2_64", 2**64, "6e09000000000000000000" + "01"),
    ("large_big", 2**2040, "6f00000100" + "00" + "00" * 255 + "01"),
    ("new_float", 1.5, "463ff8000000000000"),
    ("new_float_neg_zero", -0.0, "468000000000000000"),
    ("atom_utf8_small", Atom("ok"), "77026f6b"),
    ("atom_utf8_unicode", Atom("é"), "7702c3a9"),
    ("atom_utf8_long", Atom("α" * 200), "760190" + "ceb1" * 200),
    ("atom_empty", Atom(""), "7700"),
    ("true", True, "770474727565"),
    ("false", False, "770566616c7365"),
    ("none_is_undefined", None, "7709756e646566696e6564"),
    ("binary", b"ab", "6d000000026162"),
    ("binary_empty", b"", "6d00000000"),
    ("bytearray", bytearray(b"ab"), "6d000000026162"),
    ("memoryview", memoryview(b"ab"), "6d000000026162"),
    ("str_is_utf8_binary", "hé", "6d0000000368c3a9"),
    ("bitstring", BitString(b"\x20", 3), "4d000000010320"),
    ("bitstring_clears_padding", BitString(b"\xff", 3), "4d0000000103e0"),
    ("tuple_empty", (), "6800"),
    ("tuple_small", (1, Atom("a")), "68026101770161"),
    ("tuple_large", tuple(range(256)), "6900000100" + "".join(f"61{i:02x}" for i in range(256))),
    ("nil", [], "6a"),
    ("string", [104, 105], "6b00026869"),
    ("string_max", [7] * 65535, "6bffff" + "07" * 65535),
    ("list_over_string_max", [7] * 65536, "6c00010000" + "6107" * 65536 + "6a"),
    ("list_unicode_code_points", [1087, 1088], "6c00000002620000043f62000004406a"),
    ("list_with_bool_is_not_string", [1, True], "6c000000026101" + "770474727565" + "6a"),
    ("list_mixed", [1, (2,)], "6c000000026101680161026a"),
    ("charlist", Charlist("hé"), "6b000268e9"),
    ("charlist_unicode", Charlist("п"), "6c00000001620000043f6a"),
    ("improper", ImproperList((1, 2), 3), "6c00000002610161026103"),
    ("improper_alias", ImproperList((Atom("alias"),), Atom("x")), "6c000000017705616c696173770178"),
    ("map_empty", {}, "7400000000"),
    ("map_dict", {Atom("a"): 1}, "74000000017701616101"),
    ("map_keeps_order", {2: 0, 1: 0}, "7400000002" + "61026100" + "61016100"),
    (
        "map_type",
        Map([(1, Atom("a")), (1.0, Atom("b"))]),
        "7400000002" + "6101770161" + "463ff0000000000000770162",
    ),
    ("pid", Pid(NODE, 1, 2, 3), "58" + NODE_BYTES + "000000010000000200000003"),
    (
        "reference",
        Reference(NODE, 3, (1, 2, 3)),
        "5a0003" + NODE_BYTES + "00000003" + "000000010000000200000003",
    ),
    ("port", Port(NODE, 5, 1), "59" + NODE_BYTES + "0000000500000001"),
    ("port_v4_large_id", Port(NODE, 2**40, 1), "78" + NODE_BYTES + "0000010000000000" + "00000001"),
    ("port_v4_forced", Port(NODE, 5, 1, v4=True), "78" + NODE_BYTES + "0000000000000005" + "00000001"),
    ("port_v4_over_28_bits", Port(NODE, 2**28, 1), "78" + NODE_BYTES + "0000000010000000" + "00000001"),
    ("export", ExportFun(Atom("lists"), Atom("map"), 2), "71" + "77056c69737473" + "77036d6170" + "6102"),
    ("opaque_fun", OpaqueFun(bytes.fromhex("70000000ff")), "70000000ff"),
    ("int_enum", Color.RED, "620000012c"),
    ("named_tuple", Point(1, 2), "680261016102"),
    ("ordered_dict", OrderedDict([(Atom("a"), 1)]), "74000000017701616101"),
]


@pytest.mark.parametrize(("value", "expected"), [(v, e) for _, v, e in CASES], ids=[n for n, _, _ in CASES])
def test_value_encodes_to_exact_bytes(value: Any, expected: str) -> None:
    assert term_to_binary(value).hex() == "83" + expected


@pytest.mark.parametrize("value", [v for _, v, _ in CASES], ids=[n for n, _, _ in CASES])
def test_general_encoder_agrees_with_the_fast_path(value: Any) -> None:
    out = bytearray()
    _encode(value, out, 0)
    assert b"\x83" + bytes(out) == term_to_binary(value)


def test_encode_appends_without_version_byte() -> None:
    out = bytearray(b"\x00")
    encode((Atom("ok"), 1), out)
    assert bytes(out) == bytes.fromhex("00" + "6802" + "77026f6b" + "6101")


def test_minor_version_1_writes_latin1_atoms_as_atom_ext_and_others_as_utf8() -> None:
    term = (Atom("ä"), Atom("α"), True, None)
    assert term_to_binary(term, minor_version=1).hex() == (
        "83" + "6804" + "640001e4" + "7702ceb1" + "640004" + b"true".hex() + "640009" + b"undefined".hex()
    )


def test_minor_version_0_writes_floats_as_float_ext_text() -> None:
    text = b"1.50000000000000000000e+00".ljust(31, b"\x00")
    assert term_to_binary(1.5, minor_version=0) == b"\x83c" + text


def test_minor_version_2_writes_every_atom_as_utf8() -> None:
    assert term_to_binary([Atom("ä")], minor_version=2).hex() == "83" + "6c00000001" + "7702c3a4" + "6a"


def test_compression_is_used_only_when_smaller_like_erts() -> None:
    assert term_to_binary([1, 2, 3], compressed=True) == term_to_binary([1, 2, 3])
    big = b"\x00" * 1000
    packed = term_to_binary(big, compressed=True)
    assert packed[:6] == b"\x83P\x00\x00\x03\xed"
    assert len(packed) < 40


def test_compressed_level_zero_means_uncompressed() -> None:
    assert term_to_binary(b"\x00" * 1000, compressed=0) == term_to_binary(b"\x00" * 1000)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1.0, math.nan]])
def test_non_finite_floats_are_refused(value: Any) -> None:
    with pytest.raises(EncodeError, match="non-finite"):
        term_to_binary(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "cannot encode object"),
        ({1.5: 1, "x": {1, 2}}, "cannot encode set"),
        ("\ud800", "not valid Unicode"),
        (Reference(NODE, 1, ()), "1..5 id words"),
        (Reference(NODE, 1, (1, 2, 3, 4, 5, 6)), "1..5 id words"),
        (Pid(NODE, -1, 0, 0), "pid fields out of range"),
        (Pid(NODE, 2**32, 0, 0), "pid fields out of range"),
        (ExportFun(Atom("m"), Atom("f"), 256), "arity"),
        ({"a": 1, b"a": 2}, "equal Erlang terms"),
        ({True: 1, Atom("true"): 2}, "equal Erlang terms"),
        ({None: 1, Atom("undefined"): 2}, "equal Erlang terms"),
        ({(1, "x"): 1, (1, b"x"): 2}, "equal Erlang terms"),
    ],
)
def test_unencodable_values_raise_encode_error(value: Any, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        term_to_binary(value)


def test_atom_longer_than_255_characters_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="255"):
        Atom("x" * 256)


def test_deeply_nested_term_encodes_without_recursion_error() -> None:
    term: Any = []
    for _ in range(100_000):
        term = [term]
    data = term_to_binary(term)
    assert len(data) == 1 + 100_000 * 6 + 1


def test_canonical_bytes_ignore_map_order_and_atom_encoding() -> None:
    a = Map([(Atom("x"), 1), (Atom("y"), 2)])
    b = Map([(Atom("y"), 2), (Atom("x"), 1)])
    assert term_to_binary(a) != term_to_binary(b)
    assert canonical_bytes(a) == canonical_bytes(b)


def test_exact_equal_is_erlang_exact_equality() -> None:
    assert exact_equal((1, [2]), (1, [2]))
    assert not exact_equal(1, 1.0)
    assert not exact_equal(0.0, -0.0)
    assert not exact_equal(True, 1)
    assert exact_equal(True, Atom("true"))
    assert exact_equal("ab", b"ab")
    assert exact_equal(Charlist("ab"), [97, 98])
    assert exact_equal(BitString(b"ab", 8), b"ab")


def test_cyclic_value_raises_encode_error_instead_of_growing_forever() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(EncodeError, match="cyclic"):
        term_to_binary(cyclic)
