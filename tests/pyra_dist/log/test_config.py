"""SystemConfig: Ra's keys, Ra 2.2.0's real defaults, validation with clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pyra_dist.log import ConfigError, SystemConfig, WalSyncMethod, WalWriteStrategy


def test_defaults_are_ra_2_2_0_defaults() -> None:
    cfg = SystemConfig()
    assert (
        cfg.wal_max_size_bytes,
        cfg.wal_max_batch_size,
        cfg.wal_max_entries,
        cfg.wal_write_strategy,
        cfg.wal_sync_method,
        cfg.wal_compute_checksums,
        cfg.wal_pre_allocate,
        cfg.segment_max_entries,
        cfg.segment_compute_checksums,
        cfg.snapshot_chunk_size,
        cfg.low_priority_commands_flush_size,
    ) == (
        256_000_000,
        8192,
        None,
        WalWriteStrategy.DEFAULT,
        WalSyncMethod.DATASYNC,
        True,
        False,
        4096,
        True,
        1_000_000,
        25,
    )


def test_data_dir_defaults_to_cwd_joined_with_node_and_wal_dir_to_it(tmp_path: Path) -> None:
    assert SystemConfig().system_dir("py@vm") == Path.cwd() / "py@vm"
    cfg = SystemConfig(data_dir=tmp_path, wal_data_dir=tmp_path / "wal")
    assert (cfg.system_dir("n"), cfg.wal_dir("n")) == (tmp_path / "n", tmp_path / "wal")


def test_from_mapping_accepts_ra_key_names_and_values(tmp_path: Path) -> None:
    cfg = SystemConfig.from_mapping(
        {
            "data_dir": str(tmp_path),
            "wal_sync_method": "sync",
            "wal_write_strategy": "o_sync",
            "wal_max_entries": "undefined",
            "segment_compute_checksums": False,
            "metrics_labels": {"system": "quorum_queues"},
            "logger_module": "my.logger",
        }
    )
    assert (cfg.data_dir, cfg.wal_sync_method, cfg.wal_write_strategy, cfg.wal_max_entries) == (
        tmp_path,
        WalSyncMethod.SYNC,
        WalWriteStrategy.O_SYNC,
        None,
    )
    assert (cfg.segment_compute_checksums, cfg.metrics_labels, cfg.logger) == (
        False,
        {"system": "quorum_queues"},
        logging.getLogger("my.logger"),
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"wal_max_batch_size": 0}, "wal_max_batch_size must be a positive integer, got 0"),
        ({"segment_max_entries": 70000}, "segment_max_entries must be <= 65535, got 70000"),
        ({"wal_sync_method": "fsync"}, "wal_sync_method must be one of datasync, sync, none, got 'fsync'"),
        ({"wal_compute_checksums": "yes"}, "wal_compute_checksums must be true or false, got 'yes'"),
        ({"wal_max_size_bytes": -1}, "wal_max_size_bytes must be a positive integer, got -1"),
        ({"wal_max_entriez": 5}, "unknown system config key 'wal_max_entriez'"),
    ],
)
def test_invalid_values_are_rejected_naming_the_key(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SystemConfig.from_mapping(values)


def test_metrics_labels_are_attached_to_wal_metrics(tmp_path: Path) -> None:
    from pyra_dist.log import LogSystem

    system = LogSystem.open(SystemConfig(data_dir=tmp_path, metrics_labels={"system": "qq"}), "n1")
    try:
        assert system.wal.metrics.labels == {"system": "qq"}
    finally:
        system.close()


def test_logger_receives_the_recovery_report(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pyra_dist.log import LogSystem

    logger = logging.getLogger("test.pyra.log.custom")
    with caplog.at_level(logging.INFO, logger="test.pyra.log.custom"):
        LogSystem.open(SystemConfig(data_dir=tmp_path, logger=logger), "n1").close()
    assert [r.name for r in caplog.records] == ["test.pyra.log.custom"]
    assert caplog.records[0].getMessage().startswith("wal default: recovered 0 records from 0 WAL files in ")
