"""Shipped test tools for pyra (trio.testing model): a deterministic cluster simulator and the
checkers it uses.

Owns: re-exports of the public testing surface. Must not: run code at import or import anything
that does I/O at import time.
"""

from __future__ import annotations

from pyra_dist.testing.history import UNKNOWN, HistoryRecorder, Operation, Unknown, to_porcupine_json
from pyra_dist.testing.linearizability import CheckOutcome, CheckResult, check_linearizability
from pyra_dist.testing.models import Cas, KvModel, KvOp, Model, Read, RegisterInput, RegisterModel, Write

__all__ = [
    "UNKNOWN",
    "Cas",
    "CheckOutcome",
    "CheckResult",
    "HistoryRecorder",
    "KvModel",
    "KvOp",
    "Model",
    "Operation",
    "Read",
    "RegisterInput",
    "RegisterModel",
    "Unknown",
    "Write",
    "check_linearizability",
    "to_porcupine_json",
]
