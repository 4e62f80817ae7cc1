"""Ra error atoms map to pyra_dist exceptions."""

from __future__ import annotations

from pyra_dist.errors import ClusterChangeNotPermitted, NotLeader, RaError, from_reason
from pyra_dist.types import ServerId


def test_known_reasons_map_to_their_exception_and_unknown_ones_to_ra_error() -> None:
    assert type(from_reason("cluster_change_not_permitted")) is ClusterChangeNotPermitted
    err = from_reason(("weird", 1))
    assert type(err) is RaError and err.args == (("weird", 1),)


def test_not_leader_carries_the_leader_hint() -> None:
    assert NotLeader(ServerId("s1", "n@h")).leader_hint == ServerId("s1", "n@h")
