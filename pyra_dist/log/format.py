"""Every on-disk layout of the log package in one place: magics, versions, struct formats, checksums.

Owns: the byte layouts of WAL files, segment files, snapshot files and meta files, and the pure
encode/decode functions for their fixed-size parts. Must not: open files, decide Raft, or know
about threads. ``docs/internals/log.md`` documents the same layouts in prose; keep them in sync.

All integers are big-endian (as in Ra's formats, ra-internals §7). Checksums are CRC-32 (zlib),
the one Ra uses for segments and snapshots; Ra's WAL uses Adler-32 over index, term and data
only, which leaves the writer id and the length unprotected, so our WAL record CRC covers the
whole record after the CRC field instead.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

# ---------------------------------------------------------------------------------------------
# WAL file (``NNNNNNNN.wal``), cf. Ra's "RAWA" v1 (ra-internals §7.2)
# ---------------------------------------------------------------------------------------------

WAL_MAGIC: Final = b"PYWA"
WAL_VERSION: Final = 1
# magic:4, version:8, flags:8 (bit 0 = records carry checksums), reserved:16
WAL_HEADER: Final = struct.Struct(">4sBBH")
WAL_FLAG_CHECKSUMS: Final = 0x01

# hcrc:32 (CRC of the 32 header bytes after it, always computed), dcrc:32 (CRC of the data,
# 0 when wal_compute_checksums is false), data_len:32, kind:8, flags:8, reserved:16, writer:32,
# index:64, term:64. Protecting the header separately means a flipped length or writer number is
# detected before it is trusted (Ra's Adler-32 covers index, term and data only).
WAL_RECORD: Final = struct.Struct(">IIIBBHIQQ")
WAL_RECORD_TAIL: Final = struct.Struct(">IIBBHIQQ")
WAL_RECORD_CRC: Final = struct.Struct(">I")

# Record kinds. 0 is never written: an all-zero header marks the end of data (pre-allocated tail).
WAL_KIND_DECLARE: Final = 1
"""Binds a per-file writer number to a server uid (the data); Ra's "uid not yet declared" bit."""
WAL_KIND_ENTRY: Final = 2
"""One log entry of one writer: index, term and the command's external-term bytes."""

WAL_KIND_TRUNCATE: Final = 3
"""Discard every entry of this writer above ``index`` (Raft's TruncateLog); no data."""

WAL_ENTRY_TRUNCATE: Final = 0x01
"""Entry flag, Ra's truncate bit: nothing of this writer below this index will follow (after a
snapshot install), so recovery restarts the writer's table at this record."""

WAL_MAX_UID_LEN: Final = 1024
"""Uids are short filesystem-safe ids (Ra: base64url); a longer DECLARE is corruption."""


def encode_wal_header(checksums: bool) -> bytes:
    """The 8-byte header every WAL file starts with."""
    return WAL_HEADER.pack(WAL_MAGIC, WAL_VERSION, WAL_FLAG_CHECKSUMS if checksums else 0, 0)


def encode_wal_record(
    kind: int, flags: int, writer: int, index: int, term: int, data: bytes, checksums: bool
) -> bytes:
    """One WAL record: the 36-byte header followed by ``data``.

    Args:
        kind: ``WAL_KIND_DECLARE`` or ``WAL_KIND_ENTRY``.
        flags: ``WAL_ENTRY_TRUNCATE`` or 0.
        writer: the per-file writer number (assigned in order of first appearance).
        index: the entry's log index (0 for DECLARE).
        term: the entry's term (0 for DECLARE).
        data: the payload (the command's external-term bytes, or the uid for DECLARE).
        checksums: ``wal_compute_checksums``; when false the data CRC field is 0.

    Returns:
        The record bytes.
    """
    tail = WAL_RECORD_TAIL.pack(
        zlib.crc32(data) if checksums else 0, len(data), kind, flags, 0, writer, index, term
    )
    return b"".join((WAL_RECORD_CRC.pack(zlib.crc32(tail)), tail, data))


# ---------------------------------------------------------------------------------------------
# Segment file (``NNNNNNNN.segment``), cf. Ra's "RASG" v2 (ra-internals §7.3)
# ---------------------------------------------------------------------------------------------

SEGMENT_MAGIC: Final = b"PYSG"
SEGMENT_VERSION: Final = 1
# magic:4, version:16, max_count:16
SEGMENT_HEADER: Final = struct.Struct(">4sHH")
# index:64, term:64, offset:64, length:32, crc32:32 -- identical to Ra's v2 index record.
# A slot with offset 0 (real data never starts there) is a marker: with length 0 a truncation
# tombstone (every entry at or above its index, in this file and older ones, is gone), with
# length 1 a floor (every entry at or below its index, in this file and older ones, is gone).
SEGMENT_INDEX_RECORD: Final = struct.Struct(">QQQII")
SEGMENT_MAX_COUNT: Final = 0xFFFF


def segment_data_start(max_count: int) -> int:
    """Absolute file offset where the data region of a segment with ``max_count`` slots begins."""
    return SEGMENT_HEADER.size + max_count * SEGMENT_INDEX_RECORD.size


# ---------------------------------------------------------------------------------------------
# Snapshot file (``snapshot.dat``), cf. Ra's "RASN" v1 (ra-internals §7.4)
# ---------------------------------------------------------------------------------------------

SNAPSHOT_MAGIC: Final = b"PYSN"
SNAPSHOT_VERSION: Final = 1
# magic:4, version:8, flags:8 (bit 0 = installed from a leader), reserved:16,
# crc:32 (of everything after this field), meta_size:32
SNAPSHOT_HEADER: Final = struct.Struct(">4sB3sII")
# meta: index:64, term:64, machine_version:32, member_count:32, then per member
# name_len:16 name node_len:16 node (UTF-8)
SNAPSHOT_FLAG_INSTALLED: Final = 0x01
SNAPSHOT_META_FIXED: Final = struct.Struct(">QQII")
U16: Final = struct.Struct(">H")
U32: Final = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class SnapshotMetaRecord:
    """Decoded snapshot meta: Ra's ``#{index, term, cluster, machine_version}``.

    ``cluster`` holds ``(name, node)`` pairs; the log package stays free of Raft types so the
    snapshot module converts to ``pyra_dist.types.SnapshotMeta`` at its edge.
    """

    index: int
    term: int
    cluster: tuple[tuple[str, str], ...]
    machine_version: int


def encode_snapshot_meta(meta: SnapshotMetaRecord) -> bytes:
    """Encode the meta block of a snapshot file."""
    parts = [SNAPSHOT_META_FIXED.pack(meta.index, meta.term, meta.machine_version, len(meta.cluster))]
    for name, node in meta.cluster:
        for text in (name, node):
            raw = text.encode()
            parts.append(U16.pack(len(raw)))
            parts.append(raw)
    return b"".join(parts)


def decode_snapshot_meta(buf: bytes) -> SnapshotMetaRecord:
    """Decode a meta block; raises ``ValueError`` if it is malformed."""
    index, term, version, count = SNAPSHOT_META_FIXED.unpack_from(buf, 0)
    pos = SNAPSHOT_META_FIXED.size
    members: list[tuple[str, str]] = []
    for _ in range(count):
        pair: list[str] = []
        for _part in range(2):
            (n,) = U16.unpack_from(buf, pos)
            pos += 2
            if pos + n > len(buf):
                raise ValueError("snapshot meta member runs past the meta block")
            pair.append(buf[pos : pos + n].decode())
            pos += n
        members.append((pair[0], pair[1]))
    if pos != len(buf):
        raise ValueError("trailing bytes after snapshot meta")
    return SnapshotMetaRecord(index, term, tuple(members), version)


# ---------------------------------------------------------------------------------------------
# Meta file (``meta``), our stand-in for Ra's ``meta.dets`` rows (ra-internals §7.5)
# ---------------------------------------------------------------------------------------------

META_MAGIC: Final = b"PYMT"
META_VERSION: Final = 1
META_SLOT_SIZE: Final = 4096
"""Two slots of one page each; a write goes to the slot not holding the newest valid copy, so a
torn write can only damage the copy being replaced (ra_log_meta uses dets for the same job)."""
# magic:4, version:8, reserved:24, crc:32 (of the rest of the used slot), seq:64,
# current_term:64, last_applied:64, has_vote:8, then name_len:16 name node_len:16 node
META_SLOT_HEADER: Final = struct.Struct(">4sB3sIQQQB")
META_MAX_NAME: Final = 1000
