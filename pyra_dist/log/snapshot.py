"""Snapshot files of one server: atomic write, validation, chunked read and chunked accept.

Owns: ``<server_dir>/snapshots/<TermHex16>_<IndexHex16>/snapshot.dat`` (Ra's directory naming,
ra-internals §7.1/§7.4), writing it atomically, choosing the newest valid one on recovery and
deleting older or invalid ones. Must not: decide when to snapshot, encode machine states (the
state arrives as bytes) or touch the log (``server_log.py`` releases entries below a snapshot).

Atomicity: a snapshot is written into ``<name>.partial/``, the file is fsynced, the directory is
fsynced, renamed to ``<name>/`` and the parent directory fsynced. A crash leaves either the old
snapshot or the complete new one; ``.partial`` leftovers are deleted on recovery.
"""

from __future__ import annotations

import os
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

from pyra_dist.log import format as fmt
from pyra_dist.log.errors import LogCorrupt
from pyra_dist.log.fileops import FileOps, OsFileOps, pwrite_all, write_all
from pyra_dist.log.format import SnapshotMetaRecord

SNAPSHOT_FILE = "snapshot.dat"
PARTIAL_SUFFIX = ".partial"


def snapshot_dir_name(index: int, term: int) -> str:
    """``<TermHex16>_<IndexHex16>``, upper-case hex (ra-internals §7.1)."""
    return f"{term:016X}_{index:016X}"


def encode_snapshot(meta: SnapshotMetaRecord, state: bytes, installed: bool = False) -> bytes:
    """The full bytes of a snapshot file for ``meta`` and the machine-state bytes ``state``.

    ``installed`` (flags bit 0) marks a snapshot received from a leader, which replaced the whole
    log, as opposed to one taken locally, which only compacted it (recovery treats them apart).
    """
    meta_bytes = fmt.encode_snapshot_meta(meta)
    size = fmt.U32.pack(len(meta_bytes))
    crc = zlib.crc32(state, zlib.crc32(meta_bytes, zlib.crc32(size)))
    header = fmt.SNAPSHOT_HEADER.pack(
        fmt.SNAPSHOT_MAGIC,
        fmt.SNAPSHOT_VERSION,
        bytes([fmt.SNAPSHOT_FLAG_INSTALLED if installed else 0, 0, 0]),
        crc,
        len(meta_bytes),
    )
    return b"".join((header, meta_bytes, state))


def read_snapshot_file(path: Path) -> tuple[SnapshotMetaRecord, int, int]:
    """Validate a snapshot file.

    Returns:
        ``(meta, state_offset, crc)``: the state bytes are ``file[state_offset:]``.

    Raises:
        LogCorrupt: bad magic/version, truncated file, bad meta, or CRC mismatch.
    """
    buf = path.read_bytes()
    hsize = fmt.SNAPSHOT_HEADER.size
    if len(buf) < hsize:
        raise LogCorrupt(path, 0, "file shorter than the snapshot header")
    magic, version, _res, crc, meta_size = fmt.SNAPSHOT_HEADER.unpack_from(buf, 0)
    if magic != fmt.SNAPSHOT_MAGIC or version != fmt.SNAPSHOT_VERSION:
        raise LogCorrupt(path, 0, f"not a pyra snapshot file (magic {magic!r}, version {version})")
    if hsize + meta_size > len(buf):
        raise LogCorrupt(path, hsize - 4, "meta size runs past the end of the file")
    # The CRC covers everything after the CRC field, from MetaSize to EOF (as Ra's RASN).
    if zlib.crc32(memoryview(buf)[hsize - 4 :]) != crc:
        raise LogCorrupt(path, hsize - 8, "snapshot checksum mismatch")
    try:
        meta = fmt.decode_snapshot_meta(buf[hsize : hsize + meta_size])
    except (ValueError, UnicodeDecodeError) as exc:
        raise LogCorrupt(path, hsize, f"bad snapshot meta: {exc}") from None
    return meta, hsize + meta_size, crc


class SnapshotStore:
    """The snapshots directory of one server (Ra ``ra_snapshot`` with ``ra_log_snapshot``)."""

    def __init__(self, server_dir: Path, ops: FileOps | None = None) -> None:
        self._dir = server_dir / "snapshots"
        self._ops = ops or OsFileOps()
        self._current: SnapshotMetaRecord | None = None
        self.installed = False
        """The current snapshot was installed from a leader (not taken locally)."""

    @property
    def directory(self) -> Path:
        """``<server_dir>/snapshots``."""
        return self._dir

    @property
    def current(self) -> SnapshotMetaRecord | None:
        """Meta of the current snapshot, or None."""
        return self._current

    def current_path(self) -> Path | None:
        """Path of the current ``snapshot.dat``."""
        m = self._current
        return None if m is None else self._dir / snapshot_dir_name(m.index, m.term) / SNAPSHOT_FILE

    def recover(self) -> SnapshotMetaRecord | None:
        """Pick the newest snapshot that validates; delete partial, invalid and older ones.

        Returns:
            The current snapshot's meta, or None.
        """
        self._dir.mkdir(parents=True, exist_ok=True)
        candidates: list[tuple[int, int, Path]] = []
        for d in self._dir.iterdir():
            if d.name.endswith(PARTIAL_SUFFIX) or not d.is_dir():
                self._remove(d)
                continue
            try:
                term_hex, index_hex = d.name.split("_")
                candidates.append((int(index_hex, 16), int(term_hex, 16), d))
            except ValueError:
                self._remove(d)
        candidates.sort(reverse=True)
        chosen: SnapshotMetaRecord | None = None
        for index, term, d in candidates:
            if chosen is None:
                try:
                    meta, _, _ = read_snapshot_file(d / SNAPSHOT_FILE)
                except (LogCorrupt, OSError):
                    self._remove(d)
                    continue
                if (meta.index, meta.term) == (index, term):
                    chosen = meta
                    with open(d / SNAPSHOT_FILE, "rb") as f:
                        self.installed = bool(f.read(6)[5] & fmt.SNAPSHOT_FLAG_INSTALLED)
                    continue
            self._remove(d)
        self._current = chosen
        return chosen

    def _remove(self, path: Path) -> None:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def write(self, meta: SnapshotMetaRecord, state: bytes, installed: bool = False) -> Path:
        """Write a snapshot atomically, make it current and delete older ones.

        Args:
            meta: the snapshot's meta (index, term, cluster, machine version).
            state: the machine state's bytes.
            installed: received from a leader (replaces the log) rather than taken locally.

        Returns:
            The path of the new ``snapshot.dat``.

        Raises:
            OSError: on I/O failure (the previous snapshot stays current).
        """
        path = self._install(meta, [encode_snapshot(meta, state, installed)])
        self.installed = installed
        return path

    def _install(self, meta: SnapshotMetaRecord, parts: list[bytes]) -> Path:
        partial, fd = self._open_partial(meta)
        try:
            for part in parts:
                write_all(self._ops, fd, part)
        except BaseException:
            self._ops.close(fd)
            raise
        return self._commit(meta, partial, fd)

    def _open_partial(self, meta: SnapshotMetaRecord) -> tuple[Path, int]:
        self._dir.mkdir(parents=True, exist_ok=True)
        partial = self._dir / (snapshot_dir_name(meta.index, meta.term) + PARTIAL_SUFFIX)
        self._remove(partial)
        partial.mkdir()
        return partial, self._ops.open(partial / SNAPSHOT_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL)

    def _commit(self, meta: SnapshotMetaRecord, partial: Path, fd: int) -> Path:
        """fsync the file and its directory, rename the directory into place, fsync the parent."""
        try:
            self._ops.fsync(fd)
        finally:
            self._ops.close(fd)
        self._ops.fsync_dir(partial)
        final = self._dir / snapshot_dir_name(meta.index, meta.term)
        if final.exists():
            self._remove(final)
        self._ops.rename(partial, final)
        self._ops.fsync_dir(self._dir)
        previous = self._current
        self._current = meta
        if previous is not None and previous != meta:
            self._remove(self._dir / snapshot_dir_name(previous.index, previous.term))
        return final / SNAPSHOT_FILE

    def read_state(self) -> bytes:
        """The current snapshot's state bytes (validated).

        Raises:
            LookupError: no snapshot. LogCorrupt: the file fails validation.
        """
        path = self.current_path()
        if path is None:
            raise LookupError("no snapshot")
        _meta, offset, _crc = read_snapshot_file(path)
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()

    def read_chunks(self, chunk_size: int) -> Iterator[bytes]:
        """Stream the current snapshot's state bytes in chunks of ``chunk_size`` (the last shorter).

        The file is validated first; chunks are read lazily, so a sender holds one chunk at a time
        (Ra ``begin_read``/``read_chunk`` with ``snapshot_chunk_size``).

        Raises:
            LookupError: no snapshot. LogCorrupt: the file fails validation.
        """
        path = self.current_path()
        if path is None:
            raise LookupError("no snapshot")
        _meta, offset, _crc = read_snapshot_file(path)
        return self._chunks(path, offset, chunk_size)

    @staticmethod
    def _chunks(path: Path, offset: int, chunk_size: int) -> Iterator[bytes]:
        with open(path, "rb") as f:
            f.seek(offset)
            while chunk := f.read(chunk_size):
                yield chunk

    def begin_accept(self, meta: SnapshotMetaRecord) -> SnapshotAcceptor:
        """Start receiving a snapshot sent in chunks (Ra ``begin_accept``)."""
        return SnapshotAcceptor(self, meta)


class SnapshotAcceptor:
    """Streams the chunks of an incoming snapshot into a ``.partial`` file (Ra ``accept_chunk``).

    The header is written with a zero CRC first; ``complete`` writes the real CRC (computed while
    the chunks arrived), syncs and renames the directory into place, so a snapshot never has to be
    held in memory and a crash mid-transfer leaves only a ``.partial`` directory, deleted on
    recovery. ``abort`` discards a transfer.
    """

    def __init__(self, store: SnapshotStore, meta: SnapshotMetaRecord) -> None:
        self._store = store
        self.meta = meta
        meta_bytes = fmt.encode_snapshot_meta(meta)
        self._partial, self._fd = store._open_partial(meta)
        self._header = (fmt.SNAPSHOT_MAGIC, fmt.SNAPSHOT_VERSION, bytes([fmt.SNAPSHOT_FLAG_INSTALLED, 0, 0]))
        self._meta_size = len(meta_bytes)
        placeholder = fmt.SNAPSHOT_HEADER.pack(*self._header, 0, self._meta_size)
        write_all(store._ops, self._fd, placeholder + meta_bytes)
        # The file CRC covers meta_size, meta and state; the state CRC is kept apart for the
        # sender's check.
        self._file_crc = zlib.crc32(meta_bytes, zlib.crc32(fmt.U32.pack(self._meta_size)))
        self._crc = 0
        self.received = 0

    def accept_chunk(self, data: bytes) -> None:
        """Append the next chunk of state bytes.

        Raises:
            OSError: on I/O failure (call ``abort``).
        """
        write_all(self._store._ops, self._fd, data)
        self._crc = zlib.crc32(data, self._crc)
        self._file_crc = zlib.crc32(data, self._file_crc)
        self.received += len(data)

    def complete(self, expected_crc: int | None = None) -> Path:
        """Validate and install the snapshot as current (older ones are deleted).

        Args:
            expected_crc: CRC-32 of the whole state as the sender computed it, if it sent one.

        Returns:
            The path of the installed ``snapshot.dat``.

        Raises:
            ValueError: the received bytes do not match ``expected_crc`` (nothing is installed).
            OSError: on I/O failure.
        """
        if expected_crc is not None and expected_crc != self._crc:
            self.abort()
            raise ValueError(f"snapshot state crc {self._crc:#010x} != expected {expected_crc:#010x}")
        ops = self._store._ops
        header = fmt.SNAPSHOT_HEADER.pack(*self._header, self._file_crc, self._meta_size)
        pwrite_all(ops, self._fd, header, 0)
        path = self._store._commit(self.meta, self._partial, self._fd)
        self._store.installed = True
        return path

    def abort(self) -> None:
        """Discard the transfer (its ``.partial`` directory is removed)."""
        try:
            self._store._ops.close(self._fd)
        except OSError:
            pass
        self._store._remove(self._partial)
