"""Storage engine of pyra: one WAL per system with group commit, memtables, segments, snapshots, meta.

Owns: file I/O for Raft logs (``docs/internals/log.md`` documents every format). Must not:
decide Raft; the core sees storage only through ``LogView`` reads and its log effects.
"""

from __future__ import annotations

from pyra_dist.log.config import SystemConfig, WalSyncMethod, WalWriteStrategy
from pyra_dist.log.core_view import CoreLogView, EntryCodec, PickleEntryCodec
from pyra_dist.log.errors import ConfigError, LogCorrupt, LogError, WalFailed
from pyra_dist.log.format import SnapshotMetaRecord
from pyra_dist.log.server_log import RawEntry, ServerLog
from pyra_dist.log.system import LogSystem, RecoveryReport
from pyra_dist.log.wal import Wal, WalError, WalEvent, WalWritten

__all__ = [
    "ConfigError",
    "CoreLogView",
    "EntryCodec",
    "LogCorrupt",
    "LogError",
    "LogSystem",
    "PickleEntryCodec",
    "RawEntry",
    "RecoveryReport",
    "ServerLog",
    "SnapshotMetaRecord",
    "SystemConfig",
    "Wal",
    "WalError",
    "WalEvent",
    "WalFailed",
    "WalSyncMethod",
    "WalWriteStrategy",
    "WalWritten",
]
