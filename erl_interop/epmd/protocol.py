"""Sans-IO EPMD protocol: request and reply packets, both directions.

Owns: the byte layouts of ALIVE2_REQ / ALIVE2_X_RESP / ALIVE2_RESP, PORT_PLEASE2_REQ /
PORT2_RESP and NAMES_REQ / its reply (erts ``erl_dist_protocol`` "EPMD Protocol"; reference
§1), as frozen dataclasses with ``to_bytes()`` and incremental parsers that read by offset and
return None while the input is incomplete. Both the client (``client.py``) and the embedded
server (``server.py``) use them.
Must not: do I/O.

Requests carry a 2-byte length prefix; replies do not.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from erl_interop.errors import EpmdError

__all__ = [
    "ALIVE2_REQ",
    "ALIVE2_RESP",
    "ALIVE2_X_RESP",
    "NAMES_REQ",
    "NODE_TYPE_HIDDEN",
    "NODE_TYPE_NORMAL",
    "PORT2_RESP",
    "PORT_PLEASE2_REQ",
    "Alive2Req",
    "Alive2Resp",
    "EpmdRequest",
    "NamesReq",
    "NamesResp",
    "Port2Resp",
    "PortPlease2Req",
    "UnsupportedReq",
    "parse_alive2_resp",
    "parse_names_resp",
    "parse_port2_resp",
    "parse_request",
]

ALIVE2_REQ: Final = 120  # 'x'
ALIVE2_X_RESP: Final = 118  # 'v', 32-bit creation
ALIVE2_RESP: Final = 121  # 'y', 16-bit creation (peer registered with HighestVersion < 6)
PORT_PLEASE2_REQ: Final = 122  # 'z'
PORT2_RESP: Final = 119  # 'w'
NAMES_REQ: Final = 110  # 'n'

NODE_TYPE_NORMAL: Final = 77  # 'M'; erl sends it even for -hidden nodes (§1.1)
NODE_TYPE_HIDDEN: Final = 72  # 'H'

_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")
_ALIVE2_FIXED: Final = struct.Struct(">BHBBHH")  # tag, port, type, proto, highest, lowest
_PORT2_FIXED: Final = struct.Struct(">HBBHH")  # port, type, proto, highest, lowest


def _with_length(body: bytes) -> bytes:
    return _U16.pack(len(body)) + body


@dataclass(frozen=True, slots=True, kw_only=True)
class Alive2Req:
    """Register ``name`` (the part before ``@``) as listening on ``port``."""

    port: int
    name: str
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = 0  # TCP/IPv4
    highest_version: int = 6
    lowest_version: int = 6  # a Python node speaks only the v6 handshake
    extra: bytes = b""

    def to_bytes(self) -> bytes:
        """The request with its 2-byte length prefix."""
        raw = self.name.encode("utf-8")
        return _with_length(
            _ALIVE2_FIXED.pack(
                ALIVE2_REQ,
                self.port,
                self.node_type,
                self.protocol,
                self.highest_version,
                self.lowest_version,
            )
            + _U16.pack(len(raw))
            + raw
            + _U16.pack(len(self.extra))
            + self.extra
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PortPlease2Req:
    """Ask for the port (and versions) of the node registered as ``name``."""

    name: str

    def to_bytes(self) -> bytes:
        """The request with its 2-byte length prefix."""
        return _with_length(bytes((PORT_PLEASE2_REQ,)) + self.name.encode("utf-8"))


@dataclass(frozen=True, slots=True, kw_only=True)
class NamesReq:
    """List every registered name (``net_adm:names/0``)."""

    def to_bytes(self) -> bytes:
        """The request with its 2-byte length prefix."""
        return _with_length(bytes((NAMES_REQ,)))


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsupportedReq:
    """A well-framed request we do not serve (DUMP_REQ, KILL_REQ, STOP_REQ, unknown tags)."""

    tag: int


EpmdRequest: TypeAlias = Alive2Req | PortPlease2Req | NamesReq | UnsupportedReq


@dataclass(frozen=True, slots=True, kw_only=True)
class Alive2Resp:
    """Reply to ALIVE2_REQ: ``result`` 0 is success; ``creation`` identifies this incarnation."""

    result: int
    creation: int
    extended: bool = True  # ALIVE2_X_RESP (32-bit creation) vs legacy ALIVE2_RESP

    def to_bytes(self) -> bytes:
        """The reply (no length prefix)."""
        if self.extended:
            return bytes((ALIVE2_X_RESP, self.result)) + _U32.pack(self.creation)
        return bytes((ALIVE2_RESP, self.result)) + _U16.pack(self.creation & 0xFFFF)


@dataclass(frozen=True, slots=True, kw_only=True)
class Port2Resp:
    """Reply to PORT_PLEASE2_REQ; on error (``result`` > 0) only the result byte is sent."""

    result: int
    port: int = 0
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = 0
    highest_version: int = 6
    lowest_version: int = 6
    name: str = ""
    extra: bytes = b""

    def to_bytes(self) -> bytes:
        """The reply (no length prefix)."""
        if self.result:
            return bytes((PORT2_RESP, self.result))
        raw = self.name.encode("utf-8")
        return (
            bytes((PORT2_RESP, 0))
            + _PORT2_FIXED.pack(
                self.port, self.node_type, self.protocol, self.highest_version, self.lowest_version
            )
            + _U16.pack(len(raw))
            + raw
            + _U16.pack(len(self.extra))
            + self.extra
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NamesResp:
    """Reply to NAMES_REQ: epmd's own port, then ``name <N> at port <P>`` lines until close."""

    epmd_port: int
    names: list[tuple[str, int]] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """The whole reply (the server closes the socket after it)."""
        lines = "".join(f"name {name} at port {port}\n" for name, port in self.names)
        return _U32.pack(self.epmd_port) + lines.encode("utf-8")


def parse_alive2_resp(data: bytes | bytearray, offset: int = 0) -> tuple[Alive2Resp, int] | None:
    """Parse ALIVE2_X_RESP or ALIVE2_RESP at ``offset``.

    Args:
        data: bytes received so far.
        offset: where the reply starts.

    Returns:
        ``(reply, next_offset)``, or None if more bytes are needed.

    Raises:
        EpmdError: an unexpected reply tag.
    """
    if len(data) <= offset:
        return None
    tag = data[offset]
    if tag == ALIVE2_X_RESP:
        if len(data) < offset + 6:
            return None
        (creation,) = _U32.unpack_from(data, offset + 2)
        return Alive2Resp(result=data[offset + 1], creation=creation, extended=True), offset + 6
    if tag == ALIVE2_RESP:
        if len(data) < offset + 4:
            return None
        (creation,) = _U16.unpack_from(data, offset + 2)
        return Alive2Resp(result=data[offset + 1], creation=creation, extended=False), offset + 4
    raise EpmdError(f"unexpected EPMD reply to ALIVE2_REQ: tag {tag}")


def parse_port2_resp(data: bytes | bytearray, offset: int = 0) -> tuple[Port2Resp, int] | None:
    """Parse PORT2_RESP at ``offset``.

    Args:
        data: bytes received so far.
        offset: where the reply starts.

    Returns:
        ``(reply, next_offset)``, or None if more bytes are needed.

    Raises:
        EpmdError: an unexpected reply tag.
    """
    if len(data) < offset + 2:
        return None
    if data[offset] != PORT2_RESP:
        raise EpmdError(f"unexpected EPMD reply to PORT_PLEASE2_REQ: tag {data[offset]}")
    result = data[offset + 1]
    if result:
        return Port2Resp(result=result), offset + 2
    pos = offset + 2
    if len(data) < pos + _PORT2_FIXED.size + 2:
        return None
    port, node_type, protocol, highest, lowest = _PORT2_FIXED.unpack_from(data, pos)
    pos += _PORT2_FIXED.size
    (nlen,) = _U16.unpack_from(data, pos)
    pos += 2
    if len(data) < pos + nlen + 2:
        return None
    name = bytes(data[pos : pos + nlen]).decode("utf-8", "replace")
    pos += nlen
    (elen,) = _U16.unpack_from(data, pos)
    pos += 2
    if len(data) < pos + elen:
        return None
    extra = bytes(data[pos : pos + elen])
    reply = Port2Resp(
        result=0,
        port=port,
        node_type=node_type,
        protocol=protocol,
        highest_version=highest,
        lowest_version=lowest,
        name=name,
        extra=extra,
    )
    return reply, pos + elen


def parse_names_resp(data: bytes | bytearray) -> NamesResp:
    """Parse a complete NAMES reply (everything read until epmd closed the socket).

    Args:
        data: the whole reply.

    Returns:
        The epmd port and the registered ``(name, port)`` pairs, in epmd's order.

    Raises:
        EpmdError: shorter than the 4-byte port, or a line that is not ``name N at port P``.
    """
    if len(data) < 4:
        raise EpmdError("truncated NAMES reply")
    (epmd_port,) = _U32.unpack_from(data, 0)
    names: list[tuple[str, int]] = []
    for line in bytes(data[4:]).decode("utf-8", "replace").splitlines():
        parts = line.split(" ")
        if len(parts) != 5 or parts[0] != "name" or parts[2:4] != ["at", "port"] or not parts[4].isdigit():
            raise EpmdError(f"unexpected NAMES line {line!r}")
        names.append((parts[1], int(parts[4])))
    return NamesResp(epmd_port=epmd_port, names=names)


def parse_request(data: bytes | bytearray, offset: int = 0) -> tuple[EpmdRequest, int] | None:
    """Server side: parse one length-prefixed request at ``offset``.

    Args:
        data: bytes received so far.
        offset: where the request's length prefix starts.

    Returns:
        ``(request, next_offset)``, or None if more bytes are needed.

    Raises:
        EpmdError: an empty or malformed request.
    """
    if len(data) < offset + 2:
        return None
    (length,) = _U16.unpack_from(data, offset)
    start = offset + 2
    end = start + length
    if length == 0:
        raise EpmdError("empty EPMD request")
    if len(data) < end:
        return None
    tag = data[start]
    if tag == ALIVE2_REQ:
        if length < _ALIVE2_FIXED.size + 4:
            raise EpmdError("truncated ALIVE2_REQ")
        _, port, node_type, protocol, highest, lowest = _ALIVE2_FIXED.unpack_from(data, start)
        pos = start + _ALIVE2_FIXED.size
        (nlen,) = _U16.unpack_from(data, pos)
        pos += 2
        if pos + nlen + 2 > end:
            raise EpmdError("truncated ALIVE2_REQ name")
        name = bytes(data[pos : pos + nlen]).decode("utf-8", "replace")
        pos += nlen
        (elen,) = _U16.unpack_from(data, pos)
        pos += 2
        if pos + elen > end:
            raise EpmdError("truncated ALIVE2_REQ extra")
        request: EpmdRequest = Alive2Req(
            port=port,
            name=name,
            node_type=node_type,
            protocol=protocol,
            highest_version=highest,
            lowest_version=lowest,
            extra=bytes(data[pos : pos + elen]),
        )
    elif tag == PORT_PLEASE2_REQ:
        request = PortPlease2Req(name=bytes(data[start + 1 : end]).decode("utf-8", "replace"))
    elif tag == NAMES_REQ:
        request = NamesReq()
    else:
        request = UnsupportedReq(tag=tag)
    return request, end
