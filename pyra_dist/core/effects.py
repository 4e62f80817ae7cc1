"""Outputs of the Raft core: what the interpreter must do, in list order.

Owns: the closed ``Effect`` union returned by ``RaftCore.handle`` and the typed client replies.
Must not: perform anything; interpreters ``match`` on these and end with ``assert_never``.

Interpreter contract (R3, ra-internals §9.2):
1. Execute effects in list order.
2. ``PersistMeta`` and ``InstallSnapshot`` are **synchronous**: they must be durable before the next
   effect of the same list runs (a vote reply follows the ``PersistMeta`` that records it).
3. ``AppendToLog``/``TruncateLog``/``WriteSnapshot`` are asynchronous and are executed in order; their
   completion comes back as ``LogWritten``/``SnapshotWritten``. ``AppendToLog`` may overwrite: any
   entry at or above ``entries[0].index`` is replaced. The core never sends a reply that claims
   durability before the matching ``LogWritten`` arrived.
   Writes issued before an ``InstallSnapshot`` must not land after it: the driver either discards
   them or completes them first (their ``LogWritten`` is then ignored: the core checks ``(to, term)``).
4. ``StartTimer(key, ms)`` (re)arms the timer ``key``; ``CancelTimer`` disarms it; a fired timer comes
   back as ``TimerFired(key)``. Timers survive role changes unless the core cancels them.
5. ``SendRpc``: send ``rpc`` to ``to``. If ``reply_to`` is set, answer that gen call (``{Tag, Rpc}``);
   otherwise: ``PreVoteRpc``/``RequestVoteRpc``/``InstallSnapshotRpc`` are gen calls whose result comes
   back as ``PeerMessage(sender=to, msg=result)`` (no result on timeout), ``TryBecomeLeader`` is a gen
   cast, everything else is a raw cast; replies to AER/heartbeats are cast as ``{SelfId, Reply}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from pyra_dist.core.events import CommandRequest, TimerKey
from pyra_dist.core.machine import MachineEffectT
from pyra_dist.core.messages import PeerRpc
from pyra_dist.types import Entry, From, Index, Pid, Role, ServerId, SnapshotMeta, Term

# ---------------------------------------------------------------------------------------------
# Client replies (the ``Reply`` of a gen call; ra-internals §4)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrapReply:
    """``{wrap_reply, Reply}``: the leader's answer to a command."""

    reply: object


@dataclass(frozen=True, slots=True)
class Redirect:
    """``{redirect, LeaderId}``: ask the leader instead."""

    leader: ServerId


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """``{error, Reason}``, e.g. ``cluster_change_not_permitted``, ``already_member``, ``not_member``."""

    reason: object


LeaderHint: TypeAlias = ServerId | str
"""A leader id, or the atoms ``not_known`` / ``follower`` (2.2.0 ``await_condition``)."""


@dataclass(frozen=True, slots=True)
class LocalQueryReply:
    """``{ok, {{LastApplied, CurrentTerm}, Result}, Leader}`` for local and leader queries."""

    index: Index
    term: Term
    result: object
    leader: LeaderHint


@dataclass(frozen=True, slots=True)
class OkReply:
    """``{ok, Value, Leader}`` (consistent query result, ``members``, ``initial_members``, overview)."""

    value: object
    leader: LeaderHint


@dataclass(frozen=True, slots=True)
class AtomReply:
    """A bare atom reply: ``ok``, ``already_leader``."""

    atom: str


@dataclass(frozen=True, slots=True)
class Pong:
    """``{pong, RaftState}``."""

    role: Role


@dataclass(frozen=True, slots=True)
class AuxReply:
    """The machine's aux reply, passed through as is."""

    reply: object


ClientReply: TypeAlias = (
    WrapReply | Redirect | ErrorReply | LocalQueryReply | OkReply | AtomReply | Pong | AuxReply
)

# ---------------------------------------------------------------------------------------------
# Effects
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendRpc:
    """Send a server-to-server record to ``to`` (see the module docstring for envelopes)."""

    to: ServerId
    rpc: PeerRpc
    reply_to: From | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the gen call ``to`` with ``reply``."""

    to: From
    reply: ClientReply


@dataclass(frozen=True, slots=True)
class Notify:
    """``{ra_event, Leader, {applied, [{Corr, Reply}, ...]}}`` to ``pid`` (pipelined, in apply order)."""

    pid: Pid
    leader: ServerId
    correlations: tuple[tuple[object, object], ...]


@dataclass(frozen=True, slots=True)
class Rejected:
    """``{ra_event, Self, {rejected, {not_leader, Leader | undefined, Corr}}}`` to ``pid``."""

    pid: Pid
    sender: ServerId
    leader: ServerId | None
    correlation: object


@dataclass(frozen=True, slots=True)
class ForwardCommand:
    """Cast the command to the leader ``to`` (``{command, Prio, {'$usr', C, noreply}}``)."""

    to: ServerId
    request: CommandRequest


@dataclass(frozen=True, slots=True)
class AppendToLog:
    """Write ``entries`` (ascending, contiguous); any existing entry at or above the first is replaced."""

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class TruncateLog:
    """Discard every entry above ``last_index`` (asynchronous, ordered with ``AppendToLog``)."""

    last_index: Index


@dataclass(frozen=True, slots=True)
class PersistMeta:
    """Durably record ``current_term`` and ``voted_for`` (SYNCHRONOUS, Ra's dets write)."""

    term: Term
    voted_for: ServerId | None


@dataclass(frozen=True, slots=True)
class PersistLastApplied:
    """Record ``last_applied`` (asynchronous, may be lost; recovery re-applies from the snapshot)."""

    index: Index


@dataclass(frozen=True, slots=True)
class WriteSnapshot:
    """Write a snapshot of ``state`` at ``meta`` (async; completion ``SnapshotWritten``); then entries
    up to ``meta.index`` may be dropped from the log."""

    meta: SnapshotMeta
    state: object


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """Replace snapshot and log by a received snapshot (SYNCHRONOUS): afterwards the log is empty above
    ``meta.index`` and ``LogView.snapshot_meta()`` returns ``meta``."""

    meta: SnapshotMeta
    state: object


@dataclass(frozen=True, slots=True)
class StartTimer:
    """(Re)arm timer ``key`` to fire in ``after_ms``."""

    key: TimerKey
    after_ms: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Disarm timer ``key`` (no-op if not armed)."""

    key: TimerKey


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """The raft state changed (for metrics, ``ping`` and the leaderboard)."""

    old: Role
    new: Role
    leader_id: ServerId | None = None


@dataclass(frozen=True, slots=True)
class MonitorServer:
    """Monitor the process of ``server_id`` (a follower monitors its leader, ra-internals §8.2)."""

    server_id: ServerId


@dataclass(frozen=True, slots=True)
class DemonitorServer:
    """Stop monitoring ``server_id``."""

    server_id: ServerId


@dataclass(frozen=True, slots=True)
class MonitorNode:
    """Register ``node`` with the failure detector (aten); events come back as ``NodeUp``/``NodeDown``."""

    node: str


@dataclass(frozen=True, slots=True)
class MachineEffect:
    """A machine effect the driver executes (send_msg, mod_call, monitor, demonitor, log, aux, gc)."""

    effect: MachineEffectT


@dataclass(frozen=True, slots=True)
class Stop:
    """The server stops (``normal`` after leaving the cluster, ``delete`` after ``delete_cluster``,
    or a crash reason); the driver should answer later calls with ``{error, noproc}``."""

    reason: object
    delete_data: bool = False


@dataclass(frozen=True, slots=True)
class ClusterChanged:
    """The effective configuration changed (informational: leaderboard, peer connections)."""

    members: tuple[ServerId, ...]
    extra: Mapping[str, object] = field(default_factory=dict)


Effect: TypeAlias = (
    SendRpc
    | Reply
    | Notify
    | Rejected
    | ForwardCommand
    | AppendToLog
    | TruncateLog
    | PersistMeta
    | PersistLastApplied
    | WriteSnapshot
    | InstallSnapshot
    | StartTimer
    | CancelTimer
    | RoleChanged
    | MonitorServer
    | DemonitorServer
    | MonitorNode
    | MachineEffect
    | Stop
    | ClusterChanged
)
"""Every output of ``RaftCore.handle``."""

__all__ = [
    "AppendToLog",
    "AtomReply",
    "AuxReply",
    "CancelTimer",
    "ClientReply",
    "ClusterChanged",
    "DemonitorServer",
    "Effect",
    "ErrorReply",
    "ForwardCommand",
    "InstallSnapshot",
    "LeaderHint",
    "LocalQueryReply",
    "MachineEffect",
    "MonitorNode",
    "MonitorServer",
    "Notify",
    "OkReply",
    "PersistLastApplied",
    "PersistMeta",
    "Pong",
    "Redirect",
    "Rejected",
    "Reply",
    "RoleChanged",
    "SendRpc",
    "StartTimer",
    "Stop",
    "TruncateLog",
    "WrapReply",
    "WriteSnapshot",
]
