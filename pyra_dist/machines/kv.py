"""A reference key/value machine (docs, tests and the simulator).

Owns: a deterministic map with Ra-style tuple commands. Must not: mutate a state after returning it
(states are shared with snapshots and queries), so every write builds a new dict.

Commands and replies::

    ("put", Key, Value)             -> "ok"
    ("get", Key)                    -> Value | None
    ("delete", Key)                 -> "ok"
    ("cas", Key, Expected, New)     -> ("ok", New) | ("error", Current)

With ``snapshot_every=N`` the machine emits ``ReleaseCursor(index, state)`` every N applied commands
(like ``ra_bench`` every 100 000th), which exercises snapshots and log truncation.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyra_dist.core.machine import (
    ApplyMeta,
    ApplyResult,
    Machine,
    MachineConfig,
    MachineEffectT,
    ReleaseCursor,
)


class KvMachine(Machine):
    """Key/value machine; the state is a ``dict`` treated as immutable."""

    def __init__(self, snapshot_every: int = 0) -> None:
        """Args:
        snapshot_every: emit a release cursor every this many applied commands (0 = never).
        """
        self.snapshot_every = snapshot_every

    def init(self, config: MachineConfig) -> object:
        """Return the empty map."""
        return {}

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        """Apply one command (unknown commands reply ``("error", "unknown_command")``)."""
        assert isinstance(state, dict)
        reply: object
        new = state
        match command:
            case ("put", key, value):
                new = {**state, key: value}
                reply = "ok"
            case ("get", key):
                reply = state.get(key)
            case ("delete", key):
                new = {k: v for k, v in state.items() if k != key}
                reply = "ok"
            case ("cas", key, expected, value):
                current = state.get(key)
                if current == expected:
                    new = {**state, key: value}
                    reply = ("ok", value)
                else:
                    reply = ("error", current)
            case _:
                reply = ("error", "unknown_command")
        effects: list[MachineEffectT] = []
        if self.snapshot_every and meta.index % self.snapshot_every == 0:
            effects.append(ReleaseCursor(index=meta.index, state=new))
        return new, reply, effects

    def overview(self, state: object) -> Mapping[str, object]:
        """Return ``{"keys": N}``."""
        return {"keys": len(state) if isinstance(state, dict) else 0}


__all__ = ["KvMachine"]
