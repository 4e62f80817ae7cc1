"""Python nodes answer every ``ra`` client scenario exactly as real Ra 2.2.0 servers do.

Three ``python -m pyra_dist.erlang`` nodes host the servers; the clients are real peers: an erl
shell with Ra 2.2.0's client code (issue 5, 3a/3b), a bare erl shell calling ``ra`` through
``rpc:call`` on a Python node (3c), and Elixir (3e). The expected answers are the ones real Ra
gave (``ra_differential.py``, pinned by test_ra_reference_answers.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from ra_differential import (
    SCENARIOS,
    PyraCluster,
    Scenario,
    Shells,
    assert_same_as_ra,
    client_shells,
    pyra_cluster,
    run_scenario,
)

pytestmark = pytest.mark.erlang


@pytest.fixture(scope="module")
def pyra_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PyraCluster, Shells]]:
    cookie = "c" + secrets.token_hex(8)
    prefix = "dif" + secrets.token_hex(3)
    data_dir = tmp_path_factory.mktemp("pyra-data")
    with pyra_cluster(prefix, cookie, data_dir) as cluster, client_shells(prefix, cookie) as shells:
        yield cluster, shells


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_pyra_nodes_answer_like_ra_2_2_0(pyra_nodes: tuple[PyraCluster, Shells], scenario: Scenario) -> None:
    cluster, shells = pyra_nodes
    outcomes = run_scenario(shells.for_kind(scenario.shell), cluster.nodes, scenario, kill=cluster.kill)
    assert_same_as_ra(scenario, outcomes)
