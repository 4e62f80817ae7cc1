"""Per-system storage configuration with Ra's keys and Ra 2.2.0's real defaults.

Owns: ``SystemConfig`` (typed, validated on construction) and ``SystemConfig.from_mapping`` which
accepts Ra's key names as found in a Ra system config or app env (ra-internals §7.7). Must not:
open files or start threads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from pyra_dist.log.errors import ConfigError


class WalWriteStrategy(Enum):
    """Ra's ``wal_write_strategy`` (2.2.0; removed in main)."""

    DEFAULT = "default"
    """write(2) of the whole batch, then one sync call, then notify the writers."""
    O_SYNC = "o_sync"
    """The file is opened with O_SYNC (O_DSYNC for ``datasync``): the write itself is durable."""
    SYNC_AFTER_NOTIFY = "sync_after_notify"
    """write, notify, then sync: writers learn of the write before it is durable (Ra's option,
    trades durability on power loss for latency; a process crash loses nothing)."""


class WalSyncMethod(Enum):
    """Ra's ``wal_sync_method``."""

    DATASYNC = "datasync"
    """fdatasync(2): data plus the metadata needed to read it back (the default)."""
    SYNC = "sync"
    """fsync(2): data and all metadata."""
    NONE = "none"
    """No sync call: survives a process crash (the page cache survives), not a power loss."""


def _default_logger() -> logging.Logger:
    return logging.getLogger("pyra_dist.log")


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemConfig:
    """Storage settings of one Ra system (Ra's system config map, ra-internals §7.7).

    ``data_dir`` ``None`` means Ra's default: the current directory joined with the node name
    (resolved by ``system_dir``). Validation runs in ``__post_init__`` and raises ``ConfigError``
    naming the key.
    """

    name: str = "default"
    data_dir: Path | None = None
    wal_data_dir: Path | None = None
    """``None`` = the system directory (Ra: defaults to ``data_dir``)."""
    wal_max_size_bytes: int = 256_000_000
    wal_max_batch_size: int = 8192
    wal_max_entries: int | None = None
    wal_write_strategy: WalWriteStrategy = WalWriteStrategy.DEFAULT
    wal_sync_method: WalSyncMethod = WalSyncMethod.DATASYNC
    wal_compute_checksums: bool = True
    wal_pre_allocate: bool = False
    segment_max_entries: int = 4096
    segment_compute_checksums: bool = True
    snapshot_chunk_size: int = 1_000_000
    low_priority_commands_flush_size: int = 25
    """Read by the server layer: how many low-priority commands are appended per flush."""
    metrics_labels: Mapping[str, str] = field(default_factory=dict)
    """Attached to every metrics snapshot of this system's WAL (Ra: seshat labels)."""
    logger: logging.Logger = field(default_factory=_default_logger)
    """Python equivalent of Ra's ``logger_module``: every log line of this system goes here."""

    def __post_init__(self) -> None:
        _positive_int("wal_max_size_bytes", self.wal_max_size_bytes)
        _positive_int("wal_max_batch_size", self.wal_max_batch_size)
        if self.wal_max_entries is not None:
            _positive_int("wal_max_entries", self.wal_max_entries)
        _positive_int("segment_max_entries", self.segment_max_entries)
        if self.segment_max_entries > 0xFFFF:
            # The segment header stores the slot count in 16 bits (ra-internals §7.3).
            raise ConfigError(f"segment_max_entries must be <= 65535, got {self.segment_max_entries}")
        _positive_int("snapshot_chunk_size", self.snapshot_chunk_size)
        _positive_int("low_priority_commands_flush_size", self.low_priority_commands_flush_size)
        for key in ("wal_compute_checksums", "segment_compute_checksums", "wal_pre_allocate"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        if not isinstance(self.wal_write_strategy, WalWriteStrategy):
            raise ConfigError(
                f"wal_write_strategy must be a WalWriteStrategy, got {self.wal_write_strategy!r}"
            )
        if not isinstance(self.wal_sync_method, WalSyncMethod):
            raise ConfigError(f"wal_sync_method must be a WalSyncMethod, got {self.wal_sync_method!r}")
        for key in ("data_dir", "wal_data_dir"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, Path):
                raise ConfigError(f"{key} must be a pathlib.Path, got {value!r}")
        if not self.name or "/" in self.name:
            raise ConfigError(f"name must be a non-empty string without '/', got {self.name!r}")
        if not isinstance(self.logger, logging.Logger):
            raise ConfigError(f"logger must be a logging.Logger, got {self.logger!r}")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.metrics_labels.items()):
            raise ConfigError(f"metrics_labels must map str to str, got {self.metrics_labels!r}")

    def system_dir(self, node: str) -> Path:
        """The directory holding this system's servers (Ra: ``data_dir`` joined with the node name)."""
        base = self.data_dir if self.data_dir is not None else Path.cwd()
        return base / node

    def wal_dir(self, node: str) -> Path:
        """The directory holding this system's WAL files."""
        return self.wal_data_dir if self.wal_data_dir is not None else self.system_dir(node)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> SystemConfig:
        """Build a config from Ra's key names (strings for enum values, ``"undefined"`` for unset).

        Args:
            values: e.g. ``{"wal_sync_method": "sync", "wal_max_entries": 1000}``; the key
                ``logger_module`` is accepted as an alias of ``logger``.

        Returns:
            The validated config.

        Raises:
            ConfigError: an unknown key (the message lists the known ones) or a bad value.
        """
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            target = "logger" if key == "logger_module" else key
            if target not in known:
                raise ConfigError(
                    f"unknown system config key {key!r}; known keys: {', '.join(sorted(known))}"
                )
            kwargs[target] = _coerce(target, value)
        return cls(**kwargs)


def _positive_int(key: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")


def _coerce(key: str, value: object) -> object:
    try:
        if key == "wal_write_strategy" and isinstance(value, str):
            return WalWriteStrategy(value)
        if key == "wal_sync_method" and isinstance(value, str):
            return WalSyncMethod(value)
    except ValueError:
        allowed = WalWriteStrategy if key == "wal_write_strategy" else WalSyncMethod
        raise ConfigError(
            f"{key} must be one of {', '.join(m.value for m in allowed)}, got {value!r}"
        ) from None
    if key in ("data_dir", "wal_data_dir") and isinstance(value, str):
        return Path(value)
    if key == "wal_max_entries" and value == "undefined":
        return None
    if key == "logger" and isinstance(value, str):
        return logging.getLogger(value)
    return value
