"""``ra_machine_simple``: a pure ``apply(command, state) -> state`` function as a machine.

Owns: the adapter (ra-internals §6.1 ``{simple, Fun, InitialState}``): each command computes the new
state and the reply **is** the new state. Must not: keep state outside the returned values.
"""

from __future__ import annotations

from collections.abc import Callable

from pyra_dist.core.machine import (
    ApplyMeta,
    ApplyResult,
    Down,
    Machine,
    MachineConfig,
    MachineVersionChange,
    NodeDown,
    NodeUp,
    Timeout,
)


class SimpleMachine(Machine):
    """Wrap ``fun(command, state) -> state``; replies are the new state (Ra's ``ra_machine_simple``)."""

    def __init__(self, fun: Callable[[object, object], object], initial_state: object) -> None:
        """Args:
        fun: the deterministic transition function.
        initial_state: the state before any command.
        """
        self.fun = fun
        self.initial_state = initial_state

    def init(self, config: MachineConfig) -> object:
        """Return the initial state."""
        return self.initial_state

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        """Return ``(fun(command, state), fun(command, state))``; built-in commands leave state as is."""
        if isinstance(command, Down | NodeUp | NodeDown | Timeout | MachineVersionChange):
            return state, state
        new = self.fun(command, state)
        return new, new


__all__ = ["SimpleMachine"]
