"""Ready-made machines: ``SimpleMachine`` (Ra's ``ra_machine_simple``) and ``KvMachine`` (key/value).

Owns: re-exports only. Must not: run code at import.
"""

from __future__ import annotations

from pyra_dist.machines.kv import KvMachine
from pyra_dist.machines.simple import SimpleMachine

__all__ = ["KvMachine", "SimpleMachine"]
