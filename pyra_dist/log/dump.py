"""Operator dump tools for every storage file (Ra ``ra_log_wal:wal2list/1``, ``ra_log_segment:dump/1``).

Owns: human-readable listings of WAL, segment, snapshot and meta files, and the ``main(argv)``
entry point: ``python -m pyra_dist.log.dump wal FILE`` (also ``wal-dump``, ``segment``/
``segment-dump``, ``snapshot``, ``meta``). Must not: modify any file; a corrupt file is reported
with its offset and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pyra_dist.log import format as fmt
from pyra_dist.log.errors import LogCorrupt
from pyra_dist.log.meta import decode_meta_slot
from pyra_dist.log.segment import SegmentFile
from pyra_dist.log.snapshot import read_snapshot_file
from pyra_dist.log.wal import WalFileReport, read_wal_file

_PREVIEW = 24


def _preview(data: bytes) -> str:
    head = data[:_PREVIEW].hex()
    return head + ("..." if len(data) > _PREVIEW else "")


def dump_wal(path: Path, out: TextIO) -> None:
    """List every record of a WAL file, then where valid data ends.

    Raises:
        LogCorrupt: as ``read_wal_file``.
    """
    report = WalFileReport(path, 0)
    out.write(f"# wal {path} magic={fmt.WAL_MAGIC.decode()} version={fmt.WAL_VERSION}\n")
    count = 0
    for rec in read_wal_file(path, report):
        count += 1
        if rec.kind == fmt.WAL_KIND_TRUNCATE:
            out.write(f"offset={rec.offset} uid={rec.uid} truncate_above={rec.index}\n")
            continue
        flag = " truncate" if rec.truncate else ""
        out.write(
            f"offset={rec.offset} uid={rec.uid} index={rec.index} term={rec.term} "
            f"len={len(rec.payload)}{flag} data={_preview(rec.payload)}\n"
        )
    tail = f" torn_tail={report.torn_tail!r}" if report.torn_tail else ""
    out.write(f"# records={count} size={report.size} valid_end={report.valid_end}{tail}\n")


def dump_segment(path: Path, out: TextIO) -> None:
    """List the index region of a segment file and verify every entry's checksum.

    Raises:
        LogCorrupt: bad header or a checksum mismatch.
    """
    seg = SegmentFile.open(path)
    try:
        out.write(
            f"# segment {path} magic={fmt.SEGMENT_MAGIC.decode()} version={fmt.SEGMENT_VERSION} "
            f"max_count={seg.max_count} used={len(seg.records)}\n"
        )
        for slot, rec in enumerate(seg.records):
            if rec.offset == 0:
                marker = "truncate_from" if rec.length == 0 else "floor"
                out.write(f"slot={slot} {marker}={rec.index}\n")
                continue
            data = seg.read(rec)
            out.write(
                f"slot={slot} index={rec.index} term={rec.term} offset={rec.offset} len={rec.length} "
                f"crc={rec.crc:08x} data={_preview(data)}\n"
            )
    finally:
        seg.close()


def dump_snapshot(path: Path, out: TextIO) -> None:
    """Print a snapshot file's meta after validating its checksum."""
    meta, offset, crc = read_snapshot_file(path)
    members = ", ".join(f"{n}@{d}" if "@" not in d else f"{{{n},{d}}}" for n, d in meta.cluster)
    out.write(
        f"# snapshot {path} magic={fmt.SNAPSHOT_MAGIC.decode()} version={fmt.SNAPSHOT_VERSION} "
        f"crc={crc:08x}\n"
        f"index={meta.index} term={meta.term} machine_version={meta.machine_version} cluster=[{members}] "
        f"state_len={path.stat().st_size - offset}\n"
    )


def dump_meta(path: Path, out: TextIO) -> None:
    """Print both slots of a meta file."""
    buf = path.read_bytes()
    out.write(f"# meta {path} magic={fmt.META_MAGIC.decode()} version={fmt.META_VERSION}\n")
    for k in (0, 1):
        slot = decode_meta_slot(buf[k * fmt.META_SLOT_SIZE : (k + 1) * fmt.META_SLOT_SIZE])
        if slot is None:
            out.write(f"slot={k} invalid-or-empty\n")
        else:
            seq, m = slot
            out.write(
                f"slot={k} seq={seq} current_term={m.current_term} voted_for={m.voted_for} "
                f"last_applied={m.last_applied}\n"
            )


_COMMANDS = {
    "wal": dump_wal,
    "wal-dump": dump_wal,
    "segment": dump_segment,
    "segment-dump": dump_segment,
    "snapshot": dump_snapshot,
    "meta": dump_meta,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run a dump command.

    Args:
        argv: e.g. ``["wal", "00000001.wal"]`` or ``["segment-dump", "00000001.segment"]``.
        out: where to print (default stdout).

    Returns:
        0 on success, 2 if the file is corrupt or unreadable.
    """
    parser = argparse.ArgumentParser(prog="python -m pyra_dist.log.dump", description=__doc__)
    parser.add_argument("kind", choices=sorted(_COMMANDS))
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    stream = out if out is not None else sys.stdout
    try:
        _COMMANDS[args.kind](args.file, stream)
    except LogCorrupt as exc:
        stream.write(f"# CORRUPT: {exc}\n")
        return 2
    except OSError as exc:
        stream.write(f"# ERROR: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
