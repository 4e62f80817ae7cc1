"""Differential tests: the C accelerator gives exactly what the pure-Python codec gives.

Random terms (Hypothesis) are encoded by both codecs, byte for byte the same, then decoded by both
from several encodings (default, ``minor_version`` 0/1/2, compressed, distribution form with atom
cache refs). Random byte mutations of those encodings must give the same value or the same
``DecodeError`` (message and offset) from both. "The same value" is checked structurally: types,
atom memory (``_ext``/``_old``), map order and key memory, FLOAT_EXT floats, port form.
Also: the C codec does not leak references or memory over many calls, valid or hostile.
"""

from __future__ import annotations

import gc
import importlib
import math
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erl_interop.errors import DecodeError, EncodeError
from erl_interop.term import (
    MAX_DEPTH,
    Atom,
    BitString,
    Charlist,
    ExportFun,
    ImproperList,
    Map,
    Pid,
    Port,
    Reference,
    binary_to_term,
    decode,
    encode,
    term_to_binary,
)
from erl_interop.term.types import _FloatExt

# (``erl_interop.term.decode`` the attribute is the function; the modules come from importlib)
decode_module: Any = importlib.import_module("erl_interop.term.decode")
encode_module: Any = importlib.import_module("erl_interop.term.encode")

pytestmark = pytest.mark.skipif(
    decode_module._C_DECODER is None or encode_module._C_ENCODER is None,
    reason="C accelerator erl_interop.term._speedups not built (or ERL_INTEROP_PURE_PYTHON set)",
)

NODES = [Atom("a@b"), Atom("py@vm"), Atom("ноды@хост")]
u32 = st.integers(0, 2**32 - 1)
atoms = st.text(max_size=8).map(Atom) | st.sampled_from([Atom("ok"), Atom("true"), Atom("false")])
leaves = st.one_of(
    st.integers() | st.integers(0, 255) | st.integers(-(2**31), 2**31),
    st.integers(0, 2200).flatmap(lambda b: st.integers(-(2**b), 2**b)),
    st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([-0.0, math.inf, math.nan]),
    atoms,
    st.booleans(),
    st.none(),
    st.binary(max_size=12),
    st.text(max_size=6) | st.just("\udc80"),
    st.builds(BitString, st.binary(min_size=1, max_size=4), st.integers(1, 8)),
    st.builds(Pid, st.sampled_from(NODES), u32, u32, u32) | st.just(Pid(NODES[0], -1, 0, 0)),
    st.builds(Reference, st.sampled_from(NODES), u32, st.lists(u32, min_size=1, max_size=5).map(tuple)),
    st.builds(Port, st.sampled_from(NODES), st.integers(0, 2**64 - 1), u32, v4=st.booleans()),
    st.just(ExportFun(Atom("lists"), Atom("map"), 2)),
    st.builds(Charlist, st.text(max_size=4)),
    st.sampled_from([_FloatExt(1.5), object(), bytearray(b"ba"), True, 2**64]),
)
finite = st.floats(allow_nan=False, allow_infinity=False)
key_leaves: st.SearchStrategy[Any] = st.one_of(
    st.integers(-3, 300), finite, atoms, st.booleans(), st.binary(max_size=2)
)
keys = st.one_of(key_leaves, st.lists(key_leaves, max_size=2), st.text(max_size=2))


def _containers(kids: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(kids, max_size=5),
        st.lists(kids, max_size=5).map(tuple),
        st.builds(
            ImproperList,
            st.lists(kids, min_size=1, max_size=3).map(tuple),
            kids.filter(lambda t: not isinstance(t, list)),
        ),
        st.lists(st.tuples(keys, kids), max_size=5).map(Map),
        st.dictionaries(keys.filter(lambda k: not isinstance(k, list)), kids, max_size=4),
    )


terms = st.recursive(leaves, _containers, max_leaves=12)


@contextmanager
def pure_python() -> Iterator[None]:
    saved = decode_module._C_DECODER, encode_module._C_ENCODER
    decode_module._C_DECODER = None
    encode_module._C_ENCODER = None
    try:
        yield
    finally:
        decode_module._C_DECODER, encode_module._C_ENCODER = saved


def outcome(f: Callable[[], Any]) -> Any:
    """The result of ``f()`` in comparable form, or the exception's type, text and offset."""
    try:
        return ("ok", shape(f()))
    except (DecodeError, EncodeError) as exc:
        return ("error", type(exc).__name__, str(exc), getattr(exc, "offset", None))


def shape(x: Any) -> Any:
    """A structural fingerprint: every type, value and remembered encoding (iterative, any depth)."""
    out: list[Any] = []
    stack = [x]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is Atom:
            out.append(("atom", v.name, v._ext, v._old))
        elif t is tuple or t is list:
            out.append((t.__name__, len(v)))
            stack.extend(v)
        elif t is Map:
            out.append(("map", list(v._d), v._keys))
            stack.extend(v.values())
        elif t is float or t is _FloatExt:
            out.append((t.__name__, v.hex()))
        elif t in (Pid, Reference, Port, ImproperList, ExportFun):
            out.append((t.__name__, repr(v), getattr(v, "v4", None)))
            if t is ImproperList:
                stack.extend(v.items)
                stack.append(v.tail)
        elif t in (bytes, int, bool, BitString) or v is None:
            out.append((t.__name__, v))
        else:
            out.append(("other", t.__name__, repr(v)))
    return out


def both(f: Callable[[], Any]) -> tuple[Any, Any]:
    fast = outcome(f)
    with pure_python():
        slow = outcome(f)
    return fast, slow


def encodings(term: Any) -> list[bytes]:
    found = []
    for kwargs in ({}, {"minor_version": 0}, {"minor_version": 1}, {"minor_version": 2}, {"compressed": 6}):
        try:
            found.append(term_to_binary(term, **kwargs))
        except EncodeError:
            pass
    return found


def encode_to_bytes(term: Any) -> bytes:
    out = bytearray(b"\x00")
    encode(term, out)
    return bytes(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms)
def test_c_and_python_encode_and_decode_random_terms_identically(term: Any) -> None:
    fast, slow = both(partial(term_to_binary, term))
    assert fast == slow
    fast, slow = both(partial(encode_to_bytes, term))
    assert fast == slow
    for data in encodings(term):
        fast, slow = both(partial(binary_to_term, data))
        assert fast == slow
        fast, slow = both(partial(decode, memoryview(data), 1))
        assert fast == slow


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(terms, st.data())
def test_c_and_python_agree_on_mutated_encodings(term: Any, data: st.DataObject) -> None:
    for blob in encodings(term)[:3]:
        buf = bytearray(blob)
        for _ in range(data.draw(st.integers(1, 3))):
            k = data.draw(st.integers(0, len(buf)))
            op = data.draw(st.integers(0, 2))
            if op == 0 and k < len(buf):
                buf[k] = data.draw(st.integers(0, 255))
            elif op == 1 and k < len(buf):
                del buf[k]
            else:
                buf.insert(k, data.draw(st.integers(0, 255)))
        mutated = bytes(buf)
        fast, slow = both(partial(binary_to_term, mutated))
        assert fast == slow
        fast, slow = both(partial(decode, mutated, 1))
        assert fast == slow


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*NODES, Atom("true"), Atom("x")]), min_size=1, max_size=4), st.data())
def test_c_and_python_resolve_atom_cache_refs_identically(cache: list[Atom], data: st.DataObject) -> None:
    idx = data.draw(st.integers(0, 5))
    for body in (
        bytes([82, idx]),
        bytes([104, 2, 82, idx, 97, 1]),
        bytes([88, 82, idx]) + bytes(12),
        bytes([90, 0, 1, 82, idx]) + bytes(8),
        bytes([89, 82, idx]) + bytes(8),
        bytes([120, 82, idx]) + bytes(12),
    ):
        fast, slow = both(partial(decode, body, 0, atom_cache=cache))
        assert fast == slow
        fast, slow = both(partial(decode, body, 0))
        assert fast == slow


@pytest.mark.parametrize(
    "body",
    [
        "6a",  # []
        "6c000000016101" + "6102",  # improper [1 | 2]
        "6c00000001610161",  # truncated tail
        "6c000000006a",  # LIST_EXT with no elements and a NIL tail
        "6c0000000061026a",  # LIST_EXT with no elements and tail 2: refused
        "6c00000001610a6b00020102",  # list whose tail is a string: spliced
        "740000000277016161017701616102",  # map with a duplicate key
        "7400000001" + "770474727565" + "6101",  # #{true => 1}
        "7400000001" + "6a" + "6101",  # #{[] => 1}
        "6e0102ff",  # bad big sign
        "6f00000000" + "00",  # LARGE_BIG_EXT zero
        "46" + "7ff0000000000000",  # +inf
        "77028080",  # bad UTF-8 atom
        "58" + "770474727565" + "00" * 12,  # pid whose node is 'true'
        "5a0000" + "7701" + "61" + "00" * 4,  # reference with 0 words
        "5a0006" + "7701" + "61" + "00" * 28,  # reference with 6 words
        "6d00000005" + "6162",  # truncated binary
        "6b0003" + "6162",  # truncated string
        "68ff",  # tuple arity beyond the bytes
        "69ffffffff",  # large tuple arity beyond the bytes
        "74ffffffff",  # map arity beyond the bytes
        "6cffffffff",  # list length beyond the bytes
        "83",  # version byte inside a term
        "75",  # FUN_EXT
        "63" + b"1.5".ljust(31, b"\x00").hex(),  # FLOAT_EXT: the Python decoder does it
        "4d0000000103e0",  # bitstring: the Python decoder does it
    ],
)
def test_c_and_python_agree_on_edge_case_bytes(body: str) -> None:
    raw = bytes.fromhex(body)
    fast, slow = both(partial(decode, raw))
    assert fast == slow
    fast, slow = both(partial(decode, bytearray(raw)))
    assert fast == slow


def test_c_and_python_agree_at_and_beyond_the_nesting_limit() -> None:
    for depth in (47, 48, 49, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1):
        opened = ((b"h\x01", b""), (b"l\x00\x00\x00\x01", b"j"), (b"t\x00\x00\x00\x01a\x01", b""))
        for open_tag, close in opened:
            data = open_tag * depth + b"j" + close * depth
            fast, slow = both(partial(decode, data))
            assert fast == slow
    deep: Any = []
    for i in range(3000):
        deep = [deep] if i % 3 else ({Atom("k"): deep},)
    fast, slow = both(partial(term_to_binary, deep))
    assert fast == slow


def test_c_codec_does_not_leak_references_or_memory() -> None:
    term: Any = (
        Atom("$gen_call"),
        (Pid(Atom("n@h"), 1, 2, 3), Reference(Atom("n@h"), 4, (5, 6, 7))),
        {Atom("k"): [b"v" * 40, 1.5, -(2**70), "s", None, True, Port(Atom("n@h"), 9, 1)], 7: Map({1: 2})},
        ImproperList((1,), Atom("tail")),
        [1, 2, 300],
        BitString(b"\xe0", 3),
    )
    good = term_to_binary(term)
    bad = [good[:k] for k in range(2, len(good), 5)]
    bad += [good[:-3] + b"\xff" + good[-2:], b"\x83t\x00\x00\x00\x02a\x01a\x01a\x01a\x02"]

    def run() -> None:
        binary_to_term(term_to_binary(term))
        for b in bad:
            try:
                binary_to_term(b)
            except DecodeError:
                pass

    for _ in range(20):
        run()
    gc.collect()
    refs_before = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else 0
    tracemalloc.start()
    try:
        for _ in range(30):
            run()
        gc.collect()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(150):
            run()
        gc.collect()
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 150 more rounds (a round trip of a ~300-byte term and ~60 hostile inputs each) keep no memory.
    assert second - first < 32 * 1024
    if refs_before:
        assert sys.gettotalrefcount() - refs_before < 1000
    node = decode_module._atom_from_raw(b"w\x03n@h")
    before = sys.getrefcount(node), sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(200):
        run()
    gc.collect()
    after = sys.getrefcount(node), sys.getrefcount(True), sys.getrefcount(None)
    assert [a - b < 50 for a, b in zip(after, before, strict=True)] == [True, True, True]
