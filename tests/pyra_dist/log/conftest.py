"""Fixtures of the storage-engine tests: a fault-injecting FileOps and a system factory."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from log_support import FaultyFileOps, FullSizeRandom, SystemFactory

from pyra_dist.log import LogSystem, SystemConfig
from pyra_dist.log.fileops import OsFileOps


@pytest.fixture
def ops() -> FaultyFileOps:
    return FaultyFileOps()


@pytest.fixture
def open_system(tmp_path: Path) -> Iterator[SystemFactory]:
    """Open a LogSystem in ``tmp_path`` (node ``n1``); every system opened is closed at the end."""
    opened: list[LogSystem] = []

    def factory(
        ops: OsFileOps | None = None, rng: random.Random | None = None, **overrides: Any
    ) -> LogSystem:
        cfg = SystemConfig(data_dir=tmp_path, **overrides)
        system = LogSystem.open(cfg, "n1", ops, rng or FullSizeRandom())
        opened.append(system)
        return system

    yield factory
    for system in opened:
        try:
            system.close()
        except Exception:
            pass
