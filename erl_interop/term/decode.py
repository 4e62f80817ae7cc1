"""External Term Format decoder.

Owns: turning ETF bytes into Python values (``decode`` for one term at an offset, as found after a
distribution header; ``binary_to_term`` for a whole ``131``-prefixed, possibly compressed, binary).
Must not: do I/O, keep module-level mutable state, slice copies of the remaining buffer, trust any
length before checking it against the bytes that are left, or let a Python error other than
``DecodeError`` escape on bad input.

Theory of operation: two decoders with the same output.

* ``_fast_items`` (used first) decodes n consecutive terms with the common tags inline and one
  Python call per container; containers nested deeper than ``_FAST_DEPTH``, funs and rare tags are
  handed to the general decoder.
* ``_decode`` (the general one) is a single loop with an explicit stack of open containers (tuple,
  list, map, fun). A scalar is decoded in place and "delivered" to the innermost open container; a
  container that receives its last element is closed and delivered in turn. No Python recursion, so
  nesting is limited only by ``MAX_DEPTH``, checked when a container opens.

When the optional C accelerator ``_speedups`` is built (``setup.py``; skipped without a compiler)
and ERL_INTEROP_PURE_PYTHON is not set, ``decode`` asks it first. It decodes the common tags in C,
hands rare tags to ``_decode`` for that sub-term, builds atoms with ``_atom_from_raw`` (so they
are these atoms, remembered bytes included) and answers None for anything unusual; ``decode`` then
runs the Python path above, which gives the value or the exact ``DecodeError``.

A declared element count must not exceed the bytes left (every element takes at least one byte), so
hostile counts fail before any work. Truncation surfaces as ``IndexError``/``struct.error`` from the
buffer; ``decode`` then re-runs the general decoder, which turns it into a ``DecodeError`` carrying
the offset of the term being read.

Python values produced (see ``encode.py`` for the reverse):

* atoms: ``Atom`` remembering its exact bytes; ``true``/``false`` become ``True``/``False``;
  ``undefined`` and Elixir's ``nil`` stay ``Atom`` (so ``None`` is never produced);
* integers: ``int``; NEW_FLOAT_EXT: ``float``; FLOAT_EXT: a ``float`` subclass that re-encodes as
  FLOAT_EXT; NaN and infinities are refused;
* BINARY_EXT: ``bytes``; BIT_BINARY_EXT: ``BitString`` (``Len`` 0 / ``Bits`` 0 is ``b""``);
* tuples: ``tuple``; NIL_EXT: ``[]``; STRING_EXT: ``list[int]``; LIST_EXT: ``list`` or
  ``ImproperList``; MAP_EXT: ``Map`` keeping the wire order (duplicate keys are refused);
* NEW_PID_EXT/PID_EXT: ``Pid``; NEWER_REFERENCE_EXT/NEW_REFERENCE_EXT/REFERENCE_EXT: ``Reference``;
  NEW_PORT_EXT/V4_PORT_EXT/PORT_EXT: ``Port``; EXPORT_EXT: ``ExportFun``; NEW_FUN_EXT: ``OpaqueFun``.

Refused with ``DecodeError``: FUN_EXT (117, gone since OTP 23), LOCAL_EXT (121, only meaningful
inside the runtime that made it), ATOM_CACHE_REF without an atom cache, unknown tags, trailing
bytes (``binary_to_term``), and compressed payloads whose declared size exceeds the limit.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final

from erl_interop.errors import DecodeError
from erl_interop.term.types import (
    _PLAIN_KEYS,
    Atom,
    BitString,
    ExportFun,
    ImproperList,
    Map,
    OpaqueFun,
    Pid,
    Port,
    Reference,
    Term,
    _FloatExt,
    decoded_atom,
    freeze_key,
)

__all__ = ["MAX_DEPTH", "MAX_UNCOMPRESSED_SIZE", "binary_to_term", "decode"]

#: Deepest container nesting accepted (a hostile ``[[[[...]]]]`` fails cleanly instead).
MAX_DEPTH: Final = 10_000
#: Largest uncompressed size a compressed term (tag 80) may declare, by default.
MAX_UNCOMPRESSED_SIZE: Final = 64 * 1024 * 1024

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_I32 = struct.Struct(">i").unpack_from
_F64 = struct.Struct(">d").unpack_from
_PID = struct.Struct(">III").unpack_from
_OLD_PID = struct.Struct(">IIB").unpack_from
_PORT4 = struct.Struct(">II").unpack_from
_PORT8 = struct.Struct(">QI").unpack_from
_OLD_PORT = struct.Struct(">IB").unpack_from
_FUN_HEAD = struct.Struct(">IB16sII").unpack_from

# Open-container kinds on the decoder stack.
_K_TUPLE: Final = 0
_K_LIST: Final = 1
_K_MAP: Final = 2
_K_FUN: Final = 3

_SPECIAL_ATOMS: Final = {"true": True, "false": False}


class _BadAtom(ValueError):
    """An atom encoding that is not acceptable (raised inside the memoised parser)."""


@lru_cache(maxsize=4096)
def _atom_from_raw(raw: bytes) -> Any:
    """The value of one complete atom encoding ``raw`` (tag, length, text): ``Atom`` or a bool.

    A pure function of its argument, memoised (like ``re``'s pattern cache) because the same few
    atoms fill every message; the returned Atoms are immutable, so sharing them is invisible.
    """
    tag = raw[0]
    if tag == 119 or tag == 115:
        start = 2
        n = raw[1]
    else:
        start = 3
        n = (raw[1] << 8) | raw[2]
    if len(raw) != start + n:
        raise _BadAtom("truncated atom")
    if tag == 119 or tag == 118:
        if n > 1020:
            raise _BadAtom("atom longer than 255 characters")
        try:
            name = raw[start:].decode("utf-8")
        except UnicodeDecodeError:
            raise _BadAtom("atom is not valid UTF-8") from None
        old = False
    else:
        name = raw[start:].decode("latin-1")
        old = True
    if len(name) > 255:
        raise _BadAtom("atom longer than 255 characters")
    special = _SPECIAL_ATOMS.get(name)
    if special is not None:
        return special
    return decoded_atom(name, raw, old)


def _atom_value(data: Any, pos: int, end: int, is_bytes: bool) -> tuple[Any, int, Any]:
    """Validate the atom at ``pos`` (any of the four atom tags); return (value, next, cache key)."""
    tag = data[pos]
    q = pos + 2 + data[pos + 1] if tag == 119 or tag == 115 else pos + 3 + _U16(data, pos + 1)[0]
    if q > end:
        raise DecodeError("truncated atom", pos)
    raw = data[pos:q] if is_bytes else bytes(data[pos:q])
    try:
        return _atom_from_raw(raw), q, raw
    except _BadAtom as exc:
        raise DecodeError(str(exc), pos) from None


def _read_atom(
    data: Any, pos: int, end: int, is_bytes: bool, atoms: dict[Any, Any], cache: Sequence[Atom] | None
) -> tuple[Atom, int]:
    """Read an atom that must stay an ``Atom`` (node names, fun modules): never a bool."""
    tag = data[pos]
    if tag == 82:
        return _cached_atom(data, pos, cache), pos + 2
    if tag not in (119, 118, 100, 115):
        raise DecodeError(f"expected an atom, found tag {tag}", pos)
    value, q, raw = _atom_value(data, pos, end, is_bytes)
    atoms[raw] = value
    if type(value) is bool:
        return decoded_atom("true" if value else "false", raw, tag in (100, 115)), q
    atom: Atom = value
    return atom, q


def _cached_atom(data: Any, pos: int, cache: Sequence[Atom] | None) -> Atom:
    """ATOM_CACHE_REF: index into the refs of the current distribution header (erts doc §"Distribution
    Header")."""
    idx = data[pos + 1]
    if cache is None:
        raise DecodeError("ATOM_CACHE_REF outside a distribution message", pos)
    if idx >= len(cache):
        raise DecodeError(f"ATOM_CACHE_REF {idx} beyond the {len(cache)} header refs", pos)
    atom = cache[idx]
    if type(atom) is not Atom:
        raise DecodeError(f"atom cache entry {idx} is not an Atom", pos)
    return atom


def _read_small_int(data: Any, pos: int, end: int) -> tuple[int, int]:
    """An integer written as SMALL_INTEGER_EXT, INTEGER_EXT or SMALL_BIG_EXT (fun header fields)."""
    tag = data[pos]
    if tag == 97:
        return data[pos + 1], pos + 2
    if tag == 98:
        return _I32(data, pos + 1)[0], pos + 5
    if tag == 110:
        return _read_big(data, pos, end)
    raise DecodeError(f"expected an integer, found tag {tag}", pos)


def _read_big(data: Any, pos: int, end: int) -> tuple[int, int]:
    if data[pos] == 110:
        n = data[pos + 1]
        sign = data[pos + 2]
        start = pos + 3
    else:
        n = _U32(data, pos + 1)[0]
        sign = data[pos + 5]
        start = pos + 6
    q = start + n
    if q > end:
        raise DecodeError("truncated big integer", pos)
    if sign > 1:
        raise DecodeError(f"bad big integer sign byte {sign}", pos)
    v = int.from_bytes(data[start:q], "little")
    return (-v if sign else v), q


def _read_pid(
    data: Any, pos: int, end: int, is_bytes: bool, atoms: dict[Any, Any], cache: Sequence[Atom] | None
) -> tuple[Pid, int]:
    tag = data[pos]
    if tag == 88:
        node, p = _read_atom(data, pos + 1, end, is_bytes, atoms, cache)
        i, s, c = _PID(data, p)
        return Pid(node, i, s, c), p + 12
    if tag == 103:
        node, p = _read_atom(data, pos + 1, end, is_bytes, atoms, cache)
        i, s, c = _OLD_PID(data, p)
        return Pid(node, i, s, c), p + 9
    raise DecodeError(f"expected a pid, found tag {tag}", pos)


def _decode_other(
    data: Any, pos: int, end: int, is_bytes: bool, atoms: dict[Any, Any], cache: Sequence[Atom] | None
) -> tuple[Any, int]:
    """Decode one scalar term with a less common tag."""
    tag = data[pos]
    if tag == 100 or tag == 118 or tag == 115:
        value, q, raw = _atom_value(data, pos, end, is_bytes)
        atoms[raw] = value
        return value, q
    if tag == 82:
        atom = _cached_atom(data, pos, cache)
        special = _SPECIAL_ATOMS.get(atom.name)
        return (special if special is not None else atom), pos + 2
    if tag == 110 or tag == 111:
        return _read_big(data, pos, end)
    if tag == 88 or tag == 103:
        return _read_pid(data, pos, end, is_bytes, atoms, cache)
    if tag == 90 or tag == 114:
        n = _U16(data, pos + 1)[0]
        if not 1 <= n <= 5:
            raise DecodeError(f"reference with {n} id words (1..5 allowed)", pos)
        node, p = _read_atom(data, pos + 3, end, is_bytes, atoms, cache)
        if tag == 90:
            creation = _U32(data, p)[0]
            p += 4
        else:
            creation = data[p]
            p += 1
        if p + 4 * n > end:
            raise DecodeError("truncated reference", pos)
        ids = struct.unpack_from(f">{n}I", data, p)
        return Reference(node, creation, ids), p + 4 * n
    if tag == 101:
        node, p = _read_atom(data, pos + 1, end, is_bytes, atoms, cache)
        i, c = _OLD_PORT(data, p)
        return Reference(node, c, (i,)), p + 5
    if tag == 89:
        node, p = _read_atom(data, pos + 1, end, is_bytes, atoms, cache)
        i, c = _PORT4(data, p)
        return Port(node, i, c), p + 8
    if tag == 120:
        node, p = _read_atom(data, pos + 1, end, is_bytes, atoms, cache)
        i, c = _PORT8(data, p)
        return Port(node, i, c, v4=True), p + 12
    if tag == 102:
        node, p = _read_atom(data, pos + 1, end, is_bytes, atoms, cache)
        i, c = _OLD_PORT(data, p)
        return Port(node, i, c), p + 5
    if tag == 77:
        n = _U32(data, pos + 1)[0]
        bits = data[pos + 5]
        q = pos + 6 + n
        if q > end:
            raise DecodeError("truncated bitstring", pos)
        if n == 0:
            if bits != 0:
                raise DecodeError("empty bitstring with non-zero bit count", pos)
            return b"", q
        if not 1 <= bits <= 8:
            raise DecodeError(f"bitstring bit count {bits} outside 1..8", pos)
        return BitString(bytes(data[pos + 6 : q]), bits), q
    if tag == 99:
        q = pos + 32
        if q > end:
            raise DecodeError("truncated FLOAT_EXT", pos)
        text = bytes(data[pos + 1 : q]).split(b"\x00", 1)[0]
        try:
            if b"_" in text:
                raise ValueError(text)
            f = float(text)
        except ValueError:
            raise DecodeError("unparsable FLOAT_EXT text", pos) from None
        if f - f != 0.0:
            raise DecodeError("non-finite float", pos)
        return _FloatExt(f), q
    if tag == 113:
        module, p = _read_atom(data, pos + 1, end, is_bytes, atoms, cache)
        function, p = _read_atom(data, p, end, is_bytes, atoms, cache)
        if data[p] != 97:
            raise DecodeError("EXPORT_EXT arity is not a SMALL_INTEGER_EXT", p)
        return ExportFun(module, function, data[p + 1]), p + 2
    if tag == 117:
        raise DecodeError("FUN_EXT (117) is obsolete and not decodable since OTP 23", pos)
    if tag == 121:
        raise DecodeError("LOCAL_EXT (121) can only be decoded by the runtime that produced it", pos)
    if tag == 80:
        raise DecodeError("compressed term (80) is only allowed right after the 131 version byte", pos)
    if tag == 131:
        raise DecodeError("unexpected version byte 131 inside a term", pos)
    raise DecodeError(f"unknown term tag {tag}", pos)


def _finish_map(items: list[Any], pos: int) -> Map:
    keys_seq = items[0::2]
    n = len(keys_seq)
    if set(map(type, keys_seq)) <= _PLAIN_KEYS:
        d = dict(zip(keys_seq, items[1::2], strict=True))
        if len(d) != n:
            raise DecodeError("map with duplicate keys", pos)
        return Map._from_frozen(d, None)
    d = {}
    originals: dict[Any, Any] = {}
    for k, v in zip(keys_seq, items[1::2], strict=True):
        if type(k) in _PLAIN_KEYS:
            fk = k
        else:
            try:
                fk = freeze_key(k)
            except TypeError as exc:
                raise DecodeError(f"unusable map key: {exc}", pos) from None
            originals[fk] = k
        d[fk] = v
    if len(d) != n:
        raise DecodeError("map with duplicate keys", pos)
    return Map._from_frozen(d, originals or None)


def _finish_list(items: list[Any], pos: int) -> Any:
    tail = items.pop()
    if type(tail) is list:
        # OTP writes proper lists with a NIL tail; a list tail (only from other encoders) is spliced.
        if tail:
            items.extend(tail)
        return items
    return ImproperList(tuple(items), tail)


def _finish_fun(
    data: Any, extra: tuple[Any, ...], free: list[Any], pos: int, cache: Sequence[Atom] | None
) -> OpaqueFun:
    start, size, head, module, old_index, old_uniq, pid = extra
    if pos != start + 1 + size:
        raise DecodeError("NEW_FUN_EXT size field does not match its contents", start)
    if cache is None:
        return OpaqueFun(bytes(data[start:pos]))
    # The fun arrived after a distribution header and may hold ATOM_CACHE_REFs that mean nothing
    # outside this message: write it out again with every atom spelled out.
    from erl_interop.term.encode import encode  # encode never imports decode

    body = bytearray(head)
    for part in (module, old_index, old_uniq, pid, *free):
        encode(part, body)
    return OpaqueFun(b"p" + struct.pack(">I", len(body) + 4) + bytes(body))


def _decode(
    data: Any,
    pos: int,
    cache: Sequence[Atom] | None,
    max_depth: int = MAX_DEPTH,
    atoms: dict[Any, Any] | None = None,
) -> tuple[Any, int]:
    """The general decoder: one term at ``pos``, any tag, nesting up to ``max_depth``."""
    end = len(data)
    is_bytes = type(data) is bytes
    if atoms is None:
        atoms = {}
    atoms_get = atoms.get
    stack: list[tuple[Any, int, int, Any]] = []
    push = stack.append
    pop = stack.pop
    items: list[Any] | None = None
    remaining = 0
    kind = 0
    extra: Any = None
    u32 = _U32
    i32 = _I32
    f64 = _F64
    v: Any
    try:
        while True:
            tag = data[pos]
            if tag == 97:  # SMALL_INTEGER_EXT
                v = data[pos + 1]
                pos += 2
            elif tag == 119:  # SMALL_ATOM_UTF8_EXT
                q = pos + 2 + data[pos + 1]
                v = atoms_get(data[pos:q] if is_bytes else bytes(data[pos:q]))
                if v is None:
                    v, q, raw = _atom_value(data, pos, end, is_bytes)
                    atoms[raw] = v
                pos = q
            elif tag == 109:  # BINARY_EXT
                q = pos + 5 + u32(data, pos + 1)[0]
                if q > end:
                    raise DecodeError("truncated binary", pos)
                v = data[pos + 5 : q] if is_bytes else bytes(data[pos + 5 : q])
                pos = q
            elif tag == 104 or tag == 105:  # SMALL_TUPLE_EXT, LARGE_TUPLE_EXT
                if tag == 104:
                    n = data[pos + 1]
                    pos += 2
                else:
                    n = u32(data, pos + 1)[0]
                    pos += 5
                if n == 0:
                    v = ()
                else:
                    if n > end - pos:
                        raise DecodeError(f"tuple arity {n} exceeds the remaining bytes", pos)
                    if len(stack) >= max_depth:
                        raise DecodeError(f"term nested deeper than {MAX_DEPTH}", pos)
                    push((items, remaining, kind, extra))
                    items = []
                    remaining = n
                    kind = _K_TUPLE
                    continue
            elif tag == 106:  # NIL_EXT
                v = []
                pos += 1
            elif tag == 116:  # MAP_EXT
                n = u32(data, pos + 1)[0]
                start = pos
                pos += 5
                if n == 0:
                    v = Map._from_frozen({}, None)
                else:
                    if 2 * n > end - pos:
                        raise DecodeError(f"map arity {n} exceeds the remaining bytes", start)
                    if len(stack) >= max_depth:
                        raise DecodeError(f"term nested deeper than {MAX_DEPTH}", start)
                    push((items, remaining, kind, extra))
                    items = []
                    remaining = 2 * n
                    kind = _K_MAP
                    extra = start
                    continue
            elif tag == 108:  # LIST_EXT
                n = u32(data, pos + 1)[0]
                pos += 5
                if n + 1 > end - pos:
                    raise DecodeError(f"list length {n} exceeds the remaining bytes", pos - 5)
                if len(stack) >= max_depth:
                    raise DecodeError(f"term nested deeper than {MAX_DEPTH}", pos - 5)
                push((items, remaining, kind, extra))
                items = []
                remaining = n + 1
                kind = _K_LIST
                continue
            elif tag == 107:  # STRING_EXT
                q = pos + 3 + ((data[pos + 1] << 8) | data[pos + 2])
                if q > end:
                    raise DecodeError("truncated string", pos)
                v = list(data[pos + 3 : q])
                pos = q
            elif tag == 98:  # INTEGER_EXT
                v = i32(data, pos + 1)[0]
                pos += 5
            elif tag == 70:  # NEW_FLOAT_EXT
                v = f64(data, pos + 1)[0]
                if v - v != 0.0:
                    raise DecodeError("non-finite float (NaN or infinity)", pos)
                pos += 9
            elif tag == 112:  # NEW_FUN_EXT
                start = pos
                size, _arity, _uniq, _index, num_free = _FUN_HEAD(data, pos + 1)
                if start + 1 + size > end:
                    raise DecodeError("truncated NEW_FUN_EXT", start)
                head = bytes(data[pos + 5 : pos + 30])
                module, p = _read_atom(data, pos + 30, end, is_bytes, atoms, cache)
                old_index, p = _read_small_int(data, p, end)
                old_uniq, p = _read_small_int(data, p, end)
                pid, p = _read_pid(data, p, end, is_bytes, atoms, cache)
                pos = p
                fun_extra = (start, size, head, module, old_index, old_uniq, pid)
                if num_free == 0:
                    v = _finish_fun(data, fun_extra, [], pos, cache)
                else:
                    if num_free > end - pos:
                        raise DecodeError(f"fun with {num_free} free variables exceeds the bytes", start)
                    if len(stack) >= max_depth:
                        raise DecodeError(f"term nested deeper than {MAX_DEPTH}", start)
                    push((items, remaining, kind, extra))
                    items = []
                    remaining = num_free
                    kind = _K_FUN
                    extra = fun_extra
                    continue
            else:
                v, pos = _decode_other(data, pos, end, is_bytes, atoms, cache)
            # Deliver v to the innermost open container, closing every container it completes.
            while items is not None:
                items.append(v)
                remaining -= 1
                if remaining:
                    break
                if kind == _K_TUPLE:
                    v = tuple(items)
                elif kind == _K_MAP:
                    v = _finish_map(items, extra)
                elif kind == _K_LIST:
                    v = _finish_list(items, pos)
                else:
                    v = _finish_fun(data, extra, items, pos, cache)
                items, remaining, kind, extra = pop()
            else:
                return v, pos
    except (IndexError, struct.error):
        raise DecodeError("truncated term", pos) from None
    except ValueError as exc:  # from ImproperList/BitString validation on odd input
        raise DecodeError(f"invalid term: {exc}", pos) from None


# Nesting handled by the recursive fast path before it hands a subterm to the iterative decoder.
_FAST_DEPTH: Final = 48


def _fast_items(
    data: Any,
    pos: int,
    n: int,
    depth: int,
    end: int,
    is_bytes: bool,
    atoms: dict[Any, Any],
    cache: Sequence[Atom] | None,
) -> tuple[list[Any], int]:
    """Decode ``n`` consecutive terms from ``pos``: the fast path for well-formed input.

    Recursion is bounded by ``_FAST_DEPTH``; deeper containers, rare tags and anything needing an
    funs go to ``_decode``. Truncation shows up as IndexError/struct.error, which makes
    ``decode`` re-run the iterative decoder to report the exact offset.
    """
    items: list[Any] = []
    append = items.append
    u32 = _U32
    while n:
        n -= 1
        tag = data[pos]
        if tag == 119:  # SMALL_ATOM_UTF8_EXT
            q = pos + 2 + data[pos + 1]
            raw = data[pos:q] if is_bytes else bytes(data[pos:q])
            v = atoms.get(raw)
            if v is None:
                try:
                    v = _atom_from_raw(raw)
                except _BadAtom as exc:
                    raise DecodeError(str(exc), pos) from None
                atoms[raw] = v
            append(v)
            pos = q
        elif tag == 97:  # SMALL_INTEGER_EXT
            append(data[pos + 1])
            pos += 2
        elif tag == 109:  # BINARY_EXT
            q = pos + 5 + u32(data, pos + 1)[0]
            if q > end:
                raise DecodeError("truncated binary", pos)
            append(data[pos + 5 : q] if is_bytes else bytes(data[pos + 5 : q]))
            pos = q
        elif tag == 104 and depth < _FAST_DEPTH:  # SMALL_TUPLE_EXT
            k = data[pos + 1]
            if k:
                if k > end - pos:
                    raise DecodeError(f"tuple arity {k} exceeds the remaining bytes", pos)
                sub, pos = _fast_items(data, pos + 2, k, depth + 1, end, is_bytes, atoms, cache)
                append(tuple(sub))
            else:
                append(())
                pos += 2
        elif tag == 116 and depth < _FAST_DEPTH:  # MAP_EXT
            k = u32(data, pos + 1)[0]
            if k:
                if 2 * k > end - pos:
                    raise DecodeError(f"map arity {k} exceeds the remaining bytes", pos)
                start = pos
                sub, pos = _fast_items(data, pos + 5, 2 * k, depth + 1, end, is_bytes, atoms, cache)
                if set(map(type, sub[0::2])) <= _PLAIN_KEYS:
                    pairs = iter(sub)
                    d = dict(zip(pairs, pairs, strict=True))
                    if len(d) != k:
                        raise DecodeError("map with duplicate keys", start)
                    m = _new_map(Map)
                    m._d = d
                    m._keys = None
                    m._hash = None
                    append(m)
                else:
                    append(_finish_map(sub, start))
            else:
                append(Map._from_frozen({}, None))
                pos += 5
        elif tag == 106:  # NIL_EXT
            append([])
            pos += 1
        elif tag == 108 and depth < _FAST_DEPTH:  # LIST_EXT
            k = u32(data, pos + 1)[0]
            if k + 1 > end - pos:
                raise DecodeError(f"list length {k} exceeds the remaining bytes", pos)
            sub, pos = _fast_items(data, pos + 5, k + 1, depth + 1, end, is_bytes, atoms, cache)
            if type(sub[-1]) is list and not sub[-1]:
                sub.pop()
                append(sub)
            else:
                append(_finish_list(sub, pos))
        elif tag == 107:  # STRING_EXT
            q = pos + 3 + ((data[pos + 1] << 8) | data[pos + 2])
            if q > end:
                raise DecodeError("truncated string", pos)
            append(list(data[pos + 3 : q]))
            pos = q
        elif tag == 98:  # INTEGER_EXT
            append(_I32(data, pos + 1)[0])
            pos += 5
        elif tag == 70:  # NEW_FLOAT_EXT
            f = _F64(data, pos + 1)[0]
            if f - f != 0.0:
                raise DecodeError("non-finite float (NaN or infinity)", pos)
            append(f)
            pos += 9
        elif tag in _CONTAINER_TAGS:
            v, pos = _decode(data, pos, cache, MAX_DEPTH - depth, atoms)
            append(v)
        else:
            v, pos = _decode_other(data, pos, end, is_bytes, atoms, cache)
            append(v)
    return items, pos


_CONTAINER_TAGS: Final = frozenset({104, 105, 108, 112, 116})
_new_map = object.__new__


def decode(
    data: bytes | bytearray | memoryview, offset: int = 0, *, atom_cache: Sequence[Atom] | None = None
) -> tuple[Term, int]:
    """Decode one term (tag and data, no 131 version byte) starting at ``offset``.

    This is the form found after a distribution header. Reads by offset and never past the end.

    Args:
        data: the buffer.
        offset: where the term's tag byte is.
        atom_cache: the atoms of the current distribution header's refs, in ref order; needed to
            resolve ATOM_CACHE_REF (82), which refers to the n-th ref of the header.

    Returns:
        ``(term, next_offset)``: the term and the offset just past it.

    Raises:
        DecodeError: malformed, truncated, over-nested or unacceptable input; ``offset`` says where.
    """
    if type(data) is not bytes and type(data) is not bytearray:
        data = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    if not 0 <= offset < len(data):
        raise DecodeError("no term at offset (buffer too short)", offset)
    if _C_DECODER is not None:
        found = _C_DECODER.decode(data, offset, atom_cache)
        if found is not None:
            return found
    term: Term
    try:
        items, pos = _fast_items(data, offset, 1, 0, len(data), type(data) is bytes, {}, atom_cache)
    except (IndexError, struct.error, ValueError):
        pass  # malformed: the general decoder below reports exactly where
    else:
        term = items[0]
        return term, pos
    term, pos = _decode(data, offset, atom_cache)
    return term, pos


# The optional C accelerator (``_speedups.c``): same values as ``_fast_items``; it answers None for
# anything unusual and ``decode`` then runs the Python decoders, which give the exact error. Absent
# when it was not built (no compiler) or when ERL_INTEROP_PURE_PYTHON is set.
try:
    from erl_interop.term import _speedups
except ImportError:
    _C_DECODER: _speedups.Decoder | None = None
else:
    _C_DECODER = _speedups.Decoder(
        Atom=Atom,
        Map=Map,
        Pid=Pid,
        Reference=Reference,
        Port=Port,
        plain_keys=_PLAIN_KEYS,
        atom_from_raw=_atom_from_raw,
        finish_map=_finish_map,
        finish_list=_finish_list,
        general=_decode,
        max_depth=MAX_DEPTH,
    )


def binary_to_term(
    data: bytes | bytearray | memoryview, *, max_uncompressed: int = MAX_UNCOMPRESSED_SIZE
) -> Term:
    """The ``binary_to_term/1`` of a whole buffer: ``131``, then a term or a compressed term.

    Args:
        data: the complete external-format binary.
        max_uncompressed: refuse compressed terms (tag 80) declaring a larger uncompressed size.

    Returns:
        The decoded term.

    Raises:
        DecodeError: bad version byte, malformed/truncated term, bytes left after the term, or a
            compressed payload that is too large or does not inflate to exactly its declared size
            (offsets inside a compressed payload count from its uncompressed start).
    """
    if type(data) is not bytes and type(data) is not bytearray:
        data = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    end = len(data)
    if end < 2:
        raise DecodeError("too short for an external term", 0)
    if data[0] != 131:
        raise DecodeError(f"bad version byte {data[0]} (expected 131)", 0)
    if data[1] == 80:
        if end < 6:
            raise DecodeError("truncated compressed term header", 1)
        size = _U32(data, 2)[0]
        if size > max_uncompressed:
            raise DecodeError(f"compressed term declares {size} bytes, over the {max_uncompressed} limit", 2)
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(memoryview(data)[6:], size)
        except zlib.error as exc:
            raise DecodeError(f"bad zlib stream: {exc}", 6) from None
        if len(raw) != size or not inflater.eof or inflater.unused_data:
            raise DecodeError("compressed payload does not inflate to exactly its declared size", 6)
        if size == 0:
            raise DecodeError("empty compressed payload", 6)
        term: Term
        term, pos = decode(raw)
        if pos != size:
            raise DecodeError("bytes left after the term in the compressed payload", pos)
        return term
    term, pos = decode(data, 1)
    if pos != end:
        raise DecodeError(f"{end - pos} bytes left after the term", pos)
    return term
