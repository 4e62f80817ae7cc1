"""The nemesis draw follows its weights and never picks a zero-weight fault."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pyra_dist.testing.faults import Fault, FaultConfig, choose_fault


def test_faults_are_drawn_in_proportion_to_their_weights() -> None:
    config = FaultConfig(weights=((Fault.CRASH, 3), (Fault.HEAL, 1), (Fault.JOIN, 0)))
    rng = random.Random(1)
    counts = Counter(choose_fault(rng, config) for _ in range(4000))
    assert set(counts) == {Fault.CRASH, Fault.HEAL}
    assert 2800 < counts[Fault.CRASH] < 3200


def test_all_zero_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="no fault has a positive weight"):
        choose_fault(random.Random(1), FaultConfig(weights=((Fault.CRASH, 0),)))
