"""The distribution header (131,68 / 131,69 / 131,70): atom cache refs and fragment reassembly.

Owns: parsing the normal header (``DIST_HEADER``, 68) with its atom cache references, the
per-connection, per-direction atom cache (2048 slots), reassembly of fragmented messages
(``DIST_FRAG_HEADER`` 69 and ``DIST_FRAG_CONT`` 70, DFLAG_FRAGMENTS), and splitting an
outgoing message into fragments.
Must not: decode the control or message terms (``connection.py`` does, with the atom list
returned here), do I/O, or read clocks.

erts ``erl_ext_dist`` "Distribution Header" / "Distribution Header for Fragmented Messages";
reference §3.3-3.4. Facts the code relies on:

* ``ATOM_CACHE_REF idx`` in the terms means the idx-th ref *of this header*, not a slot.
* New entries overwrite their slot for later headers, so packets of one connection must be
  processed strictly in order (the only "strict order" flag).
* Fragment ids count down from the total to 1; 1 is the last. Sequences may interleave with
  each other, but the fragments of one sequence arrive in order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from erl_interop.dist.errors import DistProtocolError
from erl_interop.term import Atom

__all__ = [
    "DIST_FRAG_CONT",
    "DIST_FRAG_HEADER",
    "DIST_HEADER",
    "VERSION_MAGIC",
    "AtomCache",
    "CompleteMessage",
    "FragmentAssembler",
    "fragment_packets",
]

VERSION_MAGIC: Final = 131
DIST_HEADER: Final = 68
DIST_FRAG_HEADER: Final = 69
DIST_FRAG_CONT: Final = 70

_SEQ_FRAG: Final = struct.Struct(">QQ")
_U16: Final = struct.Struct(">H")

#: Number of slots in an atom cache: 8 segments of 256 (erts ERTS_ATOM_CACHE_SIZE).
ATOM_CACHE_SIZE: Final = 2048

#: Default bound on bytes held by incomplete fragment sequences on one connection (OTP #5876:
#: an abandoned sequence must not grow without limit).
DEFAULT_MAX_PENDING_BYTES: Final = 256 * 1024 * 1024

#: erts fragments at 64 KiB of payload (V: a 200 KB binary arrived as 4 fragments).
DEFAULT_FRAGMENT_SIZE: Final = 64 * 1024


class AtomCache:
    """One direction's atom cache: slot -> atom, filled by new entries in headers."""

    def __init__(self) -> None:
        self._slots: list[Atom | None] = [None] * ATOM_CACHE_SIZE

    def parse_refs(self, data: bytes, offset: int) -> tuple[list[Atom], int]:
        """Parse ``[N][Flags][AtomCacheRefs]`` at ``offset``, updating the cache for new entries.

        Args:
            data: the packet.
            offset: position of the ``NumberOfAtomCacheRefs`` byte.

        Returns:
            The atoms referenced by this header, in ref order, and the offset just past the refs.

        Raises:
            DistProtocolError: truncated header, or a reference to an empty slot.
        """
        end = len(data)
        if offset >= end:
            raise DistProtocolError("truncated distribution header (no atom cache ref count)")
        n = data[offset]
        offset += 1
        if n == 0:
            return [], offset
        flags_len = n // 2 + 1
        if offset + flags_len > end:
            raise DistProtocolError("truncated distribution header flags")
        flags_at = offset
        offset += flags_len
        # The nibble after the last ref's holds LongAtoms in its lowest bit.
        long_atoms = bool(self._nibble(data, flags_at, n) & 0x1)
        atoms: list[Atom] = []
        for i in range(n):
            nibble = self._nibble(data, flags_at, i)
            segment = nibble & 0x7
            if offset >= end:
                raise DistProtocolError("truncated atom cache reference")
            slot = segment * 256 + data[offset]
            offset += 1
            if nibble & 0x8:  # NewCacheEntry
                if long_atoms:
                    if offset + 2 > end:
                        raise DistProtocolError("truncated atom cache entry length")
                    (length,) = _U16.unpack_from(data, offset)
                    offset += 2
                else:
                    if offset >= end:
                        raise DistProtocolError("truncated atom cache entry length")
                    length = data[offset]
                    offset += 1
                if offset + length > end:
                    raise DistProtocolError("truncated atom cache entry text")
                try:
                    text = data[offset : offset + length].decode("utf-8")
                except UnicodeDecodeError:
                    raise DistProtocolError("atom cache entry is not valid UTF-8") from None
                offset += length
                atom = Atom(text)
                self._slots[slot] = atom
            else:
                cached = self._slots[slot]
                if cached is None:
                    raise DistProtocolError(f"atom cache reference to empty slot {slot}")
                atom = cached
            atoms.append(atom)
        return atoms, offset

    @staticmethod
    def _nibble(data: bytes, flags_at: int, index: int) -> int:
        byte = data[flags_at + index // 2]
        return (byte >> 4) & 0xF if index % 2 else byte & 0xF


@dataclass(frozen=True, slots=True)
class CompleteMessage:
    """A whole message: decode control (and payload) from ``data`` at ``offset``.

    ``atom_cache`` resolves ``ATOM_CACHE_REF`` indexes in the terms.
    """

    data: bytes
    offset: int
    atom_cache: list[Atom]


@dataclass(slots=True)
class _Partial:
    next_fragment: int  # the id the next continuation must carry
    atom_cache: list[Atom]
    chunks: list[memoryview] = field(default_factory=list)
    size: int = 0


class FragmentAssembler:
    """Receive side of the dist header: one per connection.

    Args:
        max_pending_bytes: bound on bytes buffered by incomplete sequences.
    """

    def __init__(self, *, max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES) -> None:
        self.atom_cache = AtomCache()
        self.max_pending_bytes = max_pending_bytes
        self._partial: dict[int, _Partial] = {}
        self._pending_bytes = 0

    @property
    def pending_sequences(self) -> int:
        """Number of sequences started but not finished."""
        return len(self._partial)

    def receive(self, packet: bytes) -> CompleteMessage | None:
        """Process one packet that starts with ``131``.

        Args:
            packet: a whole packet (4-byte length already stripped).

        Returns:
            The complete message, or None when the packet was a non-final fragment.

        Raises:
            DistProtocolError: unknown header type, truncation, a continuation for an unknown
                sequence or with the wrong fragment id, a duplicate sequence id, or too many
                buffered bytes.
        """
        if len(packet) < 2 or packet[0] != VERSION_MAGIC:
            raise DistProtocolError(f"packet does not start with 131: {packet[:8]!r}")
        kind = packet[1]
        if kind == DIST_HEADER:
            atoms, offset = self.atom_cache.parse_refs(packet, 2)
            return CompleteMessage(packet, offset, atoms)
        if kind not in (DIST_FRAG_HEADER, DIST_FRAG_CONT):
            raise DistProtocolError(f"unknown distribution header type {kind}")
        if len(packet) < 18:
            raise DistProtocolError("truncated fragment header")
        seq, frag = _SEQ_FRAG.unpack_from(packet, 2)
        if frag == 0:
            raise DistProtocolError(f"fragment id 0 in sequence {seq}")
        if kind == DIST_FRAG_HEADER:
            if seq in self._partial:
                raise DistProtocolError(f"fragment sequence {seq} started twice")
            atoms, offset = self.atom_cache.parse_refs(packet, 18)
            if frag == 1:
                return CompleteMessage(packet, offset, atoms)
            partial = _Partial(next_fragment=frag - 1, atom_cache=atoms)
            self._partial[seq] = partial
            self._add(partial, packet, offset)
            return None
        partial_or_none = self._partial.get(seq)
        if partial_or_none is None:
            raise DistProtocolError(f"continuation fragment {frag} for unknown sequence {seq}")
        partial = partial_or_none
        if frag != partial.next_fragment:
            raise DistProtocolError(
                f"fragment {frag} of sequence {seq} out of order (expected {partial.next_fragment})"
            )
        self._add(partial, packet, 18)
        if frag > 1:
            partial.next_fragment = frag - 1
            return None
        del self._partial[seq]
        self._pending_bytes -= partial.size
        return CompleteMessage(b"".join(partial.chunks), 0, partial.atom_cache)

    def _add(self, partial: _Partial, packet: bytes, offset: int) -> None:
        chunk = memoryview(packet)[offset:]
        partial.chunks.append(chunk)
        partial.size += len(chunk)
        self._pending_bytes += len(chunk)
        if self._pending_bytes > self.max_pending_bytes:
            raise DistProtocolError(
                f"incomplete fragmented messages exceed {self.max_pending_bytes} bytes "
                f"({len(self._partial)} sequences pending)"
            )

    def clear(self) -> None:
        """Drop every partial sequence (the connection closed)."""
        self._partial.clear()
        self._pending_bytes = 0


def fragment_packets(
    body: bytes, sequence_id: int, fragment_size: int = DEFAULT_FRAGMENT_SIZE
) -> list[bytes]:
    """Split an encoded ``control + payload`` (no header) into fragment packets with 0 cache refs.

    The first packet is ``131,69,Seq,FragId,0`` + data, continuations ``131,70,Seq,FragId`` +
    data; fragment ids count down to 1. A body that fits one fragment still yields one
    ``131,69`` packet with id 1, which is valid.

    Args:
        body: control term bytes followed by the payload term bytes (no 131 version bytes).
        sequence_id: unique among our in-flight sequences on this connection.
        fragment_size: payload bytes per fragment.

    Returns:
        The packets (without the 4-byte length prefix), in sending order.
    """
    if fragment_size <= 0:
        raise ValueError("fragment_size must be positive")
    view = memoryview(body)
    count = max(1, -(-len(body) // fragment_size))
    packets: list[bytes] = []
    for i in range(count):
        frag_id = count - i
        chunk = view[i * fragment_size : (i + 1) * fragment_size]
        if i == 0:
            head = bytes((VERSION_MAGIC, DIST_FRAG_HEADER)) + _SEQ_FRAG.pack(sequence_id, frag_id) + b"\x00"
        else:
            head = bytes((VERSION_MAGIC, DIST_FRAG_CONT)) + _SEQ_FRAG.pack(sequence_id, frag_id)
        packets.append(head + chunk)
    return packets
