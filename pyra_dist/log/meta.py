"""Durable per-server metadata: current term, voted-for and last applied (Ra ``ra_log_meta``).

Owns: the ``meta`` file of one server (two checksummed one-page slots, ``format.py``). Must not:
decide when to vote. ``store_sync`` returns only after the data is on disk, so a driver that
persists the vote before sending the vote reply (R3) never grants a vote it could forget.

Every write carries a sequence number one higher than the last and goes to the slot that does
not hold the last *synced* copy; reading picks the valid slot with the highest sequence number.
A write torn by a crash (even a power loss) can therefore only damage a copy that is not the
last durable one. ``store_last_applied`` writes without a
sync (Ra writes last_applied asynchronously, ra-internals §7.5): losing it only means replaying
more entries after a restart.

No descriptor is held between writes: each write opens the file, ``pwrite``s one slot, syncs if
asked and closes it, so a node hosting thousands of servers keeps no meta descriptors open (a kept
descriptor per server was 3000+ fds for 1000 clusters). Meta writes are rare: a term or vote change,
and ``last_applied`` at most once per tick of a leader, so the extra ``open``/``close`` (a few us)
never sits on the command path. Closing without a sync loses nothing a crash would not lose anyway:
the data stays in the page cache, and the next ``fdatasync`` on any descriptor of the file flushes it.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from pyra_dist.log import format as fmt
from pyra_dist.log.errors import LogCorrupt
from pyra_dist.log.fileops import FileOps, OsFileOps, pwrite_all

META_FILE = "meta"


@dataclass(frozen=True, slots=True)
class ServerMeta:
    """The persisted fields; ``voted_for`` is a ``(name, node)`` server id or None."""

    current_term: int = 0
    voted_for: tuple[str, str] | None = None
    last_applied: int = 0


def encode_meta_slot(seq: int, meta: ServerMeta) -> bytes:
    """One slot's bytes (shorter than ``META_SLOT_SIZE``; the rest of the page is left as is)."""
    vote = b""
    if meta.voted_for is not None:
        for text in meta.voted_for:
            raw = text.encode()
            if len(raw) > fmt.META_MAX_NAME:
                raise ValueError(f"voted_for part too long: {len(raw)} bytes")
            vote += fmt.U16.pack(len(raw)) + raw
    body = (
        fmt.META_SLOT_HEADER.pack(
            fmt.META_MAGIC,
            fmt.META_VERSION,
            b"\0\0\0",
            0,
            seq,
            meta.current_term,
            meta.last_applied,
            1 if meta.voted_for is not None else 0,
        )[12:]
        + vote
    )
    crc = zlib.crc32(body)
    return fmt.META_MAGIC + bytes([fmt.META_VERSION]) + b"\0\0\0" + fmt.U32.pack(crc) + body


def decode_meta_slot(buf: bytes) -> tuple[int, ServerMeta] | None:
    """``(seq, meta)`` of a valid slot, or None for an empty or damaged slot."""
    h = fmt.META_SLOT_HEADER
    if len(buf) < h.size:
        return None
    magic, version, _res, crc, seq, term, applied, has_vote = h.unpack_from(buf, 0)
    if magic != fmt.META_MAGIC or version != fmt.META_VERSION:
        return None
    pos = h.size
    vote: tuple[str, str] | None = None
    try:
        if has_vote:
            parts: list[str] = []
            for _ in range(2):
                (n,) = fmt.U16.unpack_from(buf, pos)
                if n > fmt.META_MAX_NAME:
                    return None
                parts.append(buf[pos + 2 : pos + 2 + n].decode())
                pos += 2 + n
            vote = (parts[0], parts[1])
    except (UnicodeDecodeError, Exception):
        return None
    if zlib.crc32(buf[12:pos]) != crc:
        return None
    return seq, ServerMeta(term, vote, applied)


class MetaStore:
    """The meta file of one server (opened per write, never held open)."""

    def __init__(self, server_dir: Path, ops: FileOps | None = None) -> None:
        self._path = server_dir / META_FILE
        self._ops = ops or OsFileOps()
        self._seq = 0
        # The slot holding the last copy known to be on disk; writes always go to the other one.
        self._synced_slot = 1
        # Whether the file's directory entry is known durable: the first synced write after an
        # open syncs the server directory too, so a vote in a freshly created file survives a
        # power loss (the file's own fdatasync does not cover its name).
        self._entry_synced = False
        self.meta = ServerMeta()

    @property
    def path(self) -> Path:
        """The meta file."""
        return self._path

    def recover(self) -> ServerMeta:
        """Read the newest valid slot (a missing file means a new server).

        Raises:
            LogCorrupt: the file is non-empty but neither slot is valid.
            OSError: the file exists but could not be synced.
        """
        if self._path.exists():
            buf = self._path.read_bytes()
            slots = [
                decode_meta_slot(buf[k * fmt.META_SLOT_SIZE : (k + 1) * fmt.META_SLOT_SIZE]) for k in (0, 1)
            ]
            valid = [(s[0], k, s[1]) for k, s in enumerate(slots) if s is not None]
            if valid:
                self._seq, self._synced_slot, self.meta = max(valid)
            elif buf.strip(b"\0"):
                raise LogCorrupt(self._path, 0, "neither meta slot is valid")
            # What we read may have been only in the page cache of a crashed process: make it
            # the durable copy before any write may replace the other slot.
            fd = self._ops.open(self._path, os.O_WRONLY)
            try:
                self._ops.fdatasync(fd)
            finally:
                self._ops.close(fd)
        return self.meta

    def _write(self, meta: ServerMeta, sync: bool) -> None:
        slot = 1 - self._synced_slot
        data = encode_meta_slot(self._seq + 1, meta)
        fd = self._ops.open(self._path, os.O_WRONLY | os.O_CREAT)
        try:
            pwrite_all(self._ops, fd, data, slot * fmt.META_SLOT_SIZE)
            self._seq += 1
            self.meta = meta
            if sync:
                self._ops.fdatasync(fd)
        finally:
            self._ops.close(fd)
        if sync:
            if not self._entry_synced:
                self._ops.fsync_dir(self._path.parent)
                self._entry_synced = True
            self._synced_slot = slot

    def store_sync(self, current_term: int, voted_for: tuple[str, str] | None) -> None:
        """Persist term and vote together and return once durable (Ra ``store_sync``).

        Raises:
            OSError: on I/O failure; the caller must then not grant the vote.
        """
        self._write(ServerMeta(current_term, voted_for, self.meta.last_applied), sync=True)

    def store_last_applied(self, last_applied: int) -> None:
        """Record last_applied without waiting for the disk (Ra writes it asynchronously).

        Raises:
            OSError: the write failed.
        """
        if last_applied > self.meta.last_applied:
            self._write(ServerMeta(self.meta.current_term, self.meta.voted_for, last_applied), sync=False)

    def close(self) -> None:
        """Nothing to release (no descriptor is held between writes); kept for the log's lifecycle."""
