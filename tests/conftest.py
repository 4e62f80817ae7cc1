"""Shared pytest configuration.

Interop tests (marker ``erlang``) run against real OTP 25/28, Elixir and Ra 2.2.0 peers and are
never skipped: CI installs the peers. Long soak/chaos runs are marked ``slow`` and run only with
``--slow``.
"""

from __future__ import annotations

import itertools
import os
import secrets

import pytest

_counter = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False, help="run long soak and chaos tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip_slow = pytest.mark.skip(reason="long run: pass --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture
def cookie() -> str:
    """A fresh distribution cookie per test."""
    return "c" + secrets.token_hex(8)


@pytest.fixture
def node_name() -> NodeNames:
    """Unique node-name prefixes, so parallel or repeated runs never collide in EPMD."""
    return NodeNames(f"t{os.getpid()}x{next(_counter)}")


class NodeNames:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._n = itertools.count()

    def __call__(self, role: str) -> str:
        return f"{role}{self.prefix}n{next(self._n)}"
