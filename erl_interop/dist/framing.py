"""Length-prefixed packet framing for distribution connections.

Owns: splitting a byte stream into packets (2-byte big-endian length during the handshake,
4-byte after it; erts ``erl_dist_protocol`` "Protocol between connected nodes"), recognising
ticks (a 4-byte length of 0), and building frames for sending.
Must not: interpret packet contents, do I/O, or read clocks.

The receive buffer is one ``bytearray`` with a read offset. Complete packets are copied out
once (``bytes``) so the term decoder can read them by offset; the remaining buffer is never
re-sliced, and the consumed prefix is dropped in place only when it dominates the buffer
(h11 ``_receivebuffer`` style).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, TypeAlias

from erl_interop.dist.errors import DistProtocolError

__all__ = ["TICK", "Packet", "PacketBuffer", "Tick", "frame"]

_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")

#: Default ceiling for one post-handshake packet (a hostile length must not make us buffer forever).
DEFAULT_MAX_PACKET: Final = 256 * 1024 * 1024

# Compact the buffer once this many consumed bytes sit in front of the unread ones.
_COMPACT_AT: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Tick:
    """An empty packet: the peer's keep-alive (4-byte framing only)."""


TICK: Final = Tick()

Packet: TypeAlias = bytes | Tick


def frame(payload: bytes | bytearray, header_size: int) -> bytes:
    """Prefix ``payload`` with its big-endian length.

    Args:
        payload: the packet body.
        header_size: 2 during the handshake, 4 after.

    Returns:
        The framed packet.

    Raises:
        ValueError: the payload does not fit the length field.
    """
    n = len(payload)
    if header_size == 2:
        if n > 0xFFFF:
            raise ValueError(f"handshake packet of {n} bytes does not fit a 2-byte length")
        return _U16.pack(n) + payload
    if n > 0xFFFFFFFF:
        raise ValueError(f"packet of {n} bytes does not fit a 4-byte length")
    return _U32.pack(n) + payload


class PacketBuffer:
    """Accumulates received bytes and yields whole packets.

    Args:
        header_size: 2 (handshake) or 4 (connected); switch later with ``set_header_size``.
        max_packet: largest acceptable packet length in 4-byte mode.
    """

    def __init__(self, header_size: int = 2, *, max_packet: int = DEFAULT_MAX_PACKET) -> None:
        if header_size not in (2, 4):
            raise ValueError("header_size must be 2 or 4")
        self.header_size = header_size
        self.max_packet = max_packet
        self._buf = bytearray()
        self._offset = 0  # start of the first unread byte in _buf

    def __len__(self) -> int:
        """Number of buffered, unread bytes."""
        return len(self._buf) - self._offset

    def set_header_size(self, header_size: int) -> None:
        """Switch framing (2 -> 4 right after the handshake); already-buffered bytes are kept."""
        if header_size not in (2, 4):
            raise ValueError("header_size must be 2 or 4")
        self.header_size = header_size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        if self._offset and self._offset >= _COMPACT_AT and self._offset * 2 >= len(self._buf):
            del self._buf[: self._offset]
            self._offset = 0
        self._buf += data

    def next_packet(self) -> Packet | None:
        """Take the next complete packet.

        Returns:
            The packet payload as ``bytes``, ``TICK`` for an empty 4-byte-framed packet, or None
            when no complete packet is buffered yet.

        Raises:
            DistProtocolError: the length exceeds ``max_packet``.
        """
        start = self._offset
        available = len(self._buf) - start
        hs = self.header_size
        if available < hs:
            return None
        if hs == 2:
            (length,) = _U16.unpack_from(self._buf, start)
        else:
            (length,) = _U32.unpack_from(self._buf, start)
            if length > self.max_packet:
                raise DistProtocolError(
                    f"packet length {length} exceeds the limit of {self.max_packet} bytes"
                )
        if available < hs + length:
            return None
        body_start = start + hs
        self._offset = body_start + length
        if self._offset == len(self._buf):
            # Fully consumed: reset cheaply instead of compacting later.
            packet = bytes(self._buf[body_start:])
            self._buf.clear()
            self._offset = 0
        else:
            packet = bytes(self._buf[body_start : self._offset])
        if length == 0 and hs == 4:
            return TICK
        return packet
