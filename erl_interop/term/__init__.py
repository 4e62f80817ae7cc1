"""Erlang External Term Format (ETF): Python types and a byte-exact codec.

Owns: the public surface of ``erl_interop.term`` (re-exports only). Must not: run code at import,
do I/O, or hold module-level mutable state. The codec is sans-IO: bytes in, values out.

Python mapping (details in ``docs/internals/term.md``):

==========================  =================================  ==============================
Erlang                      decodes to                         encodes from
==========================  =================================  ==============================
atom                        ``Atom`` (not a ``str``)           ``Atom``
``true`` / ``false``        ``True`` / ``False``               ``True`` / ``False``
``undefined``, ``nil``      ``Atom``                           ``None`` -> ``undefined``
integer (any size)          ``int``                            ``int`` (smallest tag)
float                       ``float`` (-0.0 kept)              ``float`` (NaN/Inf refused)
binary                      ``bytes``                          ``bytes``, ``bytearray``, ``str`` (UTF-8)
bitstring                   ``BitString``                      ``BitString``
tuple                       ``tuple``                          ``tuple``
proper list / string        ``list`` (strings: ``list[int]``)  ``list``, ``Charlist(str)``
improper list               ``ImproperList``                   ``ImproperList``
map                         ``Map``                            ``Map``, ``dict``
pid / reference / port      ``Pid`` / ``Reference`` / ``Port``  same
``fun M:F/A``               ``ExportFun``                      ``ExportFun``
local fun                   ``OpaqueFun`` (raw bytes)          ``OpaqueFun``
(any, pre-encoded)          never                              ``Encoded`` (bytes spliced as is)
==========================  =================================  ==============================

Round trips are byte-exact for every term a real OTP node produces:
``term_to_binary(binary_to_term(b)) == b`` (pass ``compressed=`` for compressed input) and
``encode(decode(payload))`` reproduces distribution payloads.
"""

from erl_interop.term.decode import MAX_DEPTH, MAX_UNCOMPRESSED_SIZE, binary_to_term, decode
from erl_interop.term.encode import canonical_bytes, encode, term_to_binary
from erl_interop.term.tags import VERSION_MAGIC, Tag
from erl_interop.term.types import (
    Atom,
    BitString,
    Charlist,
    Encoded,
    ExportFun,
    ImproperList,
    Map,
    OpaqueFun,
    Pid,
    Port,
    Reference,
    Term,
)


def exact_equal(a: Term, b: Term) -> bool:
    """Erlang's exact equality ``A =:= B`` (Python's ``==`` says ``1 == 1.0 == True``).

    Raises:
        EncodeError: either value is not an encodable term.
    """
    return canonical_bytes(a) == canonical_bytes(b)


__all__ = [
    "MAX_DEPTH",
    "MAX_UNCOMPRESSED_SIZE",
    "VERSION_MAGIC",
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
    "Tag",
    "Term",
    "binary_to_term",
    "canonical_bytes",
    "decode",
    "encode",
    "exact_equal",
    "term_to_binary",
]
