"""The ``ra_machine`` behaviour in Python: the contract between the Raft core and a user state machine.

Owns: the ``Machine`` base class (Ra 2.2.0 callbacks, ra-internals §6.2), ``ApplyMeta`` (§6.3), the
built-in commands the core delivers to ``apply`` (``{down, Pid, Info}``, ``{nodeup|nodedown, Node}``,
``{timeout, Name}``, ``{machine_version, From, To}``) and the typed machine effects (§6.4). Must not:
perform I/O; a machine is a deterministic function of (meta, command, state), time arrives in
``ApplyMeta.system_time`` which the leader stamped into the entry.

Which effects the core consumes itself and which it passes to the driver as ``MachineEffect`` is
described in ``pyra_dist.core.effects``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from pyra_dist.types import NO_REPLY, From, Index, Pid, ReplyMode, Term

# ---------------------------------------------------------------------------------------------
# Apply meta and built-in commands
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyMeta:
    """Ra's apply meta map ``#{index, term, system_time, machine_version, from}`` (ra-internals §6.3).

    ``from_`` is set only for commands that came through a call (``Meta.from`` in the entry).
    """

    index: Index
    term: Term
    system_time: int
    machine_version: int
    from_: From | None = None


@dataclass(frozen=True, slots=True)
class Down:
    """Built-in ``{down, Pid, Info}``: a process the machine monitors went down."""

    pid: Pid
    info: object


@dataclass(frozen=True, slots=True)
class NodeUp:
    """Built-in ``{nodeup, Node}`` for a node the machine monitors."""

    node: str


@dataclass(frozen=True, slots=True)
class NodeDown:
    """Built-in ``{nodedown, Node}`` for a node the machine monitors."""

    node: str


@dataclass(frozen=True, slots=True)
class Timeout:
    """Built-in ``{timeout, Name}``: a machine timer (``Timer`` effect) expired on the leader."""

    name: object


@dataclass(frozen=True, slots=True)
class MachineVersionChange:
    """Built-in ``{machine_version, From, To}``, synthesized while applying a version-raising noop."""

    old: int
    new: int


# ---------------------------------------------------------------------------------------------
# Machine effects (ra-internals §6.4; leader-only unless noted)
# ---------------------------------------------------------------------------------------------

SendMsgOption: TypeAlias = Literal["ra_event", "cast", "local"]


@dataclass(frozen=True, slots=True)
class SendMsg:
    """``{send_msg, To, Msg[, Opts]}``: raw send (noconnect, nosuspend) to a pid or registered name."""

    to: object
    msg: object
    options: tuple[SendMsgOption, ...] = ()


@dataclass(frozen=True, slots=True)
class ModCall:
    """``{mod_call, M, F, A}``: run a function on the leader (the driver resolves ``module``/``function``)."""

    module: object
    function: object
    args: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class Append:
    """``{append, Cmd[, ReplyMode]}``: the leader appends ``{'$usr', Meta, Cmd, ReplyMode}``."""

    command: object
    reply_mode: ReplyMode = NO_REPLY


@dataclass(frozen=True, slots=True)
class Monitor:
    """``{monitor, process | node, Target}``: results come back as ``Down``/``NodeUp``/``NodeDown``."""

    kind: Literal["process", "node"]
    target: object


@dataclass(frozen=True, slots=True)
class Demonitor:
    """``{demonitor, process | node, Target}``."""

    kind: Literal["process", "node"]
    target: object


@dataclass(frozen=True, slots=True)
class ReleaseCursor:
    """``{release_cursor, Idx, State}`` (all replicas): entries up to ``index`` may go; snapshot ``state``."""

    index: Index
    state: object


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """``{checkpoint, Idx, State}`` (main): a local snapshot that does not truncate the log."""

    index: Index
    state: object


@dataclass(frozen=True, slots=True)
class Timer:
    """``{timer, Name, Ms | infinity}``; ``ms=None`` means ``infinity`` (cancels the timer)."""

    name: object
    ms: int | None


@dataclass(frozen=True, slots=True)
class LogRead:
    """``{log, Idxs, Fun[, {local, Node}]}``: read user commands at ``indexes``; ``fun`` returns effects."""

    indexes: tuple[Index, ...]
    fun: Callable[[list[object]], list[MachineEffectT]]
    local: object | None = None


@dataclass(frozen=True, slots=True)
class Aux:
    """``{aux, Cmd}`` (all replicas): feed the machine's aux handler."""

    command: object


@dataclass(frozen=True, slots=True)
class GarbageCollection:
    """``garbage_collection`` (all replicas)."""


@dataclass(frozen=True, slots=True)
class ReplyTo:
    """``{reply, From, Reply}``: reply to a caller (``From`` taken from ``ApplyMeta.from_``)."""

    from_: From
    reply: object


MachineEffectT: TypeAlias = (
    SendMsg
    | ModCall
    | Append
    | Monitor
    | Demonitor
    | ReleaseCursor
    | Checkpoint
    | Timer
    | LogRead
    | Aux
    | GarbageCollection
    | ReplyTo
)
"""Every effect a machine may return from ``apply``/``state_enter``/``tick``/``handle_aux``."""

RA_NO_REPLY = "$ra_no_reply"
"""A machine reply of ``'$ra_no_reply'`` suppresses the automatic reply (ra-internals §3.2)."""

ApplyResult: TypeAlias = tuple[object, object] | tuple[object, object, Sequence[MachineEffectT]]
"""``{State, Reply}`` or ``{State, Reply, Effects}``."""

AuxResult: TypeAlias = tuple[Literal["no_reply"], object] | tuple[Literal["reply"], object, object]
"""``handle_aux`` returns ``("no_reply", Aux)`` or ``("reply", Reply, Aux)``."""


# ---------------------------------------------------------------------------------------------
# The behaviour
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """What ``init`` receives: Ra's ``InitArgs#{name => LocalName}`` (``args`` holds the user's map)."""

    name: str
    args: Mapping[str, object] = field(default_factory=dict)


class Machine:
    """Base class for machines; override ``init`` and ``apply`` (required), the rest are optional.

    A machine object is immutable configuration (Ra's ``{machine, Mod, Args}``); all replicated
    state lives in the ``state`` values it returns. Methods must be deterministic.
    """

    def init(self, config: MachineConfig) -> object:
        """Return the initial machine state (called only when there is no snapshot to recover).

        Args:
            config: the server's name and the user's init args.

        Returns:
            The initial state.
        """
        raise NotImplementedError

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        """Apply one committed command.

        Args:
            meta: index, term, system_time, machine_version and from of the entry.
            command: the user command, or a built-in (``Down``, ``NodeUp``, ``NodeDown``, ``Timeout``,
                ``MachineVersionChange``).
            state: the current state.

        Returns:
            ``(state, reply)`` or ``(state, reply, effects)``.
        """
        raise NotImplementedError

    def state_enter(self, role: str, state: object) -> list[MachineEffectT]:
        """Called on every raft state change (role atom names, or ``"eol"`` on cluster deletion)."""
        return []

    def tick(self, time_ms: int, state: object) -> list[MachineEffectT]:
        """Called on the leader every tick (``tick_timeout``, 1000 ms)."""
        return []

    def init_aux(self, name: str) -> object:
        """Return the initial (non-replicated, per-server) aux state."""
        return None

    def handle_aux(
        self, role: str, kind: Literal["call", "cast"], command: object, aux: object, state: object
    ) -> AuxResult:
        """Handle an aux command (``tick``, ``eval``, user commands); ``state`` is the machine state."""
        return ("no_reply", aux)

    def overview(self, state: object) -> Mapping[str, object]:
        """Return a map describing ``state`` for status output."""
        return {}

    def snapshot_installed(
        self, meta: object, state: object, old_meta: object, old_state: object
    ) -> list[MachineEffectT]:
        """(main >= 2.11) Effects to run after a follower installed a snapshot."""
        return []

    def version(self) -> int:
        """The newest machine version this code understands (default 0)."""
        return 0

    def which_module(self, version: int) -> Machine:
        """The machine implementing ``version`` (default: this one)."""
        return self


__all__ = [
    "RA_NO_REPLY",
    "Append",
    "ApplyMeta",
    "ApplyResult",
    "Aux",
    "AuxResult",
    "Checkpoint",
    "Demonitor",
    "Down",
    "GarbageCollection",
    "LogRead",
    "Machine",
    "MachineConfig",
    "MachineEffectT",
    "MachineVersionChange",
    "ModCall",
    "Monitor",
    "NodeDown",
    "NodeUp",
    "ReleaseCursor",
    "ReplyTo",
    "SendMsg",
    "Timeout",
    "Timer",
]
