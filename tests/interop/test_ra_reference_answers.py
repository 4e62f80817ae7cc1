"""Real Ra 2.2.0 still gives the recorded answers to every differential scenario.

This pins the spec that the pyra side is compared against (``ra_differential.py``): three real
Ra 2.2.0 nodes, and the ``ra`` client called from an erl shell with Ra's code, from a bare erl
shell through ``rpc:call`` on a server node, and from Elixir.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from ra_differential import (
    SCENARIOS,
    RaCluster,
    Scenario,
    Shells,
    assert_same_as_ra,
    client_shells,
    ra_cluster,
    run_scenario,
)

pytestmark = pytest.mark.erlang


@pytest.fixture(scope="module")
def real_ra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RaCluster, Shells]]:
    cookie = "c" + secrets.token_hex(8)
    prefix = "ref" + secrets.token_hex(3)
    data_dir: Path = tmp_path_factory.mktemp("ra-data")
    with ra_cluster(prefix, cookie, data_dir) as cluster, client_shells(prefix, cookie) as shells:
        yield cluster, shells


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_real_ra_2_2_0_answers_every_scenario_as_recorded(
    real_ra: tuple[RaCluster, Shells], scenario: Scenario
) -> None:
    cluster, shells = real_ra
    outcomes = run_scenario(
        shells.for_kind(scenario.shell), cluster.nodes, scenario, kill=cluster.kill, restart=cluster.restart
    )
    assert_same_as_ra(scenario, outcomes)
