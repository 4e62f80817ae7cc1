"""The nemesis: which fault the simulator injects next (Jepsen's nemesis, seeded).

Owns: `FaultConfig` (how often faults happen and how they are weighted) and `Fault`, the closed set
of fault kinds the simulator knows how to execute; `choose_fault` draws the next one.
Must not: execute faults (the simulator does, because only it knows the cluster) or draw randomness
from anywhere but the ``random.Random`` it is given.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

__all__ = ["Fault", "FaultConfig", "choose_fault"]


class Fault(enum.Enum):
    """One nemesis action (ra-kv-store nemeses, plus what a simulator can do cheaply)."""

    CRASH = "crash"  # kill -9 a server: only durable state survives (kill-erlang-vm)
    RESTART = "restart"  # bring a crashed server back
    PARTITION = "partition"  # random halves (random-partition-halves)
    ISOLATE_LEADER = "isolate_leader"  # cut the current leader from everyone (partition-random-node)
    ONE_WAY = "one_way"  # cut a single link in one direction
    HEAL = "heal"  # remove every partition
    LEAVE = "leave"  # remove a member through the leader (remove_member)
    JOIN = "join"  # start a fresh server and add it (add_member)
    TRIGGER_ELECTION = "trigger_election"  # ra:trigger_election on a random server
    TRANSFER_LEADERSHIP = "transfer_leadership"  # ra:transfer_leadership to a random member


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultConfig:
    """Nemesis schedule.

    Attributes:
        min_interval_ms: shortest pause between two faults.
        max_interval_ms: longest pause between two faults.
        weights: relative probability of each fault kind (missing kinds never happen).
        restart_after_ms: a crashed server restarts after a uniform delay in this range.
    """

    min_interval_ms: int = 200
    max_interval_ms: int = 1500
    weights: tuple[tuple[Fault, int], ...] = (
        (Fault.CRASH, 4),
        (Fault.PARTITION, 3),
        (Fault.ISOLATE_LEADER, 3),
        (Fault.ONE_WAY, 1),
        (Fault.HEAL, 3),
        (Fault.LEAVE, 1),
        (Fault.JOIN, 1),
        (Fault.TRIGGER_ELECTION, 1),
        (Fault.TRANSFER_LEADERSHIP, 1),
    )
    restart_after_ms: tuple[int, int] = (100, 2000)


def choose_fault(rng: random.Random, config: FaultConfig) -> Fault:
    """Draw the next fault kind according to ``config.weights``.

    Raises:
        ValueError: every weight is zero.
    """
    total = sum(w for _, w in config.weights)
    if total <= 0:
        raise ValueError("no fault has a positive weight")
    roll = rng.randrange(total)
    for fault, weight in config.weights:
        if roll < weight:
            return fault
        roll -= weight
    raise AssertionError("unreachable")
