"""Map and Atom semantics: Erlang's exact equality for keys, Mapping behaviour, immutability."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Mapping

import pytest

from erl_interop.term import Atom, BitString, Charlist, ImproperList, Map, Pid, binary_to_term, term_to_binary


def test_one_float_and_true_are_three_distinct_keys() -> None:
    m = Map([(1, "int"), (1.0, "float"), (True, "bool")])
    assert len(m) == 3
    assert (m[1], m[1.0], m[True]) == ("int", "float", "bool")
    assert list(m) == [1, 1.0, True]
    assert [type(k) for k in m] == [int, float, bool]


def test_zero_and_negative_zero_are_distinct_keys() -> None:
    m = Map([(0.0, "pos"), (-0.0, "neg")])
    assert len(m) == 2
    assert m[-0.0] == "neg"


def test_unhashable_keys_are_allowed() -> None:
    m = Map([([1], "list"), (Map(), "map"), ({}, "dict replaces map"), (ImproperList((1,), 2), "improper")])
    assert len(m) == 3
    assert m[[1]] == "list"
    assert m[Map()] == "dict replaces map"
    assert m[{}] == "dict replaces map"
    assert m[ImproperList((1,), 2)] == "improper"
    assert [1] in m and [2] not in m


def test_tuple_keys_keep_element_types_apart() -> None:
    m = Map([((1,), "int"), ((1.0,), "float")])
    assert len(m) == 2
    assert m[(1.0,)] == "float"


def test_keys_that_are_the_same_erlang_term_collapse_last_wins() -> None:
    m = Map([("a", 1), (b"a", 2), (True, 3), (Atom("true"), 4), (None, 5), (Atom("undefined"), 6)])
    assert len(m) == 3
    assert m["a"] == m[b"a"] == 2
    assert m[True] == m[Atom("true")] == 4
    assert m[None] == 6
    assert list(m) == [b"a", Atom("true"), Atom("undefined")]


def test_charlist_and_bitstring_keys_match_their_plain_forms() -> None:
    m = Map([(Charlist("ab"), 1), (BitString(b"xy", 8), 2)])
    assert m[[97, 98]] == 1
    assert m[b"xy"] == 2


def test_atom_is_not_a_str_and_not_equal_to_one() -> None:
    assert not isinstance(Atom("a"), str)
    assert Atom("a") != "a"
    assert "a" != Atom("a")  # noqa: SIM300  (the reflected comparison is the point)
    assert Map([(Atom("a"), 1), ("a", 2)])[Atom("a")] == 1
    assert repr(Atom("a")) == "Atom('a')"
    assert Atom("a") == Atom("a") and hash(Atom("a")) == hash(Atom("a"))


def test_atom_is_immutable_and_picklable() -> None:
    a = Atom("x")
    with pytest.raises(AttributeError):
        a.name = "y"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.deepcopy(a) == a


def test_decoded_atom_equals_python_atom_whatever_its_encoding() -> None:
    latin1 = binary_to_term(bytes.fromhex("83640001e4"))
    utf8 = binary_to_term(bytes.fromhex("837702c3a4"))
    assert latin1 == utf8 == Atom("ä")
    assert hash(latin1) == hash(utf8) == hash(Atom("ä"))


def test_map_is_a_read_only_mapping() -> None:
    m = Map({Atom("a"): 1, "b": [2]})
    assert isinstance(m, Mapping)
    assert m.get(Atom("zz"), "dflt") == "dflt"
    assert m.get(Atom("a")) == 1
    assert list(m.keys()) == [Atom("a"), "b"]
    assert list(m.values()) == [1, [2]]
    assert list(m.items()) == [(Atom("a"), 1), ("b", [2])]
    with pytest.raises(KeyError):
        m[Atom("missing")]
    with pytest.raises(TypeError):
        m[Atom("a")] = 2  # type: ignore[index]


def test_map_equality_ignores_order_and_compares_with_dicts() -> None:
    a = Map([(Atom("x"), 1), (Atom("y"), [2])])
    b = Map([(Atom("y"), [2]), (Atom("x"), 1)])
    assert a == b and hash(a) == hash(b)
    assert a == {Atom("x"): 1, Atom("y"): [2]}
    assert a != Map([(Atom("x"), 1)])
    assert a != Map([(Atom("x"), 1), (Atom("z"), [2])])
    assert Map([(1, 0)]) != Map([(1.0, 0)])


def test_map_survives_pickle_and_repr_shows_pairs() -> None:
    m = Map([([1], Atom("a")), (2, 3)])
    assert pickle.loads(pickle.dumps(m)) == m
    assert repr(m) == "Map({[1]: Atom('a'), 2: 3})"


def test_map_with_many_keys_round_trips_in_its_order() -> None:
    pairs = [(i if i % 2 else float(i), Pid(Atom("n@h"), i, 0, 1)) for i in range(100)]
    m = Map(pairs)
    back = binary_to_term(term_to_binary(m))
    assert isinstance(back, Map)
    assert list(back.items()) == pairs


def test_improper_list_with_an_improper_tail_is_merged() -> None:
    assert ImproperList((1,), ImproperList((2, 3), 4)) == ImproperList((1, 2, 3), 4)
    assert term_to_binary(ImproperList((1,), ImproperList((2,), 3))) == term_to_binary(
        ImproperList((1, 2), 3)
    )
