"""External Term Format encoder.

Owns: turning Python values into ETF bytes (``encode`` for distribution payloads, ``term_to_binary``
for the ``131``-prefixed, optionally compressed form) and the canonical encoding that Map keys use.
Must not: do I/O, keep module-level mutable state, or emit anything OTP 25-28 would refuse
(NaN/Inf floats, atoms over 255 characters, duplicate map keys, BIT_BINARY_EXT bits outside 1..8,
references with more than 5 words).

Theory of operation: two encoders with the same output in the default mode.

* ``_fast_encode`` (``encode``/``term_to_binary`` default) recurses once per container, with the
  common types inline; containers nested deeper than ``_FAST_DEPTH`` go to the general encoder.
* ``_encode`` (every mode) is one loop over a stack of iterators, so depth is bounded only by memory
  (no RecursionError). Each container pushes the iterator of its elements; lists iterate
  ``chain(items, (tail,))`` so the tail (``[]`` -> NIL_EXT) is just one more element.

When the optional C accelerator ``_speedups`` is built and ERL_INTEROP_PURE_PYTHON is not set, it
replaces ``_fast_encode`` at the top: it writes the common exact types in C and calls
``_fast_encode`` for every other value (subclasses, funs, bitstrings, out-of-range fields,
non-finite floats, maps whose keys may collide), so the bytes and errors are the same.

The type tests are ordered by how often a value shows up in real messages.

Which tag each Python value gets (erts doc, "External Term Format"):

* ``Atom``: the bytes it was decoded from, else SMALL_ATOM_UTF8_EXT (ATOM_UTF8_EXT over 255 bytes);
* ``True``/``False``/``None``: the atoms ``true``/``false``/``undefined``;
* ``int``: SMALL_INTEGER_EXT, INTEGER_EXT, SMALL_BIG_EXT or LARGE_BIG_EXT, the smallest that fits;
* ``float``: NEW_FLOAT_EXT (FLOAT_EXT for floats decoded from FLOAT_EXT);
* ``str``: BINARY_EXT of its UTF-8; ``bytes``/``bytearray``/``memoryview``: BINARY_EXT;
* ``tuple``: SMALL_TUPLE_EXT / LARGE_TUPLE_EXT; ``list``: NIL_EXT, STRING_EXT when every element
  is an int in 0..255 and there are at most 65535 (what OTP does), else LIST_EXT;
* ``dict``/``Map``: MAP_EXT, pairs in iteration order;
* ``Pid``: NEW_PID_EXT, ``Reference``: NEWER_REFERENCE_EXT, ``Port``: NEW_PORT_EXT or V4_PORT_EXT,
  ``BitString``: BIT_BINARY_EXT, ``ImproperList``: LIST_EXT with its tail, ``ExportFun``:
  EXPORT_EXT, ``OpaqueFun``: its stored NEW_FUN_EXT bytes.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import Any, Final

from erl_interop.errors import EncodeError
from erl_interop.term.types import (
    Atom,
    BitString,
    Encoded,
    ExportFun,
    ImproperList,
    Map,
    OpaqueFun,
    Pid,
    Port,
    Reference,
    Term,
    _FloatExt,
    freeze_key,
)

__all__ = ["canonical_bytes", "encode", "term_to_binary"]

# Encoder modes. DEFAULT keeps every remembered encoding (decoded atoms, FLOAT_EXT floats, map order);
# V1/V0/UTF8 reproduce OTP's term_to_binary ``{minor_version, 1 | 0 | 2}`` for every atom and float;
# CANONICAL is UTF8 plus maps sorted by encoded key, so equal terms encode to equal bytes.
_DEFAULT: Final = 0
_V1: Final = 1
_V0: Final = 2
_UTF8: Final = 3
_CANONICAL: Final = 4
_OLD_STYLE: Final = 5  # DEFAULT, but atoms not read from the wire (and booleans) in OTP 25's style
_MINOR_VERSION_MODE: Final = {0: _V0, 1: _V1, 2: _UTF8}

# Deeper than any decodable term (decode.MAX_DEPTH) by far; only a cyclic Python value gets here.
_MAX_ENCODE_DEPTH: Final = 200_000
_TOO_DEEP: Final = "term nested more than 200,000 deep (a cyclic list, tuple or dict?)"

# Python keys of one of these types that are distinct in a dict are distinct Erlang terms too.
_DISTINCT_KEY_TYPES: Final = frozenset({Atom, int, bytes, float, Pid, Reference, Port})
_STR_ONLY: Final = frozenset({str})

# Canonical encoding of a key recurses (only) through maps nested inside map keys.
_MAX_KEY_MAP_NESTING: Final = 100

_B_HDR = struct.Struct(">BI").pack  # tag + 4-byte length / arity
_B_INT = struct.Struct(">Bi").pack  # INTEGER_EXT
_B_FLOAT = struct.Struct(">Bd").pack  # NEW_FLOAT_EXT
_B_STR = struct.Struct(">BH").pack  # STRING_EXT
_B_BIG_SMALL = struct.Struct(">BBB").pack  # SMALL_BIG_EXT n, sign
_B_BIG_LARGE = struct.Struct(">BIB").pack  # LARGE_BIG_EXT n, sign
_B_PID = struct.Struct(">III").pack
_B_PORT4 = struct.Struct(">II").pack
_B_PORT8 = struct.Struct(">QI").pack
_B_REF_HDR = struct.Struct(">BH").pack
_B_U32 = struct.Struct(">I").pack

_SMALL_INT: Final = tuple(bytes((97, i)) for i in range(256))
_SMALL_TUPLE: Final = tuple(bytes((104, i)) for i in range(256))
_NIL: Final = b"j"
_NIL_TAIL: Final[tuple[list[Any]]] = ([],)


# true / false / undefined, indexed by mode
def _by_mode(name: bytes) -> tuple[bytes, ...]:
    utf8 = bytes((119, len(name))) + name
    latin1 = bytes((100, 0, len(name))) + name
    return (utf8, latin1, latin1, utf8, utf8, latin1)


_TRUE_BY_MODE: Final = _by_mode(b"true")
_FALSE_BY_MODE: Final = _by_mode(b"false")
_UNDEF_BY_MODE: Final = _by_mode(b"undefined")


class _Raw:
    """Already-encoded bytes spliced into the output (canonical map keys)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _atom_utf8(name: str) -> bytes:
    b = name.encode("utf-8")
    n = len(b)
    if n < 256:
        return bytes((119, n)) + b
    return b"v" + n.to_bytes(2, "big") + b


def _atom_slow(atom: Atom, mode: int) -> bytes:
    """Encoding of ``atom`` when the cached ``_ext`` does not apply (see Atom's slots)."""
    if mode == _DEFAULT:
        old = atom._old
        if old is not None:
            return old
        ext = _atom_utf8(atom.name)
        object.__setattr__(atom, "_ext", ext)
        return ext
    if mode == _OLD_STYLE:
        if atom._old is not None:
            return atom._old
        if atom._ext is not None:
            return atom._ext
    if mode in (_V1, _V0, _OLD_STYLE):
        # OTP 25 default (minor_version 1): ATOM_EXT when the name is Latin-1, else UTF-8 forms.
        name = atom.name
        try:
            b = name.encode("latin-1")
        except UnicodeEncodeError:
            return _atom_utf8(name)
        return b"d" + len(b).to_bytes(2, "big") + b
    return _atom_utf8(atom.name)


def _big(x: int) -> bytes:
    sign = 0
    if x < 0:
        sign = 1
        x = -x
    n = (x.bit_length() + 7) >> 3
    mag = x.to_bytes(n, "little")
    if n < 256:
        return _B_BIG_SMALL(110, n, sign) + mag
    if n > 0xFFFFFFFF:
        raise EncodeError("integer too large for LARGE_BIG_EXT")
    return _B_BIG_LARGE(111, n, sign) + mag


def _float_ext(x: float) -> bytes:
    # FLOAT_EXT: 31 bytes of C's "%.20e", NUL-padded (erts external.c); Python's %-formatting is
    # correctly rounded like glibc's printf, so the digits match.
    text = format(x, ".20e").encode("ascii")
    return b"c" + text + bytes(31 - len(text))


def _check_float(x: float) -> None:
    if x - x != 0.0:
        raise EncodeError(f"cannot encode non-finite float {x!r} (NaN/Inf are illegal in ETF)")


def _keys_stay_distinct(m: Mapping[Any, Any]) -> bool:
    """Whether distinct Python keys of ``m`` are surely distinct Erlang terms (cheap type test)."""
    key_types = set(map(type, m))
    return key_types <= _DISTINCT_KEY_TYPES or key_types == _STR_ONLY


def _map_pairs(m: Mapping[Any, Any], mode: int, nesting: int) -> Iterator[Any]:
    """Keys and values of a map, alternating, in the order they are to be written."""
    if mode == _CANONICAL:
        if nesting >= _MAX_KEY_MAP_NESTING:
            raise EncodeError("map keys nest maps too deeply")
        enc = sorted(
            ((_canonical_key(k, nesting + 1), v) for k, v in (m.pairs() if type(m) is Map else m.items())),
            key=lambda kv: kv[0],
        )
        return chain.from_iterable((_Raw(kb), v) for kb, v in enc)
    if type(m) is Map:
        return chain.from_iterable(m.pairs())
    if len(m) > 1 and not _keys_stay_distinct(m):
        # Distinct Python keys can be one Erlang key ("a" and b"a", True and Atom('true')).
        try:
            frozen = {freeze_key(k) for k in m}
        except TypeError as exc:
            raise EncodeError(str(exc)) from None
        if len(frozen) != len(m):
            raise EncodeError("map has keys that are equal Erlang terms")
    return chain.from_iterable(m.items())


def _canonical_key(k: Any, nesting: int) -> bytes:
    """Canonical bytes of a map key, short-cutting the common scalar keys."""
    t = type(k)
    if t is Atom:
        return _atom_utf8(k.name)
    if t is int and 0 <= k < 256:
        small: bytes = _SMALL_INT[k]
        return small
    if t is bytes:
        binary: bytes = _B_HDR(109, len(k)) + k
        return binary
    return _canonical(k, nesting)


def _encode_other(x: Any, out: bytearray, mode: int, nesting: int, seen: list[bool]) -> Iterator[Any] | None:
    """Encode the less common types; return an iterator of elements still to encode, if any.

    ``seen[0]`` is set when an atom is written in its remembered Latin-1 form.
    """
    t = type(x)
    if t is Pid:
        out += b"X"
        _encode_atom_into(x.node, out, mode, seen)
        try:
            out += _B_PID(x.id, x.serial, x.creation)
        except struct.error:
            raise EncodeError(f"pid fields out of range: {x!r}") from None
        return None
    if t is Reference:
        ids = x.ids
        if not 1 <= len(ids) <= 5:
            raise EncodeError(f"reference must have 1..5 id words, has {len(ids)}")
        out += _B_REF_HDR(90, len(ids))
        _encode_atom_into(x.node, out, mode, seen)
        try:
            out += _B_U32(x.creation)
            for i in ids:
                out += _B_U32(i)
        except struct.error:
            raise EncodeError(f"reference fields out of range: {x!r}") from None
        return None
    if t is Port:
        try:
            # OTP 25 writes NEW_PORT_EXT only for 28-bit port numbers (erts ERTS_MAX_V3_PORT_NUMBER);
            # OTP 26+ writes V4_PORT_EXT always. The canonical form ignores the remembered choice.
            if 0 <= x.id <= 0x0FFFFFFF and (not x.v4 or mode == _CANONICAL):
                out += b"Y"
                _encode_atom_into(x.node, out, mode, seen)
                out += _B_PORT4(x.id, x.creation)
            else:
                out += b"x"
                _encode_atom_into(x.node, out, mode, seen)
                out += _B_PORT8(x.id, x.creation)
        except struct.error:
            raise EncodeError(f"port fields out of range: {x!r}") from None
        return None
    if t is ImproperList:
        out += _B_HDR(108, len(x.items))
        return chain(x.items, (x.tail,))
    if t is BitString:
        data = x.data
        if mode == _CANONICAL and x.bits == 8:
            out += _B_HDR(109, len(data))
        else:
            out += _B_HDR(77, len(data))
            out.append(x.bits)
        out += data
        return None
    if t is ExportFun:
        if type(x.arity) is not int or not 0 <= x.arity <= 255:
            raise EncodeError(f"fun arity must be 0..255: {x!r}")
        out += b"q"
        _encode_atom_into(x.module, out, mode, seen)
        _encode_atom_into(x.function, out, mode, seen)
        out += _SMALL_INT[x.arity]
        return None
    if t is OpaqueFun:
        out += x.data
        return None
    if t is _Raw:
        out += x.data
        return None
    if t is Encoded:
        # Spliced as given: only the default modes may hold bytes we did not write ourselves.
        if mode != _DEFAULT and mode != _OLD_STYLE:
            raise EncodeError("an Encoded term can only be written in the default mode")
        out += x.data
        return None
    if t is _FloatExt:
        _check_float(x)
        out += _float_ext(x) if mode in (_DEFAULT, _V0, _OLD_STYLE) else _B_FLOAT(70, x)
        return None
    # Subclasses of the built-in types (IntEnum, StrEnum, NamedTuple, OrderedDict, Charlist ...).
    if isinstance(x, bool):
        out += _TRUE_BY_MODE[mode] if x else _FALSE_BY_MODE[mode]
        return None
    if isinstance(x, int):
        xi = int(x)
        if 0 <= xi < 256:
            out += _SMALL_INT[xi]
        else:
            out += _B_INT(98, xi) if -(1 << 31) <= xi < (1 << 31) else _big(xi)
        return None
    if isinstance(x, float):
        xf = float(x)
        _check_float(xf)
        out += _float_ext(xf) if mode == _V0 else _B_FLOAT(70, xf)
        return None
    if isinstance(x, str):
        b = _utf8(str(x))
        out += _B_HDR(109, len(b))
        out += b
        return None
    if isinstance(x, bytes | bytearray | memoryview):
        b = bytes(x)
        out += _B_HDR(109, len(b))
        out += b
        return None
    if isinstance(x, tuple):
        return _encode_tuple(tuple(x), out)
    if isinstance(x, list):
        return _encode_list(list(x), out)
    if isinstance(x, Mapping):
        out += _B_HDR(116, len(x))
        return _map_pairs(x, mode, nesting)
    raise EncodeError(f"cannot encode {t.__name__} value as an Erlang term: {x!r:.80}")


def _utf8(s: str) -> bytes:
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"str is not valid Unicode (lone surrogate?): {exc}") from None


def _encode_tuple(x: tuple[Any, ...], out: bytearray) -> Iterator[Any] | None:
    n = len(x)
    out += _SMALL_TUPLE[n] if n < 256 else _B_HDR(105, n)
    return iter(x) if n else None


def _encode_list(x: list[Any], out: bytearray) -> Iterator[Any] | None:
    n = len(x)
    if n == 0:
        out += _NIL
        return None
    if n <= 65535 and type(x[0]) is int and len(set(map(type, x))) == 1:
        try:
            b = bytes(x)
        except ValueError:
            pass
        else:
            out += _B_STR(107, n)
            out += b
            return None
    out += _B_HDR(108, n)
    return chain(x, _NIL_TAIL)


def _encode_atom_into(a: Any, out: bytearray, mode: int, seen: list[bool]) -> None:
    if type(a) is not Atom:
        if type(a) is bool:
            out += _TRUE_BY_MODE[mode] if a else _FALSE_BY_MODE[mode]
            return
        raise EncodeError(f"expected an Atom, got {type(a).__name__}")
    e = a._ext
    if e is None or mode:
        e = _atom_slow(a, mode)
        if e[0] == 100 or e[0] == 115:
            seen[0] = True
    out += e


def _encode(term: Any, out: bytearray, mode: int, nesting: int = 0) -> tuple[bool, bool]:
    """Append the encoding of ``term`` to ``out``; return (a Latin-1 atom was written, a bool was).

    The flags drive ``term_to_binary``'s automatic style: a term decoded from OTP 25's default
    ``term_to_binary`` has ATOM_EXT atoms, and then its ``true``/``false`` must be ATOM_EXT too.
    """
    stack: list[Iterator[Any]] = []
    push = stack.append
    pop = stack.pop
    it: Iterator[Any] = iter((term,))
    saw_old = False
    saw_bool = False
    seen = [False]
    small_int = _SMALL_INT
    small_tuple = _SMALL_TUPLE
    b_hdr = _B_HDR
    b_int = _B_INT
    b_float = _B_FLOAT
    b_str = _B_STR
    nil_tail = _NIL_TAIL
    while True:
        for x in it:
            t = type(x)
            if t is Atom:
                e = x._ext
                if e is None or mode:
                    e = _atom_slow(x, mode)
                    if e[0] == 100 or e[0] == 115:
                        saw_old = True
                out += e
            elif t is int:
                if 0 <= x < 256:
                    out += small_int[x]
                elif -2147483648 <= x <= 2147483647:
                    out += b_int(98, x)
                else:
                    out += _big(x)
            elif t is bytes:
                out += b_hdr(109, len(x))
                out += x
            elif t is tuple:
                n = len(x)
                out += small_tuple[n] if n < 256 else b_hdr(105, n)
                if n:
                    if len(stack) >= _MAX_ENCODE_DEPTH:
                        raise EncodeError(_TOO_DEEP)
                    push(it)
                    it = iter(x)
                    break
            elif t is list:
                n = len(x)
                if n == 0:
                    out += b"j"
                    continue
                if n <= 65535 and type(x[0]) is int and len(set(map(type, x))) == 1:
                    try:
                        b = bytes(x)
                    except ValueError:
                        pass
                    else:
                        out += b_str(107, n)
                        out += b
                        continue
                out += b_hdr(108, n)
                if len(stack) >= _MAX_ENCODE_DEPTH:
                    raise EncodeError(_TOO_DEEP)
                push(it)
                it = chain(x, nil_tail)
                break
            elif t is str:
                try:
                    b = x.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise EncodeError(f"str is not valid Unicode (lone surrogate?): {exc}") from None
                out += b_hdr(109, len(b))
                out += b
            elif t is float:
                if x - x != 0.0:
                    _check_float(x)
                out += b_float(70, x) if mode != _V0 else _float_ext(x)
            elif t is dict or t is Map:
                out += b_hdr(116, len(x))
                if x:
                    if len(stack) >= _MAX_ENCODE_DEPTH:
                        raise EncodeError(_TOO_DEEP)
                    push(it)
                    it = _map_pairs(x, mode, nesting)
                    break
            elif t is bool:
                saw_bool = True
                out += _TRUE_BY_MODE[mode] if x else _FALSE_BY_MODE[mode]
            elif x is None:
                saw_bool = True
                out += _UNDEF_BY_MODE[mode]
            else:
                sub = _encode_other(x, out, mode, nesting, seen)
                if sub is not None:
                    if len(stack) >= _MAX_ENCODE_DEPTH:
                        raise EncodeError(_TOO_DEEP)
                    push(it)
                    it = sub
                    break
        else:
            if not stack:
                return (saw_old or seen[0]), saw_bool
            it = pop()


# Nesting the recursive fast path handles before it hands a subterm to the iterative encoder.
_FAST_DEPTH: Final = 48


def _fast_encode(xs: Iterable[Any], out: bytearray, depth: int, flags: list[bool]) -> None:
    """Encode every element of ``xs`` in DEFAULT mode: the fast path for ``encode``/``term_to_binary``.

    Same output as ``_encode(..., _DEFAULT)``, with one Python call per container instead of an
    iterator stack; containers nested deeper than ``_FAST_DEPTH`` go to the iterative encoder.
    ``flags[0]``/``flags[1]``: a Latin-1 atom / a boolean or None was written (see ``_encode``).
    """
    small_int = _SMALL_INT
    b_hdr = _B_HDR
    for x in xs:
        t = type(x)
        if t is Atom:
            e = x._ext
            if e is None:
                e = _atom_slow(x, _DEFAULT)
                if e[0] == 100 or e[0] == 115:
                    flags[0] = True
            out += e
        elif t is int:
            if 0 <= x < 256:
                out += small_int[x]
            elif -2147483648 <= x <= 2147483647:
                out += _B_INT(98, x)
            else:
                out += _big(x)
        elif t is bytes:
            out += b_hdr(109, len(x))
            out += x
        elif t is tuple:
            n = len(x)
            out += _SMALL_TUPLE[n] if n < 256 else b_hdr(105, n)
            if n:
                if depth < _FAST_DEPTH:
                    _fast_encode(x, out, depth + 1, flags)
                else:
                    _deep_encode(iter(x), out, flags)
        elif t is dict or t is Map:
            out += b_hdr(116, len(x))
            if x:
                pairs: Iterator[Any]
                if t is Map and x._keys is None:
                    pairs = chain.from_iterable(x._d.items())
                elif t is dict and (len(x) == 1 or _keys_stay_distinct(x)):
                    pairs = chain.from_iterable(x.items())
                else:
                    pairs = _map_pairs(x, _DEFAULT, 0)
                if depth < _FAST_DEPTH:
                    _fast_encode(pairs, out, depth + 1, flags)
                else:
                    _deep_encode(pairs, out, flags)
        elif t is list:
            n = len(x)
            if n == 0:
                out += b"j"
                continue
            if n <= 65535 and type(x[0]) is int and len(set(map(type, x))) == 1:
                try:
                    b = bytes(x)
                except ValueError:
                    pass
                else:
                    out += _B_STR(107, n)
                    out += b
                    continue
            out += b_hdr(108, n)
            if depth < _FAST_DEPTH:
                _fast_encode(x, out, depth + 1, flags)
                out += b"j"
            else:
                _deep_encode(chain(x, _NIL_TAIL), out, flags)
        elif t is str:
            try:
                b = x.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise EncodeError(f"str is not valid Unicode (lone surrogate?): {exc}") from None
            out += b_hdr(109, len(b))
            out += b
        elif t is float:
            if x - x != 0.0:
                _check_float(x)
            out += _B_FLOAT(70, x)
        elif t is bool:
            flags[1] = True
            out += b"w\x04true" if x else b"w\x05false"
        elif x is None:
            flags[1] = True
            out += b"w\x09undefined"
        else:
            seen = [False]
            rest = _encode_other(x, out, _DEFAULT, 0, seen)
            if seen[0]:
                flags[0] = True
            if rest is not None:
                _fast_encode(rest, out, depth + 1, flags)


def _deep_encode(elements: Iterator[Any], out: bytearray, flags: list[bool]) -> None:
    """Hand the elements of a container nested beyond ``_FAST_DEPTH`` to the iterative encoder."""
    for x in elements:
        saw_old, saw_bool = _encode(x, out, _DEFAULT)
        flags[0] = flags[0] or saw_old
        flags[1] = flags[1] or saw_bool


# The optional C accelerator (``_speedups.c``): the output of ``_fast_encode``, which it calls for
# every value it does not handle itself. Absent when it was not built (no compiler) or when
# ERL_INTEROP_PURE_PYTHON is set.
try:
    from erl_interop.term import _speedups
except ImportError:
    _C_ENCODER: _speedups.Encoder | None = None
else:
    _C_ENCODER = _speedups.Encoder(
        Atom=Atom,
        Map=Map,
        Pid=Pid,
        Reference=Reference,
        Port=Port,
        atom_slow=_atom_slow,
        fast_encode=_fast_encode,
    )


def _canonical(term: Any, nesting: int) -> bytes:
    out = bytearray()
    _encode(term, out, _CANONICAL, nesting)
    return bytes(out)


def canonical_bytes(term: Term) -> bytes:
    """The canonical encoding of ``term`` (no 131 byte): equal for exactly equal Erlang terms.

    UTF-8 atoms, NEW_FLOAT_EXT floats, maps sorted by the canonical encoding of their keys. Used to
    compare terms with Erlang's ``=:=`` and as the frozen form of complex Map keys.

    Raises:
        EncodeError: the value is not encodable.
    """
    return _canonical(term, 0)


def encode(term: Term, out: bytearray) -> None:
    """Append the external format of ``term`` (tag and data, no 131 version byte) to ``out``.

    This is the form used inside distribution messages. Decoded atoms, floats and maps are written
    back exactly as they were read; see the module docstring for the tag of each Python type.

    Args:
        term: the value to encode.
        out: the buffer to append to. On error it may hold a partial encoding.

    Raises:
        EncodeError: the value (or something inside it) has no legal encoding.
    """
    if _C_ENCODER is not None and type(out) is bytearray:
        _C_ENCODER.encode(term, out, [False, False])
    else:
        _fast_encode((term,), out, 0, [False, False])


def term_to_binary(term: Term, *, compressed: bool | int = False, minor_version: int | None = None) -> bytes:
    """The ``term_to_binary/2`` of ``term``: ``131`` followed by the encoded term.

    Args:
        term: the value to encode.
        compressed: ``True`` for zlib level 6 (OTP's ``compressed``), an int 0..9 for that level
            (``{compressed, N}``; 0 means uncompressed). As in erts, the compressed form
            ``[131, 80, Size:32, Zlib]`` is used only when it is smaller than the plain one.
        minor_version: ``None`` (default) writes decoded atoms and floats back in the form they were
            read, so ``term_to_binary(binary_to_term(b)) == b`` for what OTP produced; 0, 1 or 2 write
            every atom and float as OTP's ``{minor_version, N}`` would (1 is OTP 25's default:
            Latin-1 atoms as ATOM_EXT; 2 is OTP 26+'s: UTF-8 atoms; 0 adds FLOAT_EXT floats).

    Returns:
        The external-format bytes.

    Raises:
        EncodeError: the value has no legal encoding.
        ValueError: bad ``compressed`` or ``minor_version`` value.
    """
    if minor_version is None:
        mode = _DEFAULT
    else:
        try:
            mode = _MINOR_VERSION_MODE[minor_version]
        except (KeyError, TypeError):
            raise ValueError(f"minor_version must be 0, 1 or 2, not {minor_version!r}") from None
    level = 6 if compressed is True else int(compressed)
    if not 0 <= level <= 9:
        raise ValueError(f"compression level must be 0..9, not {compressed!r}")
    out = bytearray(b"\x83")
    if mode == _DEFAULT:
        flags = [False, False]
        if _C_ENCODER is not None:
            _C_ENCODER.encode(term, out, flags)
        else:
            _fast_encode((term,), out, 0, flags)
        old_style_booleans = flags[0] and flags[1]
    else:
        saw_old, saw_bool = _encode(term, out, mode)
        old_style_booleans = saw_old and saw_bool
    if old_style_booleans:
        # A term decoded from OTP 25's default term_to_binary (ATOM_EXT atoms) mixed with booleans:
        # write the booleans as ATOM_EXT too, as OTP did.
        out = bytearray(b"\x83")
        _encode(term, out, _OLD_STYLE)
    if level:
        size = len(out) - 1
        # erts external.c: zlib gets an output buffer of size-5 bytes; if the stream does not fit,
        # the uncompressed form is kept.
        z = zlib.compress(memoryview(out)[1:], level)
        if len(z) <= size - 5:
            return b"\x83P" + _B_U32(size) + z
    return bytes(out)
