"""Sequential specifications for the linearizability checker.

Owns: `Model` (what a linearizability check needs to know about a data type: its initial state, a
step function and an optional P-compositional partition) and two concrete specs, a read/write/CAS
register and a key/value map of such registers partitioned by key (Jepsen's ``independent``
cas-register workload, as ra-kv-store runs it).
Must not: know about Raft or the simulator; states must be hashable (the checker memoises them).
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from pyra_dist.testing.history import UNKNOWN, Operation, Unknown

__all__ = [
    "Cas",
    "KvModel",
    "KvOp",
    "Model",
    "Read",
    "RegisterInput",
    "RegisterModel",
    "Write",
]

S = TypeVar("S", bound=Hashable)
I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741


class Model(abc.ABC, Generic[S, I, O]):
    """A sequential specification (porcupine's ``Model``, Knossos' model)."""

    @abc.abstractmethod
    def init(self) -> S:
        """Returns: the state before any operation."""

    @abc.abstractmethod
    def step(self, state: S, op_input: I, output: O | Unknown) -> tuple[bool, S]:
        """Apply one operation to a state.

        Args:
            state: the state before the operation.
            op_input: the operation's input.
            output: the observed output, or ``UNKNOWN`` for an indeterminate operation, which
                must then be accepted with whatever output the specification would give.

        Returns:
            ``(legal, next_state)``; ``legal`` is False when the observed output is impossible.
        """

    def partition(self, history: Sequence[Operation[I, O]]) -> list[list[Operation[I, O]]]:
        """Split a history into independently checkable parts (P-compositionality).

        The default keeps the whole history together.
        """
        return [list(history)]

    def describe(self, op: Operation[I, O]) -> str:
        """A one-line rendering of an operation for failure reports."""
        end = "?" if op.ret is None else str(op.ret)
        return f"c{op.client} [{op.call},{end}] {op.input!r} -> {op.output!r}"


@dataclass(frozen=True, slots=True)
class Read:
    """Read the register; output is its value."""


@dataclass(frozen=True, slots=True)
class Write:
    """Overwrite the register; output is ``None``."""

    value: Hashable


@dataclass(frozen=True, slots=True)
class Cas:
    """Compare-and-set; output is ``True`` when ``expected`` matched and ``new`` was written."""

    expected: Hashable
    new: Hashable


RegisterInput: TypeAlias = Read | Write | Cas


class RegisterModel(Model[Hashable, RegisterInput, object]):
    """A single read/write/CAS register that starts as ``initial``."""

    def __init__(self, initial: Hashable = None) -> None:
        """Args:
        initial: the register's value before any write.
        """
        self._initial = initial

    def init(self) -> Hashable:
        """Returns: the initial value."""
        return self._initial

    def step(self, state: Hashable, op_input: RegisterInput, output: object) -> tuple[bool, Hashable]:
        """The register's sequential semantics (see `Model.step`)."""
        match op_input:
            case Read():
                return (output is UNKNOWN or output == state), state
            case Write(value=value):
                return True, value
            case Cas(expected=expected, new=new):
                swapped = state == expected
                if output is not UNKNOWN and output != swapped:
                    return False, state
                return True, (new if swapped else state)


@dataclass(frozen=True, slots=True)
class KvOp:
    """A register operation on one key of a map."""

    key: Hashable
    op: RegisterInput


class KvModel(Model[Hashable, KvOp, object]):
    """A map of independent registers (each key starts as ``initial``), partitioned by key.

    A history of a map of registers is linearizable iff each key's sub-history is (Herlihy and
    Wing's locality property), so each key is checked alone, which keeps the search small.
    """

    def __init__(self, initial: Hashable = None) -> None:
        """Args:
        initial: the value of a key that was never written.
        """
        self._register = RegisterModel(initial)

    def init(self) -> Hashable:
        """Returns: the initial value of a single key (states are per partition)."""
        return self._register.init()

    def step(self, state: Hashable, op_input: KvOp, output: object) -> tuple[bool, Hashable]:
        """One key's register semantics (see `RegisterModel.step`)."""
        return self._register.step(state, op_input.op, output)

    def partition(self, history: Sequence[Operation[KvOp, object]]) -> list[list[Operation[KvOp, object]]]:
        """One part per key, in order of first appearance."""
        parts: dict[Hashable, list[Operation[KvOp, object]]] = {}
        for op in history:
            parts.setdefault(op.input.key, []).append(op)
        return list(parts.values())
