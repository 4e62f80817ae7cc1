"""Test support for the storage-engine tests (imported by conftest and the test modules)."""

from __future__ import annotations

import errno
import random
import threading
from collections.abc import Callable
from pathlib import Path

from pyra_dist.log import LogSystem
from pyra_dist.log.fileops import OsFileOps

SystemFactory = Callable[..., LogSystem]


class FullSizeRandom(random.Random):
    """Makes Ra's random first-WAL-file size deterministic: always the upper (or lower) bound."""

    def __init__(self, low: bool = False) -> None:
        super().__init__(0)
        self.low = low

    def randint(self, a: int, b: int) -> int:
        return a if self.low else b


class FaultyFileOps(OsFileOps):
    """Real file operations that count calls and inject the faults a test asks for."""

    def __init__(self) -> None:
        self.writes = 0
        self.fsyncs = 0
        self.fdatasyncs = 0
        self.short_writes = False
        self.enospc_on_write: Callable[[int], bool] | None = None
        self.fail_fdatasync = False
        self.enospc_on_pwrite = False
        self.open_flags: list[int] = []
        self.sync_gate: threading.Event | None = None
        """If set, the first fdatasync blocks until the event is set (lets a test build a batch)."""
        self.in_sync = threading.Event()

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        self.open_flags.append(flags)
        return super().open(path, flags, mode)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.enospc_on_write is not None and self.enospc_on_write(fd):
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        self.writes += 1
        if self.short_writes and len(data) > 1:
            data = data[: len(data) // 2]
        return super().write(fd, data)

    def pwrite(self, fd: int, data: bytes | memoryview, offset: int) -> int:
        if self.enospc_on_pwrite:
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        if self.short_writes and len(data) > 1:
            data = data[: len(data) // 2]
        return super().pwrite(fd, data, offset)

    def fsync(self, fd: int) -> None:
        self.fsyncs += 1
        super().fsync(fd)

    def fdatasync(self, fd: int) -> None:
        gate = self.sync_gate
        if gate is not None:
            self.sync_gate = None
            self.in_sync.set()
            gate.wait(30)
        if self.fail_fdatasync:
            raise OSError(errno.EIO, "Input/output error (injected)")
        self.fdatasyncs += 1
        super().fdatasync(fd)
