"""Segment files: one server's entries after they left the WAL (Ra ``ra_log_segment``).

Owns: the layout of one ``NNNNNNNN.segment`` file (header, fixed index region, data region;
``format.py`` has the structs) and ``SegmentSet``, the ordered set of one server's segment files
with Raft's overwrite rule applied across them. Must not: read the WAL or memtables, or decide
which entries to flush (``segment_writer.py`` does).

Theory of operation: appends go to the newest file until its ``max_count`` index slots are
used. Each ``append`` does one ``pwrite`` of the data, one ``pwrite`` of the index records and
one ``fdatasync``. An index at or below the previous one (an overwrite) hides every entry after
it, in the same file and in older files: ``SegmentSet`` keeps the effective ranges as a sorted
list of ``(first, last, file)`` refs. Data CRC-32s (``segment_compute_checksums``) are checked on
every read; a mismatch raises ``LogCorrupt`` naming the file and offset.
"""

from __future__ import annotations

import bisect
import os
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from pyra_dist.log import format as fmt
from pyra_dist.log.errors import LogCorrupt
from pyra_dist.log.fileops import FileOps, OsFileOps, pwrite_all


@dataclass(frozen=True, slots=True)
class SegmentIndexRecord:
    """One slot of the index region: where entry ``index`` lives in the data region."""

    index: int
    term: int
    offset: int
    length: int
    crc: int


def segment_file_name(number: int) -> str:
    """``00000001.segment`` (ra-internals §7.1)."""
    return f"{number:08d}.segment"


class SegmentFile:
    """One segment file, open for reading and (if it is the newest) appending."""

    def __init__(
        self, path: Path, max_count: int, records: list[SegmentIndexRecord], data_end: int, ops: FileOps
    ) -> None:
        self.path = path
        self.max_count = max_count
        self.records = records
        self.data_end = data_end
        self._ops = ops
        self._wfd: int | None = None
        self._rfd: int | None = None

    @property
    def number(self) -> int:
        """The file's sequence number."""
        return int(self.path.stem)

    @property
    def full(self) -> bool:
        """All index slots used."""
        return len(self.records) >= self.max_count

    @classmethod
    def create(cls, path: Path, max_count: int, ops: FileOps) -> SegmentFile:
        """Create an empty segment with ``max_count`` index slots.

        Raises:
            OSError: on I/O failure.
        """
        # Created under a temporary name and renamed once its header is synced, so a crash
        # never leaves a segment without a header (the WAL files get the same treatment).
        tmp = path.with_name(path.name + ".tmp")
        fd = ops.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            pwrite_all(ops, fd, fmt.SEGMENT_HEADER.pack(fmt.SEGMENT_MAGIC, fmt.SEGMENT_VERSION, max_count), 0)
            ops.fsync(fd)
            ops.rename(tmp, path)
        except BaseException:
            ops.close(fd)
            raise
        ops.fsync_dir(path.parent)
        seg = cls(path, max_count, [], fmt.segment_data_start(max_count), ops)
        seg._wfd = fd
        return seg

    @classmethod
    def open(cls, path: Path, ops: FileOps | None = None) -> SegmentFile:
        """Open an existing segment and read its index region.

        Index slots are read up to the first zero slot. A slot whose data lies past the end of
        the file was written by a flush that crashed before its sync; its WAL file still exists
        (it is deleted only after the sync), so the slot and everything after it are ignored
        and later appends reuse them.

        Raises:
            LogCorrupt: bad magic or version.
        """
        with open(path, "rb") as f:
            header = f.read(fmt.SEGMENT_HEADER.size)
            if len(header) < fmt.SEGMENT_HEADER.size:
                raise LogCorrupt(path, 0, "file shorter than the segment header")
            magic, version, max_count = fmt.SEGMENT_HEADER.unpack(header)
            if magic != fmt.SEGMENT_MAGIC or version != fmt.SEGMENT_VERSION or max_count == 0:
                raise LogCorrupt(path, 0, f"not a pyra segment file (magic {magic!r}, version {version})")
            index_region = f.read(max_count * fmt.SEGMENT_INDEX_RECORD.size)
            size = os.fstat(f.fileno()).st_size
        records: list[SegmentIndexRecord] = []
        data_end = fmt.segment_data_start(max_count)
        rsize = fmt.SEGMENT_INDEX_RECORD.size
        for slot in range(len(index_region) // rsize):
            idx, term, offset, length, crc = fmt.SEGMENT_INDEX_RECORD.unpack_from(index_region, slot * rsize)
            if idx == 0 and term == 0 and offset == 0:
                break
            if offset != 0 and (offset < fmt.segment_data_start(max_count) or offset + length > size):
                break
            records.append(SegmentIndexRecord(idx, term, offset, length, crc))
            data_end = max(data_end, offset + length)
        return cls(path, max_count, records, data_end, ops or OsFileOps())

    def append(self, entries: list[tuple[int, int, bytes]], checksums: bool) -> list[SegmentIndexRecord]:
        """Append as many of ``entries`` as fit; returns the new index records (not yet synced).

        Raises:
            OSError: on I/O failure.
        """
        if self._wfd is None:
            self._wfd = self._ops.open(self.path, os.O_WRONLY)
        room = self.max_count - len(self.records)
        take = entries[:room]
        new: list[SegmentIndexRecord] = []
        offset = self.data_end
        for index, term, payload in take:
            if term < 0:
                # A tombstone (-1) or floor (-2) request from SegmentSet.append (see format.py).
                new.append(SegmentIndexRecord(index, 0, 0, 0 if term == -1 else 1, 0))
                continue
            crc = zlib.crc32(payload) if checksums else 0
            new.append(SegmentIndexRecord(index, term, offset, len(payload), crc))
            offset += len(payload)
        # Data first, then the index slots that point at it, then one sync (Ra does the same
        # two writes per flush).
        pwrite_all(self._ops, self._wfd, b"".join(p for _, t, p in take if t >= 0), self.data_end)
        slot_offset = fmt.SEGMENT_HEADER.size + len(self.records) * fmt.SEGMENT_INDEX_RECORD.size
        index_bytes = b"".join(
            fmt.SEGMENT_INDEX_RECORD.pack(r.index, r.term, r.offset, r.length, r.crc) for r in new
        )
        pwrite_all(self._ops, self._wfd, index_bytes, slot_offset)
        self.records.extend(new)
        self.data_end = offset
        return new

    def sync(self) -> None:
        """Make appended entries durable."""
        if self._wfd is not None:
            self._ops.fdatasync(self._wfd)

    def read(self, rec: SegmentIndexRecord) -> bytes:
        """Read and verify one entry's payload.

        Raises:
            LogCorrupt: short read or CRC mismatch (names the file and the data offset).
        """
        if self._rfd is None:
            self._rfd = os.open(self.path, os.O_RDONLY)
        data = os.pread(self._rfd, rec.length, rec.offset)
        if len(data) != rec.length:
            raise LogCorrupt(self.path, rec.offset, f"short read of entry {rec.index}")
        if rec.crc != 0 and zlib.crc32(data) != rec.crc:
            raise LogCorrupt(self.path, rec.offset, f"data checksum mismatch for entry {rec.index}")
        return data

    def close(self) -> None:
        """Close the file descriptors."""
        if self._wfd is not None:
            self._ops.close(self._wfd)
            self._wfd = None
        if self._rfd is not None:
            os.close(self._rfd)
            self._rfd = None


@dataclass(slots=True)
class _Ref:
    """Entries ``first..last`` are read from ``seg`` records ``slot0 + (i - first)``."""

    first: int
    last: int
    seg: SegmentFile
    slot0: int


class SegmentSet:
    """All segment files of one server with the overwrite rule applied across them.

    Thread-safe: the segment writer appends while the server reads.
    """

    def __init__(self, server_dir: Path, max_count: int, checksums: bool, ops: FileOps | None = None) -> None:
        self._dir = server_dir
        self._max_count = max_count
        self._checksums = checksums
        self._ops = ops or OsFileOps()
        self._lock = threading.Lock()
        self._files: list[SegmentFile] = []
        # Sorted by first, non-overlapping; the effective (non-overwritten) entries.
        self._refs: list[_Ref] = []

    @classmethod
    def open(
        cls, server_dir: Path, max_count: int, checksums: bool, ops: FileOps | None = None
    ) -> SegmentSet:
        """Open every segment file of ``server_dir`` in order and rebuild the effective ranges.

        Raises:
            LogCorrupt: a file with a bad header.
        """
        sset = cls(server_dir, max_count, checksums, ops)
        for leftover in server_dir.glob("*.segment.tmp"):
            leftover.unlink()
        for path in sorted(p for p in server_dir.glob("*.segment") if p.stem.isdigit()):
            seg = SegmentFile.open(path, sset._ops)
            sset._files.append(seg)
            sset._add_refs(seg, 0, seg.records)
        return sset

    def _add_refs(self, seg: SegmentFile, slot0: int, records: list[SegmentIndexRecord]) -> None:
        for k, rec in enumerate(records):
            i = rec.index
            refs = self._refs
            if rec.offset == 0:
                if rec.length == 0:
                    # Truncation tombstone (format.py): hide ``i`` and everything above it.
                    self._cut_from(i)
                else:
                    # Floor (format.py): hide ``i`` and everything below it.
                    self._cut_below(i)
                continue
            if refs and i <= refs[-1].last:
                self._cut_from(i)
            # Extend the newest run if this record directly follows it in the same file; a gap
            # (entries below were released by a snapshot) or a new file starts a new run.
            last = refs[-1] if refs else None
            if (
                last is not None
                and last.seg is seg
                and last.last + 1 == i
                and last.slot0 + (i - last.first) == slot0 + k
            ):
                last.last = i
            else:
                self._refs.append(_Ref(i, i, seg, slot0 + k))

    def _cut_below(self, index: int) -> None:
        refs = self._refs
        while refs and refs[0].last <= index:
            refs.pop(0)
        if refs and refs[0].first <= index:
            r = refs[0]
            r.slot0 += index + 1 - r.first
            r.first = index + 1

    def _cut_from(self, index: int) -> None:
        refs = self._refs
        while refs and refs[-1].first >= index:
            refs.pop()
        if refs and refs[-1].last >= index:
            refs[-1].last = index - 1

    def append(
        self,
        entries: list[tuple[int, int, bytes]],
        truncate_above: int | None = None,
        floor: int | None = None,
    ) -> None:
        """Append entries (in order; overwrites allowed), creating files as needed, then sync.

        Args:
            entries: ``(index, term, payload)`` in write order.
            truncate_above: if given, after the entries write a durable tombstone discarding
                every entry above this index (a flushed ``TruncateLog``).
            floor: if given, before the entries write a durable floor discarding every entry at or
                below this index (a flushed truncate flag: the log restarted after a snapshot
                install, so older entries, even at the snapshot index, are stale).

        Raises:
            OSError: on I/O failure (the WAL file is then kept, so nothing is lost).
        """
        if truncate_above is not None:
            entries = [*entries, (truncate_above + 1, -1, b"")]
        if floor is not None and floor > 0:
            entries = [(floor, -2, b""), *entries]
        if not entries:
            return
        touched: list[SegmentFile] = []
        rest = entries
        while rest:
            seg = self._files[-1] if self._files else None
            if seg is None or seg.full:
                number = seg.number + 1 if seg is not None else 1
                seg = SegmentFile.create(self._dir / segment_file_name(number), self._max_count, self._ops)
                with self._lock:
                    self._files.append(seg)
            slot0 = len(seg.records)
            new = seg.append(rest, self._checksums)
            touched.append(seg)
            rest = rest[len(new) :]
            with self._lock:
                self._add_refs(seg, slot0, new)
        for seg in touched:
            seg.sync()

    def _find(self, index: int) -> _Ref | None:
        refs = self._refs
        k = bisect.bisect_right(refs, index, key=lambda r: r.first) - 1
        if k >= 0 and refs[k].last >= index:
            return refs[k]
        return None

    def record(self, index: int) -> tuple[SegmentFile, SegmentIndexRecord] | None:
        """Where the effective entry ``index`` lives, or None."""
        with self._lock:
            ref = self._find(index)
            if ref is None:
                return None
            return ref.seg, ref.seg.records[ref.slot0 + index - ref.first]

    def term_at(self, index: int) -> int | None:
        """Term of the effective entry ``index`` or None."""
        found = self.record(index)
        return found[1].term if found is not None else None

    def read(self, index: int) -> tuple[int, bytes] | None:
        """``(term, payload)`` of the effective entry ``index`` or None.

        Raises:
            LogCorrupt: checksum mismatch.
        """
        found = self.record(index)
        if found is None:
            return None
        seg, rec = found
        return rec.term, seg.read(rec)

    def range(self) -> tuple[int, int] | None:
        """``(first, last)`` of the effective entries (there may be gaps below a snapshot)."""
        with self._lock:
            if not self._refs:
                return None
            return self._refs[0].first, self._refs[-1].last

    def contiguous_last(self, start: int) -> int:
        """The last index of the gap-free run of effective entries from ``start`` (``start - 1`` if none)."""
        with self._lock:
            cur = start - 1
            for r in self._refs:
                if r.last <= cur:
                    continue
                if r.first > cur + 1:
                    break
                cur = r.last
            return cur

    def truncate_from(self, index: int) -> None:
        """Hide every entry at or above ``index`` (in memory; the files are rewritten by later appends)."""
        with self._lock:
            self._cut_from(index)

    def release_below(self, index: int) -> list[Path]:
        """Forget entries at or below ``index`` and delete files holding nothing else.

        Returns:
            The deleted files.
        """
        deleted: list[Path] = []
        with self._lock:
            self._cut_below(index)
            refs = self._refs
            live = {id(r.seg) for r in refs}
            # Only a prefix of the files may go: a later file may hold a tombstone or floor that
            # hides stale entries of an earlier kept file. The newest file always stays (the
            # segment writer may be appending to it).
            files = self._files
            k = 0
            while k < len(files) - 1 and id(files[k]) not in live:
                files[k].close()
                deleted.append(files[k].path)
                k += 1
            self._files = files[k:]
        for path in deleted:
            self._ops.unlink(path)
        if deleted:
            self._ops.fsync_dir(self._dir)
        return deleted

    @property
    def files(self) -> list[Path]:
        """Paths of the open segment files, oldest first."""
        with self._lock:
            return [s.path for s in self._files]

    def close(self) -> None:
        """Close every file."""
        with self._lock:
            for seg in self._files:
                seg.close()
