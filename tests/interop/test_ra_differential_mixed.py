"""A mixed cluster (issue 6) answers every ``ra`` client scenario exactly as real Ra 2.2.0 does.

``$N1`` is a real Ra 2.2.0 node, ``$N2`` and ``$N3`` are ``python -m pyra_dist.erlang`` nodes, so
every scenario drives Raft traffic across languages: an Erlang leader replicating to Python
followers (AERs, heartbeats for consistent queries, redirects), leadership transferred to a
Python server and an election won by one, Python members added to and removed from an
Erlang-led cluster, a minority made of stopped Python servers, and cluster deletion.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from ra_differential import (
    SCENARIOS,
    MixedCluster,
    Scenario,
    Shells,
    assert_same_as_ra,
    client_shells,
    mixed_cluster,
    run_scenario,
)

pytestmark = pytest.mark.erlang


@pytest.fixture(scope="module")
def mixed_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MixedCluster, Shells]]:
    cookie = "c" + secrets.token_hex(8)
    prefix = "mix" + secrets.token_hex(3)
    data_dir = tmp_path_factory.mktemp("mixed-data")
    with mixed_cluster(prefix, cookie, data_dir) as cluster, client_shells(prefix, cookie) as shells:
        yield cluster, shells


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_mixed_nodes_answer_like_ra_2_2_0(
    mixed_nodes: tuple[MixedCluster, Shells], scenario: Scenario
) -> None:
    cluster, shells = mixed_nodes
    outcomes = run_scenario(
        shells.for_kind(scenario.shell), cluster.nodes, scenario, kill=cluster.kill, restart=cluster.restart
    )
    assert_same_as_ra(scenario, outcomes)
