"""Python types for Erlang terms that have no exact built-in Python counterpart.

Owns: ``Atom``, ``Pid``, ``Reference``, ``Port``, ``BitString``, ``ImproperList``, ``ExportFun``,
``OpaqueFun``, ``Encoded``, ``Map``, ``Charlist`` and the ``Term`` type alias. Must not: encode or
decode bytes (``encode.py`` / ``decode.py`` do), do I/O, or keep any module-level mutable state.

Equality follows Erlang's exact equality (``=:=``) wherever Python lets us: ``Atom('a') != 'a'``,
and ``Map`` keeps ``1``, ``1.0`` and ``true`` apart as keys. Values that remember how they were
encoded (``Atom`` and floats read from ``FLOAT_EXT``) never let that memory affect ``==``/``hash``.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeAlias

__all__ = [
    "Atom",
    "BitString",
    "Charlist",
    "Encoded",
    "ExportFun",
    "ImproperList",
    "Map",
    "OpaqueFun",
    "Pid",
    "Port",
    "Reference",
    "Term",
]


class Atom:
    """An Erlang atom. Not a ``str``: ``Atom('ok') != 'ok'``.

    Frozen and hashable; equality and hash depend on ``name`` only. A decoded atom remembers the exact
    bytes it arrived in (``ATOM_EXT``, ``SMALL_ATOM_UTF8_EXT`` …) so that re-encoding it reproduces
    them; an atom built in Python encodes as ``SMALL_ATOM_UTF8_EXT`` (``ATOM_UTF8_EXT`` when longer
    than 255 bytes).

    Args:
        name: the atom text, at most 255 characters (erts ``MAX_ATOM_CHARACTERS``).

    Raises:
        TypeError: ``name`` is not a ``str``.
        ValueError: ``name`` is longer than 255 characters.
    """

    __slots__ = ("_ext", "_old", "name")

    name: str
    # Encoded form (tag + length + text) emitted by the default encoder: the exact bytes of a decoded
    # SMALL_ATOM_UTF8_EXT/ATOM_UTF8_EXT atom, or a lazily filled UTF-8 cache for atoms built in Python.
    _ext: bytes | None
    # The exact bytes of an atom decoded from the Latin-1 forms (ATOM_EXT/SMALL_ATOM_EXT), else None.
    _old: bytes | None

    def __init__(self, name: str) -> None:
        if type(name) is not str:
            if not isinstance(name, str):
                raise TypeError(f"Atom name must be a str, not {type(name).__name__}")
            name = str(name)
        if len(name) > 255:
            raise ValueError(f"atom longer than 255 characters ({len(name)})")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "_ext", None)
        object.__setattr__(self, "_old", None)

    def __setattr__(self, key: str, value: object) -> NoReturn:
        raise AttributeError(f"Atom is immutable (cannot set {key!r})")

    def __delattr__(self, key: str) -> NoReturn:
        raise AttributeError(f"Atom is immutable (cannot delete {key!r})")

    def __eq__(self, other: object) -> bool:
        if type(other) is Atom:
            return self.name == other.name
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if type(other) is Atom:
            return self.name != other.name
        return NotImplemented

    def __lt__(self, other: Atom) -> bool:
        if type(other) is Atom:
            return self.name < other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Atom({self.name!r})"

    def __str__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple[type[Atom], tuple[str]]:
        return (Atom, (self.name,))


def decoded_atom(name: str, ext: bytes, old: bool) -> Atom:
    """Build an Atom that remembers its wire bytes (used by the decoder only).

    Args:
        name: the validated atom text.
        ext: the complete encoding it arrived in (tag, length, text).
        old: ``ext`` is a Latin-1 form (ATOM_EXT/SMALL_ATOM_EXT).
    """
    atom = object.__new__(Atom)
    osa = object.__setattr__
    osa(atom, "name", name)
    if old:
        osa(atom, "_ext", None)
        osa(atom, "_old", ext)
    else:
        osa(atom, "_ext", ext)
        osa(atom, "_old", None)
    return atom


@dataclass(frozen=True, slots=True)
class Pid:
    """An Erlang process identifier (``NEW_PID_EXT``); compared on every field."""

    node: Atom
    id: int
    serial: int
    creation: int


@dataclass(frozen=True, slots=True)
class Reference:
    """An Erlang reference (``NEWER_REFERENCE_EXT``); ``ids`` holds 1 to 5 32-bit words."""

    node: Atom
    creation: int
    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Port:
    """An Erlang port identifier (``NEW_PORT_EXT``, or ``V4_PORT_EXT`` for ids over 28 bits).

    ``v4`` (not part of equality) forces ``V4_PORT_EXT`` for small ids too: OTP 26+ writes every
    port that way, and a decoded port remembers which form it came in.
    """

    node: Atom
    id: int
    creation: int
    v4: bool = field(default=False, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class BitString:
    """A bitstring whose size is not a whole number of bytes (``BIT_BINARY_EXT``).

    ``bits`` is how many bits of the last byte are used, counted from its most significant bit
    (1..8). The unused low bits are cleared on construction, as Erlang ignores them.

    Raises:
        ValueError: ``bits`` outside 1..8 or ``data`` empty.
    """

    data: bytes
    bits: int

    def __post_init__(self) -> None:
        bits = self.bits
        data = self.data
        if type(bits) is not int or not 1 <= bits <= 8:
            raise ValueError(f"BitString bits must be 1..8, not {bits!r}")
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
            raise ValueError("BitString data must be non-empty bytes")
        if bits != 8 and data[-1] & (0xFF >> bits):
            data = bytes(data[:-1]) + bytes([data[-1] & (0xFF << (8 - bits)) & 0xFF])
        if type(data) is not bytes:
            data = bytes(data)
        object.__setattr__(self, "data", data)

    @property
    def bit_size(self) -> int:
        """The size in bits (``bit_size/1``)."""
        return (len(self.data) - 1) * 8 + self.bits


@dataclass(frozen=True, slots=True)
class ImproperList:
    """A list whose tail is not ``[]``: ``[1, 2 | 3]`` is ``ImproperList((1, 2), 3)``.

    ``[alias | Ref]`` (the gen_server call tag of OTP 24+) is ``ImproperList((Atom('alias'),), ref)``.
    A tail that is itself an ImproperList is merged in: ``[1 | [2 | 3]]`` is ``[1, 2 | 3]``.

    Raises:
        ValueError: ``items`` is empty or ``tail`` is a list (that would be a proper list).
    """

    items: tuple[Term, ...]
    tail: Term

    def __post_init__(self) -> None:
        if type(self.items) is not tuple:
            object.__setattr__(self, "items", tuple(self.items))
        if not self.items:
            raise ValueError("ImproperList needs at least one element")
        tail = self.tail
        if isinstance(tail, list):
            raise ValueError("ImproperList tail must not be a list")
        if type(tail) is ImproperList:
            object.__setattr__(self, "items", self.items + tail.items)
            object.__setattr__(self, "tail", tail.tail)


@dataclass(frozen=True, slots=True)
class ExportFun:
    """An external fun ``fun Module:Function/Arity`` (``EXPORT_EXT``)."""

    module: Atom
    function: Atom
    arity: int


@dataclass(frozen=True, slots=True)
class OpaqueFun:
    """A local fun (``NEW_FUN_EXT``), kept as its complete encoding and re-emitted unchanged.

    Python cannot call it; it can store it and send it back. ``data`` starts with the tag byte 112.
    When the fun arrived through a distribution atom cache, ``data`` holds it with the cached atoms
    written out, so it stays valid outside that message.
    """

    data: bytes

    @property
    def arity(self) -> int:
        """The fun's arity."""
        return self.data[5]


@dataclass(frozen=True, slots=True)
class Encoded:
    """A term already in external format (tag and data, no ``131``), written out verbatim.

    For senders that encode a part of a message once and send it several times (a Raft leader
    sends the same log entries to every follower). The encoder copies ``data`` without looking at
    it, so it must be one complete, valid term; only the default encoding mode accepts it
    (``encode`` and ``term_to_binary`` without ``minor_version``). Never produced by the decoder;
    it equals only an ``Encoded`` with the same bytes.
    """

    data: bytes


class Charlist(list[int]):
    """An Erlang string: the list of a text's code points (``"héllo"`` in Erlang).

    A Python ``str`` encodes as a UTF-8 binary (what Elixir and most modern APIs expect); wrap it in
    ``Charlist`` for Erlang string APIs. ``Charlist("é")`` is ``[233]``, never the UTF-8 bytes.
    Decoding never produces a Charlist: strings arrive as plain ``list[int]``.
    """

    __slots__ = ()

    def __init__(self, text: str | Iterable[int] = "") -> None:
        if isinstance(text, str):
            super().__init__(map(ord, text))
        else:
            super().__init__(text)

    @property
    def text(self) -> str:
        """The code points as a ``str``."""
        return "".join(map(chr, self))

    def __repr__(self) -> str:
        return f"Charlist({self.text!r})"


# Key types whose Python equality and hash already match Erlang's exact equality; they are used as
# Map keys as they are. Every other key is "frozen" first (see Map).
_PLAIN_KEYS: frozenset[type] = frozenset({Atom, bytes, int, Pid, Reference, Port, ExportFun, OpaqueFun})
_TRUE = Atom("true")
_FALSE = Atom("false")
_UNDEFINED = Atom("undefined")


def freeze_key(key: Any) -> Any:
    """The hashable stand-in a Map uses for ``key``: equal iff the Erlang terms are exactly equal.

    Atoms, binaries, integers, pids, references, ports and funs stand for themselves. ``str`` keys
    become their UTF-8 ``bytes`` (both encode as the same binary), ``True``/``False``/``None`` the
    atoms ``true``/``false``/``undefined``. Anything else (floats, tuples, lists, maps, bitstrings)
    becomes a 1-tuple holding its canonical encoding, which keeps ``1``/``1.0`` and ``0.0``/``-0.0``
    apart and lets lists and maps be keys.

    Raises:
        TypeError: the key is not an encodable term.
    """
    t = type(key)
    if t in _PLAIN_KEYS:
        return key
    if t is str:
        return key.encode("utf-8", "surrogatepass")
    if t is bool:
        return _TRUE if key else _FALSE
    if key is None:
        return _UNDEFINED
    if t is bytearray or t is memoryview:
        return bytes(key)
    if t is BitString and key.bits == 8:
        return key.data
    if isinstance(key, int):
        return int(key)
    if isinstance(key, str):
        return str(key).encode("utf-8", "surrogatepass")
    if isinstance(key, bytes):
        return bytes(key)
    from erl_interop.errors import EncodeError
    from erl_interop.term.encode import canonical_bytes  # (encode imports this module)

    try:
        return (canonical_bytes(key),)
    except EncodeError as exc:
        raise TypeError(f"unusable map key: {exc}") from None


class Map(Mapping[Any, Any]):
    """An Erlang map.

    Read-only ``Mapping`` whose keys follow Erlang's exact equality: ``1``, ``1.0`` and ``True`` are
    three keys, and lists or maps may be keys. A ``str`` key and the ``bytes`` of its UTF-8 text are
    the same key (both are the same binary in Erlang), as are ``True`` and ``Atom('true')``. Keeps the
    order pairs were given (or decoded) in; the encoder writes them in that order, which is how
    decoded maps re-encode byte-exactly. Equality ignores order; values compare with Python ``==``.

    Args:
        source: a ``Mapping`` (``dict``, ``Map``) or an iterable of ``(key, value)`` pairs. A later
            pair replaces an earlier one with an equal key.
    """

    __slots__ = ("_d", "_hash", "_keys")

    # frozen key -> value, in insertion order (see freeze_key)
    _d: dict[Any, Any]
    # frozen key -> original key, only for keys whose frozen form is not the key itself; None if none
    _keys: dict[Any, Any] | None
    _hash: int | None

    def __init__(self, source: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = ()) -> None:
        if type(source) is Map:
            self._d = source._d
            self._keys = source._keys
            self._hash = source._hash
            return
        pairs: Iterable[tuple[Any, Any]]
        pairs = source.items() if isinstance(source, Mapping) else source
        d: dict[Any, Any] = {}
        keys: dict[Any, Any] | None = None
        plain = _PLAIN_KEYS
        for k, v in pairs:
            if type(k) in plain:
                d[k] = v
                if keys is not None:
                    keys.pop(k, None)
            else:
                fk = freeze_key(k)
                d[fk] = v
                if keys is None:
                    keys = {}
                keys[fk] = k
        self._d = d
        self._keys = keys
        self._hash = None

    @classmethod
    def _from_frozen(cls, d: dict[Any, Any], keys: dict[Any, Any] | None) -> Map:
        m = object.__new__(cls)
        m._d = d
        m._keys = keys
        m._hash = None
        return m

    def __getitem__(self, key: Any) -> Any:
        if type(key) in _PLAIN_KEYS:
            return self._d[key]
        try:
            return self._d[freeze_key(key)]
        except TypeError:
            raise KeyError(key) from None

    def get(self, key: Any, default: Any = None) -> Any:
        """The value for ``key`` (Erlang exact equality), or ``default``."""
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __len__(self) -> int:
        return len(self._d)

    def __iter__(self) -> Iterator[Any]:
        keys = self._keys
        if keys is None:
            return iter(self._d)
        return (keys.get(fk, fk) for fk in self._d)

    def keys(self) -> KeysView[Any]:
        """The keys, as given (or decoded), in order."""
        if self._keys is None:
            return self._d.keys()
        return KeysView(self)

    def values(self) -> ValuesView[Any]:
        """The values, in key order."""
        return self._d.values()

    def items(self) -> ItemsView[Any, Any]:
        """``(key, value)`` pairs, in order."""
        if self._keys is None:
            return self._d.items()
        return ItemsView(self)

    def pairs(self) -> Iterator[tuple[Any, Any]]:
        """``(key, value)`` pairs in order, without building views (fast for encoders)."""
        keys = self._keys
        if keys is None:
            return iter(self._d.items())
        return ((keys.get(fk, fk), v) for fk, v in self._d.items())

    def __eq__(self, other: object) -> bool:
        if type(other) is Map:
            od = other._d
        elif isinstance(other, Mapping):
            try:
                od = Map(other)._d
            except TypeError:
                return False
        else:
            return NotImplemented
        d = self._d
        if len(d) != len(od):
            return False
        missing = object()
        for fk, v in d.items():
            ov = od.get(fk, missing)
            if ov is missing or not (ov == v):
                return False
        return True

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash(frozenset(self._d))
            self._hash = h
        return h

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self.pairs())
        return f"Map({{{inner}}})"

    def __reduce__(self) -> tuple[type[Map], tuple[list[tuple[Any, Any]]]]:
        return (Map, (list(self.pairs()),))


class _FloatExt(float):
    """A float decoded from the old text form ``FLOAT_EXT`` (``minor_version`` 0).

    Equal to (and hashing as) the plain float; the default encoder writes it back as ``FLOAT_EXT``
    so that a round trip is byte-exact.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return float.__repr__(self)


Term: TypeAlias = (
    "Atom | bool | int | float | str | bytes | bytearray | memoryview | tuple[Term, ...] "
    "| list[Term] | dict[Any, Term] | Map | Pid | Reference | Port | BitString | ImproperList "
    "| ExportFun | OpaqueFun | Encoded | None"
)
