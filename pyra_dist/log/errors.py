"""Exceptions raised by the storage engine.

Owns: the error vocabulary of ``pyra_dist.log``. Must not: carry behaviour; every error says which
file and (where it applies) which byte offset it is about, so an operator can run the dump tools
on exactly that place.
"""

from __future__ import annotations

from pathlib import Path


class LogError(Exception):
    """Base class of every storage error."""


class ConfigError(LogError, ValueError):
    """A system config key has an invalid value; the message names the key and the bad value."""


class LogCorrupt(LogError):
    """A file failed validation somewhere other than its torn tail: never silently truncated.

    Ra's equivalent is ``wal_checksum_validation_failure`` (ra-internals §7.2).
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"{path}: corrupt at byte offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class WalFailed(LogError):
    """The WAL hit an I/O error (ENOSPC, EIO, a failed fsync) and accepts no more writes.

    After a failed fsync the state of the page cache is unknown, so retrying is unsafe; the
    system must be restarted, which recovers everything that was acknowledged.
    """
