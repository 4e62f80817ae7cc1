"""Client histories for linearizability checking.

Owns: the `Operation` record (one client call with its invocation and completion points) and the
`HistoryRecorder` that a simulator or a Jepsen-style harness feeds while clients run, plus export to
porcupine's JSON history shape so an external checker can cross-check a history.
Must not: read a clock or decide what a client does; times are supplied by the caller and are
only compared with each other (a logical event counter is the best choice: it orders every
invocation and completion exactly, where a millisecond clock would tie).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["UNKNOWN", "HistoryRecorder", "Operation", "Unknown", "to_porcupine_json"]

I = TypeVar("I")  # noqa: E741 - the conventional name for an operation's input type
O = TypeVar("O")  # noqa: E741


class Unknown(enum.Enum):
    """Marker type for the output of an operation that never completed (Jepsen's ``:info``)."""

    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown.UNKNOWN


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation(Generic[I, O]):
    """One client operation of a history.

    Attributes:
        op_id: unique id within the history (stable order for reports).
        client: the client (process) that issued it; one client has at most one open call.
        input: what the client asked for (model-specific).
        call: time of invocation.
        output: the observed result, or ``UNKNOWN`` when the call never completed.
        ret: time of completion; ``None`` means indeterminate: the operation may or may not have
            taken effect, at any point after ``call`` (Jepsen's ``:info``).
    """

    op_id: int
    client: int
    input: I
    call: int
    output: O | Unknown
    ret: int | None

    @property
    def indeterminate(self) -> bool:
        """True when the call never completed (a crash, a timeout, a lost reply)."""
        return self.ret is None


@dataclass(slots=True)
class _Open(Generic[I]):
    op_id: int
    client: int
    input: I
    call: int


class HistoryRecorder(Generic[I, O]):
    """Records invocations and completions; a logical clock orders them unless one is given.

    Each event takes the next value of an internal counter by default, so the recorded real-time
    order is exact. ``fail`` drops an operation that definitely did not take effect (for example
    Ra's ``{redirect, Leader}`` answer: the command never reached a leader's log); ``info`` (or
    leaving a call open) marks it indeterminate.
    """

    def __init__(self, now: Callable[[], int] | None = None) -> None:
        """Args:
        now: source of event times; default is a counter incremented on every event.
        """
        self._counter = 0
        self._now = now
        self._open: dict[int, _Open[I]] = {}
        self._done: list[Operation[I, O]] = []
        self._next_id = 0

    def _tick(self) -> int:
        if self._now is not None:
            return self._now()
        self._counter += 1
        return self._counter

    def invoke(self, client: int, op_input: I) -> int:
        """Record an invocation.

        Args:
            client: the calling client.
            op_input: the model input.

        Returns:
            The operation id to pass to ``ok``, ``fail`` or ``info``.

        Raises:
            ValueError: the client already has an open call.
        """
        if any(o.client == client for o in self._open.values()):
            raise ValueError(f"client {client} already has an open operation")
        op_id = self._next_id
        self._next_id += 1
        self._open[op_id] = _Open(op_id, client, op_input, self._tick())
        return op_id

    def ok(self, op_id: int, output: O) -> None:
        """Record a completion with its observed output.

        Raises:
            KeyError: ``op_id`` is not open.
        """
        o = self._open.pop(op_id)
        self._done.append(
            Operation(
                op_id=o.op_id, client=o.client, input=o.input, call=o.call, output=output, ret=self._tick()
            )
        )

    def fail(self, op_id: int) -> None:
        """Record that the operation definitely did not take effect; it leaves the history.

        Raises:
            KeyError: ``op_id`` is not open.
        """
        del self._open[op_id]
        self._tick()

    def info(self, op_id: int) -> None:
        """Record that the outcome is unknown (timeout, crash); the operation stays indeterminate.

        Raises:
            KeyError: ``op_id`` is not open.
        """
        o = self._open.pop(op_id)
        self._done.append(
            Operation(op_id=o.op_id, client=o.client, input=o.input, call=o.call, output=UNKNOWN, ret=None)
        )

    def is_open(self, op_id: int) -> bool:
        """Whether ``op_id`` has been invoked and not yet completed."""
        return op_id in self._open

    def history(self) -> list[Operation[I, O]]:
        """The history so far; calls still open are included as indeterminate.

        Returns:
            Operations sorted by op id.
        """
        pending: list[Operation[I, O]] = [
            Operation(op_id=o.op_id, client=o.client, input=o.input, call=o.call, output=UNKNOWN, ret=None)
            for o in self._open.values()
        ]
        return sorted([*self._done, *pending], key=lambda op: op.op_id)


def to_porcupine_json(
    history: Sequence[Operation[I, O]], encode: Callable[[object], object] = lambda v: v
) -> str:
    """Export a history in porcupine's ``[]Operation`` JSON shape.

    Indeterminate operations get a return time after every other event, which is porcupine's
    documented way to model calls that may or may not have happened.

    Args:
        history: the operations.
        encode: maps inputs and outputs to JSON-encodable values.

    Returns:
        A JSON array of ``{ClientId, Input, Call, Output, Return}`` objects.
    """
    end = max([op.ret for op in history if op.ret is not None] + [op.call for op in history] + [0]) + 1
    rows = [
        {
            "ClientId": op.client,
            "Input": encode(op.input),
            "Call": op.call,
            "Output": None if op.output is UNKNOWN else encode(op.output),
            "Return": end if op.ret is None else op.ret,
        }
        for op in history
    ]
    return json.dumps(rows, sort_keys=True)
