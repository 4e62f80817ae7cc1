"""Shipped test tools for pyra (trio.testing model): a deterministic cluster simulator and the
checkers it uses.

Owns: re-exports of the public testing surface. Must not: run code at import or import anything
that does I/O at import time. The simulator itself lives in `pyra_dist.testing.sim` (import it
from there; it is also the ``python -m pyra_dist.testing.sim`` entry point, which is why it is not
imported here).
"""

from __future__ import annotations

from pyra_dist.testing.clock import FakeClock, TimerHandle
from pyra_dist.testing.faults import Fault, FaultConfig
from pyra_dist.testing.history import UNKNOWN, HistoryRecorder, Operation, Unknown, to_porcupine_json
from pyra_dist.testing.invariants import SafetyChecker, Violation
from pyra_dist.testing.linearizability import CheckOutcome, CheckResult, check_linearizability
from pyra_dist.testing.models import Cas, KvModel, KvOp, Model, Read, RegisterInput, RegisterModel, Write
from pyra_dist.testing.network import NetworkConfig, NetworkStats, SimNetwork
from pyra_dist.testing.workload import RecordingMachine, RegisterKvMachine

__all__ = [
    "UNKNOWN",
    "Cas",
    "CheckOutcome",
    "CheckResult",
    "FakeClock",
    "Fault",
    "FaultConfig",
    "HistoryRecorder",
    "KvModel",
    "KvOp",
    "Model",
    "NetworkConfig",
    "NetworkStats",
    "Operation",
    "Read",
    "RecordingMachine",
    "RegisterInput",
    "RegisterKvMachine",
    "RegisterModel",
    "SafetyChecker",
    "SimNetwork",
    "TimerHandle",
    "Unknown",
    "Violation",
    "Write",
    "check_linearizability",
    "to_porcupine_json",
]
