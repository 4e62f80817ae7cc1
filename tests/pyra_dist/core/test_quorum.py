"""Quorum arithmetic against a naive oracle (etcd quorum/quick_test.go habit)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pyra_dist.core.quorum import agreed_value, has_quorum, quorum_size


def naive_agreed(values: list[int]) -> int:
    """The largest v such that a majority of members hold a value >= v."""
    need = len(values) // 2 + 1
    return max((v for v in values if sum(1 for x in values if x >= v) >= need), default=0)


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=9))
def test_agreed_value_matches_the_naive_majority_oracle(values: list[int]) -> None:
    assert agreed_value(values) == naive_agreed(values)


def test_quorum_sizes_follow_ra_2_2_0_counting_every_member() -> None:
    assert [quorum_size(n) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]
    assert has_quorum(2, 3) and not has_quorum(2, 4)
