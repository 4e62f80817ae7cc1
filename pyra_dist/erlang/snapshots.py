"""Snapshot bytes exactly as Ra 2.2.0 sends and checks them (``ra_log_snapshot``).

Owns: the ``SnapshotCodec`` for systems with Erlang peers: the bytes a snapshot transfer carries
are ``<<Crc:32, term_to_binary(State)>>`` where ``Crc = crc32(<<MetaSize:32>>, MetaBin, StateBin)``
and ``MetaBin`` is OTP 25's ``term_to_binary`` of ``#{cluster => [Id], index, machine_version,
term}`` (ra-internals §2.5). An Erlang 2.2.0 follower recomputes the CRC with its own encoding of
the meta and crashes on a mismatch, so the meta is encoded in OTP 25's exact style (ATOM_EXT atoms,
keys in term order).

Must not: do I/O or change a state on the way (the state term goes through the ETF codec as is).
"""

from __future__ import annotations

import zlib

from erl_interop.errors import DecodeError
from erl_interop.term import binary_to_term, term_to_binary
from pyra_dist.erlang.records import opaque, snapshot_meta_to_term
from pyra_dist.types import SnapshotMeta

__all__ = ["RaSnapshotCodec", "meta_crc"]

OTP25: int = 1
"""``{minor_version, 1}``: OTP 25's default ``term_to_binary`` style (what a 2.2.0 node computes)."""


def meta_crc(meta: SnapshotMeta, state_bin: bytes) -> int:
    """Ra's snapshot checksum of ``state_bin`` under ``meta`` (``ra_log_snapshot:write/3``)."""
    meta_bin = term_to_binary(snapshot_meta_to_term(meta), minor_version=OTP25)
    crc = zlib.crc32(len(meta_bin).to_bytes(4, "big"))
    crc = zlib.crc32(meta_bin, crc)
    return zlib.crc32(state_bin, crc)


class RaSnapshotCodec:
    """``SnapshotCodec`` producing and checking Ra 2.2.0's transfer bytes."""

    def encode(self, meta: SnapshotMeta, state: object) -> bytes:
        """``<<Crc:32, term_to_binary(State)>>``.

        Raises:
            EncodeError: the state is not an Erlang term (a Python machine with Erlang peers must
                keep its state in terms).
        """
        state_bin = term_to_binary(opaque(state), minor_version=OTP25)
        return meta_crc(meta, state_bin).to_bytes(4, "big") + state_bin

    def decode(self, meta: SnapshotMeta, data: bytes) -> object:
        """The state in ``data``, after the checksum check Ra's receiver makes.

        Raises:
            ValueError: short data, a checksum mismatch, or undecodable state bytes.
        """
        if len(data) < 5:
            raise ValueError(f"snapshot data too short ({len(data)} bytes)")
        crc = int.from_bytes(data[:4], "big")
        state_bin = bytes(data[4:])
        if crc != meta_crc(meta, state_bin):
            raise ValueError(f"snapshot checksum mismatch at index {meta.index}")
        try:
            return binary_to_term(state_bin)
        except DecodeError as exc:
            raise ValueError(f"corrupt snapshot state: {exc}") from exc
