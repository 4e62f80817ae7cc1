"""The file-operations seam of the storage engine.

Owns: the ``FileOps`` Protocol (every write-side system call the WAL, segments, snapshots and meta
make) and ``OsFileOps``, the real implementation. Must not: buffer, retry or interpret errors;
tests swap in an implementation that injects short writes, ENOSPC and fsync failures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol


class FileOps(Protocol):
    """Write-side file system calls, one method per syscall (file descriptors are plain ints)."""

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        """``open(2)``; returns the descriptor."""
        ...

    def write(self, fd: int, data: bytes | memoryview) -> int:
        """``write(2)``; may write fewer bytes than given (callers loop)."""
        ...

    def pwrite(self, fd: int, data: bytes | memoryview, offset: int) -> int:
        """``pwrite(2)``; may write fewer bytes than given (callers loop)."""
        ...

    def fsync(self, fd: int) -> None:
        """``fsync(2)``."""
        ...

    def fdatasync(self, fd: int) -> None:
        """``fdatasync(2)``."""
        ...

    def fallocate(self, fd: int, offset: int, length: int) -> None:
        """``posix_fallocate(3)``."""
        ...

    def truncate(self, fd: int, length: int) -> None:
        """``ftruncate(2)``."""
        ...

    def close(self, fd: int) -> None:
        """``close(2)``."""
        ...

    def rename(self, src: Path, dst: Path) -> None:
        """``rename(2)`` (atomic within one file system)."""
        ...

    def unlink(self, path: Path) -> None:
        """``unlink(2)``."""
        ...

    def fsync_dir(self, path: Path) -> None:
        """Make directory entries (creations, renames, deletions) in ``path`` durable."""
        ...


class OsFileOps:
    """``FileOps`` backed by the ``os`` module."""

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        return os.write(fd, data)

    def pwrite(self, fd: int, data: bytes | memoryview, offset: int) -> int:
        return os.pwrite(fd, data, offset)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def fallocate(self, fd: int, offset: int, length: int) -> None:
        os.posix_fallocate(fd, offset, length)

    def truncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def close(self, fd: int) -> None:
        os.close(fd)

    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_all(ops: FileOps, fd: int, data: bytes) -> None:
    """Write all of ``data`` at the current position, looping over short writes.

    Raises:
        OSError: whatever the underlying write raises (ENOSPC, EIO, ...).
    """
    view = memoryview(data)
    while view:
        n = ops.write(fd, view)
        if n <= 0:
            raise OSError(f"write returned {n}")
        view = view[n:]


def pwrite_all(ops: FileOps, fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset``, looping over short writes.

    Raises:
        OSError: whatever the underlying write raises.
    """
    view = memoryview(data)
    while view:
        n = ops.pwrite(fd, view, offset)
        if n <= 0:
            raise OSError(f"pwrite returned {n}")
        view = view[n:]
        offset += n


def write_file_atomically(ops: FileOps, path: Path, data: bytes) -> None:
    """Create or replace ``path`` with ``data``: temp file, fsync, rename, fsync of the directory.

    Raises:
        OSError: any I/O failure; the old file (if any) is then left untouched.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = ops.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        write_all(ops, fd, data)
        ops.fsync(fd)
    finally:
        ops.close(fd)
    ops.rename(tmp, path)
    ops.fsync_dir(path.parent)
