"""Golden vectors: ``term_to_binary`` output of real OTP 25 and OTP 28 nodes, decoded and re-encoded.

Each expression below is evaluated by a real ``erl`` and encoded with several option sets. Every
binary must decode, and re-encode to the very same bytes:

* plain and ``{minor_version, 2}`` output: ``term_to_binary(binary_to_term(B)) == B``;
* ``[compressed]`` / ``{compressed, N}`` output: the same, passing ``compressed=N``;
* ``{minor_version, 0 | 1}`` output: the same, except when the only atoms are ``true``/``false``
  (Python bools cannot remember ATOM_EXT); ``minor_version=N`` reproduces every one of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from erl_interop.term import Atom, Map, binary_to_term, term_to_binary
from erl_interop.testing import ErlPeer, otp28_erl

# (name, Erlang expression). Covers every tag a node emits with term_to_binary.
EXPRESSIONS: list[tuple[str, str]] = [
    ("int_0", "0"),
    ("int_255", "255"),
    ("int_256", "256"),
    ("int_neg1", "-1"),
    ("int32_max", "2147483647"),
    ("int32_min", "-2147483648"),
    ("big_pos", "2147483648"),
    ("big_neg", "-2147483649"),
    ("big_2_64", "1 bsl 64"),
    ("big_neg_2_64", "-(1 bsl 64)"),
    ("small_big_255_bytes", "(1 bsl 2040) - 1"),
    ("large_big_256_bytes", "1 bsl 2040"),
    ("large_big_neg", "-(1 bsl 4000) - 12345"),
    ("float_zero", "0.0"),
    ("float_neg_zero", "-0.0"),
    ("float_1_5", "1.5"),
    ("float_pi", "math:pi()"),
    ("float_huge_neg", "-1.0e300"),
    ("float_denormal", "5.0e-324"),
    ("float_1e15", "1.0e15"),
    ("float_odd", "123456789.123"),
    ("atom_a", "a"),
    ("atom_empty", "''"),
    ("atom_true", "true"),
    ("atom_false", "false"),
    ("atom_undefined", "undefined"),
    ("atom_nil", "nil"),
    ("atom_space", "'hello world'"),
    ("atom_latin1", "'\\x{e4}bc'"),
    ("atom_greek", "list_to_atom([16#3b1, 16#3b2, 16#3b3])"),
    ("atom_255_latin1", "list_to_atom(lists:duplicate(255, $x))"),
    ("atom_255_greek", "list_to_atom(lists:duplicate(255, 16#3b1))"),
    ("atom_elixir_module", "'Elixir.Foo.Bar'"),
    ("atom_emoji", "list_to_atom([16#1F600])"),
    ("bin_empty", "<<>>"),
    ("bin_abc", '<<"abc">>'),
    ("bin_all_bytes", "list_to_binary(lists:seq(0, 255))"),
    ("bin_1000_zeros", "<<0:8000>>"),
    ("bits_3", "<<1:3>>"),
    ("bits_13", "<<255, 7:5>>"),
    ("bits_1", "<<1:1>>"),
    ("bits_15", '<<"x", 1:7>>'),
    ("tuple_empty", "{}"),
    ("tuple_1", "{a}"),
    ("tuple_3", "{1, 2, 3}"),
    ("tuple_300", "list_to_tuple(lists:seq(1, 300))"),
    ("tuple_nested", "{{{{}}}}"),
    ("nil", "[]"),
    ("list_ints", "[1, 2, 3]"),
    ("string", '"hello"'),
    ("string_latin1", '"h\\x{e9}llo"'),
    ("list_unicode", "[1087, 1088]"),
    ("list_mixed", '[1.5, a, <<"b">>, {c}, "d"]'),
    ("list_nested", "[[1], [2, [3]], []]"),
    ("list_of_nils", "[[], [], []]"),
    ("improper_atom", "[a | b]"),
    ("improper_ints", "[1, 2 | 3]"),
    ("improper_alias", "[alias | make_ref()]"),
    ("improper_nested", "[[1 | 2] | {3}]"),
    ("string_65535", "lists:duplicate(65535, 7)"),
    ("list_65536_bytes", "lists:duplicate(65536, 7)"),
    ("list_big_ints", "[1 bsl 70, -(1 bsl 70)]"),
    ("map_empty", "#{}"),
    ("map_one", "#{a => 1}"),
    (
        "map_mixed_keys",
        '#{1 => a, 1.0 => b, true => c, [1] => d, #{} => e, {x} => f, <<"b">> => g, "s" => h}',
    ),
    ("map_32_keys", "maps:from_list([{I, I * I} || I <- lists:seq(1, 32)])"),
    ("map_33_keys", "maps:from_list([{I, I * I} || I <- lists:seq(1, 33)])"),
    ("map_40_int_keys", "maps:from_list([{I, I * I} || I <- lists:seq(1, 40)])"),
    (
        "map_50_atom_keys",
        'maps:from_list([{list_to_atom("k" ++ integer_to_list(I)), I} || I <- lists:seq(1, 50)])',
    ),
    (
        "map_100_mixed_keys",
        "maps:from_list([{case I rem 3 of 0 -> I; 1 -> float(I); 2 -> {I} end, I}"
        " || I <- lists:seq(1, 100)])",
    ),
    ("map_map_keys", "#{#{a => 1} => #{b => [#{}]}, [] => [], {} => {}}"),
    ("map_elixir_struct", "#{'__struct__' => 'Elixir.Foo', a => nil, b => true}"),
    ("map_nested_big", "maps:from_list([{I, #{I => [I]}} || I <- lists:seq(1, 35)])"),
    ("pid_self", "self()"),
    ("pid_tuple", "{self(), self()}"),
    ("pid_listed", 'list_to_pid("<0.100.200>")'),
    ("ref", "make_ref()"),
    ("ref_alias", "alias()"),
    ("ref_monitor", "erlang:monitor(process, self())"),
    ("port", "hd(erlang:ports())"),
    ("export_fun", "fun lists:map/2"),
    ("export_fun_self", "fun erlang:self/0"),
    ("local_fun", "fun(X) -> X + 1 end"),
    ("local_fun_closure", "(fun() -> Y = 5, fun(Z) -> Z + Y end end)()"),
    ("call_tag", "{'$gen_call', {self(), [alias | make_ref()]}, {get, <<\"k\">>}}"),
    ("bools_only", "[true, false, {true}]"),
    ("bools_and_atoms", "{true, ok, false}"),
    ("deep_list", "lists:foldl(fun(_, A) -> [A] end, [], lists:seq(1, 200))"),
    ("deep_tuple", "lists:foldl(fun(_, A) -> {A} end, {}, lists:seq(1, 200))"),
    ("compressible", 'lists:duplicate(500, {<<"abcdefgh">>, 1.5, hello})'),
    ("compressible_bin", "<<0:80000>>"),
    ("record_like", '{state, undefined, [], #{}, <<"x">>, 3.0, {1, 2}}'),
    (
        "monster",
        '{ok, [#{a => {1, 2.5, <<"x">>, [c | d]}, "s" => [$a, 300]}], {<<1:5>>, -7, 1 bsl 90}, self()}',
    ),
]

# Option sets: (label, Erlang option list, keyword arguments that reproduce the bytes).
OPTIONS: list[tuple[str, str, dict[str, object]]] = [
    ("default", "[]", {}),
    ("minor0", "[{minor_version, 0}]", {}),
    ("minor1", "[{minor_version, 1}]", {}),
    ("minor2", "[{minor_version, 2}]", {}),
    ("compressed", "[compressed]", {"compressed": True}),
    ("compressed1", "[{compressed, 1}]", {"compressed": 1}),
    ("compressed9", "[{compressed, 9}]", {"compressed": 9}),
]
EXPLICIT_MINOR = {"minor0": 0, "minor1": 1, "minor2": 2}

# Terms whose only atoms are booleans: written as ATOM_EXT they cannot be told apart after decoding.
BOOL_ONLY = {"atom_true", "atom_false", "bools_only"}


def _fetch(erl: str | None, tag: str) -> dict[tuple[str, str], bytes]:
    """Evaluate every expression on a fresh real node; map (name, option label) -> bytes."""
    opts = ", ".join(o for _, o, _ in OPTIONS)
    with ErlPeer(f"golden{tag}{os.getpid()}", "goldencookie", erl=erl) as peer:
        found: dict[tuple[str, str], bytes] = {}
        for i, (name, expr) in enumerate(EXPRESSIONS):
            result = peer.eval_result(f"T{i} = ({expr}), [term_to_binary(T{i}, O) || O <- [{opts}]].")
            bins = binary_to_term(result.etf)
            assert isinstance(bins, list) and len(bins) == len(OPTIONS), (name, result.text)
            for (label, _, _), b in zip(OPTIONS, bins, strict=True):
                assert isinstance(b, bytes)
                found[(name, label)] = b
        return found


@pytest.fixture(scope="module")
def otp25_vectors() -> dict[tuple[str, str], bytes]:
    return _fetch(None, "a")


@pytest.fixture(scope="module")
def otp28_vectors() -> dict[tuple[str, str], bytes]:
    return _fetch(otp28_erl(), "b")


def _kwargs(label: str) -> dict[str, object]:
    return next(kw for lab, _, kw in OPTIONS if lab == label)


def _roundtrip_failures(vectors: dict[tuple[str, str], bytes]) -> Iterator[str]:
    for (name, label), b in vectors.items():
        term = binary_to_term(b)
        again = term_to_binary(term, **_kwargs(label))  # type: ignore[arg-type]
        if again == b:
            continue
        if name in BOOL_ONLY and label != "minor2":
            continue  # checked with an explicit minor_version below
        yield f"{name}/{label}: {b.hex()} != {again.hex()}"


def _explicit_minor_failures(vectors: dict[tuple[str, str], bytes]) -> Iterator[str]:
    for (name, label), b in vectors.items():
        if label in EXPLICIT_MINOR:
            again = term_to_binary(binary_to_term(b), minor_version=EXPLICIT_MINOR[label])
            if again != b:
                yield f"{name}/{label}: {b.hex()} != {again.hex()}"


@pytest.mark.erlang
def test_every_otp25_golden_vector_reencodes_byte_exact(otp25_vectors: dict[tuple[str, str], bytes]) -> None:
    assert len(otp25_vectors) == len(EXPRESSIONS) * len(OPTIONS)
    assert list(_roundtrip_failures(otp25_vectors)) == []


@pytest.mark.erlang
def test_every_otp25_golden_vector_reencodes_byte_exact_with_its_minor_version(
    otp25_vectors: dict[tuple[str, str], bytes],
) -> None:
    assert list(_explicit_minor_failures(otp25_vectors)) == []


@pytest.mark.erlang
def test_otp25_default_booleans_need_minor_version_1_to_reencode_exactly(
    otp25_vectors: dict[tuple[str, str], bytes],
) -> None:
    b = otp25_vectors[("bools_only", "default")]
    assert b == bytes.fromhex("836c000000036400047472756564000566616c7365680164000474727565" + "6a")
    assert binary_to_term(b) == [True, False, (True,)]
    assert term_to_binary([True, False, (True,)], minor_version=1) == b


@pytest.mark.erlang
def test_otp25_golden_vectors_decode_to_the_expected_python_values(
    otp25_vectors: dict[tuple[str, str], bytes],
) -> None:
    def value(name: str) -> object:
        return binary_to_term(otp25_vectors[(name, "default")])

    assert value("big_neg_2_64") == -(1 << 64)
    assert value("large_big_256_bytes") == 1 << 2040
    assert repr(value("float_neg_zero")) == "-0.0"
    assert value("atom_greek") == Atom("αβγ")
    assert value("atom_nil") == Atom("nil")
    assert value("atom_undefined") == Atom("undefined")
    assert value("string_latin1") == [104, 233, 108, 108, 111]
    assert value("list_unicode") == [1087, 1088]
    assert value("map_mixed_keys") == Map(
        [
            (1, Atom("a")),
            (1.0, Atom("b")),
            (True, Atom("c")),
            ([1], Atom("d")),
            (Map(), Atom("e")),
            ((Atom("x"),), Atom("f")),
            (b"b", Atom("g")),
            ([115], Atom("h")),
        ]
    )
    mixed = value("map_mixed_keys")
    assert isinstance(mixed, Map)
    assert (mixed[1], mixed[1.0], mixed[True], mixed[[1]], mixed[{}]) == tuple(map(Atom, "abcde"))
    big = value("map_40_int_keys")
    assert isinstance(big, Map) and dict(big.items()) == {i: i * i for i in range(1, 41)}


@pytest.mark.erlang
def test_every_otp28_golden_vector_reencodes_byte_exact(otp28_vectors: dict[tuple[str, str], bytes]) -> None:
    assert len(otp28_vectors) == len(EXPRESSIONS) * len(OPTIONS)
    assert list(_roundtrip_failures(otp28_vectors)) == []


@pytest.mark.erlang
def test_every_otp28_golden_vector_reencodes_byte_exact_with_its_minor_version(
    otp28_vectors: dict[tuple[str, str], bytes],
) -> None:
    assert list(_explicit_minor_failures(otp28_vectors)) == []
