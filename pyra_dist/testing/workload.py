"""The simulator's client workload: a register-per-key machine and the commands clients send.

Owns: `RegisterKvMachine` (a Ra machine holding independent read/write/CAS registers, emitting
``release_cursor`` every few entries so snapshots happen all the time, Ra's Jepsen trick of
``--release-cursor-every 10``), the mapping between checker inputs (`KvOp`) and machine commands,
and `RecordingMachine`, which reports every apply to the safety checker.
Must not: keep state outside the returned machine states (except the recorder's callback), or be
non-deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence

from pyra_dist.core.machine import (
    ApplyMeta,
    ApplyResult,
    Machine,
    MachineConfig,
    MachineEffectT,
    ReleaseCursor,
)
from pyra_dist.testing.models import Cas, KvOp, Read, Write

__all__ = ["RecordingMachine", "RegisterKvMachine", "command_for", "random_op"]

KvState = Mapping[Hashable, Hashable]


def command_for(op: KvOp) -> tuple[object, ...]:
    """The machine command for a checker input: ``("get", K)``, ``("put", K, V)``, ``("cas", K, E, N)``."""
    match op.op:
        case Read():
            return ("get", op.key)
        case Write(value=value):
            return ("put", op.key, value)
        case Cas(expected=expected, new=new):
            return ("cas", op.key, expected, new)


def random_op(rng: random.Random, keys: Sequence[Hashable], next_value: int) -> KvOp:
    """Draw one client operation: reads 40 %, writes 40 %, CAS 20 %.

    Args:
        rng: the workload's random source.
        keys: the keys to pick from.
        next_value: a fresh value for writes (unique values make histories easy to check).

    Returns:
        The operation.
    """
    key = rng.choice(keys)
    roll = rng.random()
    if roll < 0.4:
        return KvOp(key, Read())
    if roll < 0.8:
        return KvOp(key, Write(next_value))
    return KvOp(key, Cas(rng.choice([None, next_value - 1, next_value - 2]), next_value))


class RegisterKvMachine(Machine):
    """Independent registers by key; replies: get -> value (None if unset), put -> "ok", cas -> bool."""

    def __init__(self, release_every: int = 0) -> None:
        """Args:
        release_every: emit ``release_cursor`` at every index divisible by this (0 = never).
        """
        self._release_every = release_every

    def init(self, config: MachineConfig) -> object:
        """Returns: an empty map."""
        return {}

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        """Apply ``command`` to a copy of ``state`` (states are shared with snapshots, never mutated)."""
        assert isinstance(state, dict)
        reply: object = None
        new_state = state
        match command:
            case ("get", key):
                reply = state.get(key)
            case ("put", key, value):
                new_state = {**state, key: value}
                reply = "ok"
            case ("cas", key, expected, new):
                reply = state.get(key) == expected
                if reply:
                    new_state = {**state, key: new}
            case _:
                # Built-ins (down, nodeup, machine_version, ...) do not touch the registers.
                pass
        effects: list[MachineEffectT] = []
        if self._release_every and meta.index % self._release_every == 0:
            effects.append(ReleaseCursor(meta.index, new_state))
        return new_state, reply, effects


ApplySink = Callable[[ApplyMeta, object, object], None]


class RecordingMachine(Machine):
    """Wraps a machine and reports ``(meta, command, reply)`` of every apply to ``sink``."""

    def __init__(self, inner: Machine, sink: ApplySink) -> None:
        """Args:
        inner: the machine doing the work.
        sink: called after every apply.
        """
        self._inner = inner
        self._sink = sink

    def init(self, config: MachineConfig) -> object:
        """Delegates to the inner machine."""
        return self._inner.init(config)

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        """Delegates, then reports the apply."""
        result = self._inner.apply(meta, command, state)
        self._sink(meta, command, result[1])
        return result

    def version(self) -> int:
        """Delegates to the inner machine."""
        return self._inner.version()
