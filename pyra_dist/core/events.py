"""Inputs of the Raft core: everything that can happen to a Ra server, as typed values.

Owns: the closed ``Event`` union fed to ``RaftCore.handle``: peer messages, client requests (with
an opaque ``From`` caller token), timer expiries, I/O completions and failure-detector signals.
Must not: contain behaviour; time is injected through ``system_time`` fields and ``Tick``.

There is deliberately no ``MetaPersisted`` event: ``PersistMeta`` is synchronous (the interpreter
finishes it before the next effect), exactly like Ra's dets write before a vote reply.

Mapping to Ra 2.2.0's gen_statem events (ra-internals §4):
``CommandRequest``        ``{leader_call, {command, Prio, {'$usr', C, Mode}}}`` (``from_`` set) or the
                          cast ``{command, Prio, {'$usr', C, Mode}}`` (``from_`` None)
``CommandBatch``          ``{commands, Cmds}``: consecutive commands of one mailbox burst (drivers may
                          batch them; handling equals handling each in turn, replication happens once)
``JoinRequest``           ``{leader_call, {command, normal, {'$ra_join', Id, Mode}}}``
``LeaveRequest``          ``{leader_call, {command, normal, {'$ra_leave', Id, Mode}}}``
``DeleteClusterRequest``  ``{leader_call, {command, normal, {'$ra_cluster', delete, await_consensus}}}``
``QueryRequest``          ``{local_query, Q}``, ``{leader_call, {local_query, Q}}``,
                          ``{leader_call, {consistent_query, Q}}``
``StateQueryRequest``     ``{leader_call | local_call, {state_query, members | initial_members | overview}}``
``TransferLeadershipRequest`` ``{leader_call, {transfer_leadership, Target}}``
``TriggerElection``       ``trigger_election``; ``PingRequest`` ``ping``;
``AuxCommand``            ``{aux_command, Cmd}``
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal, TypeAlias

from pyra_dist.core.messages import PeerRpc
from pyra_dist.types import NO_REPLY, From, Index, Pid, ReplyMode, ServerId, Term

# ---------------------------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerMessage:
    """A server-to-server record received from ``sender``.

    ``call`` is the caller token when the record arrived as a gen call (pre-vote, request-vote,
    install-snapshot from an Erlang server); the core echoes it in ``SendRpc.reply_to`` so that the
    driver answers with a gen reply instead of a cast. For results of calls this server made (vote
    results, snapshot results) the driver sets ``sender`` to the peer it called.
    """

    sender: ServerId
    msg: PeerRpc
    call: From | None = None


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------

Priority: TypeAlias = Literal["normal", "low"]


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A user command ``{'$usr', Data, ReplyMode}``.

    ``from_`` is the caller of a ``leader_call`` (``process_command``), None for a cast
    (``pipeline_command``). ``system_time`` is the receiving server's wall clock in ms; the leader
    stores it as the entry's ``ts``.
    """

    data: object
    reply_mode: ReplyMode = NO_REPLY
    from_: From | None = None
    priority: Priority = "normal"
    system_time: int = 0


@dataclass(frozen=True, slots=True)
class CommandBatch:
    """Several commands received back to back, handled as one input (Ra's ``{commands, Cmds}``).

    A leader appends them with one ``AppendToLog`` and replicates once, so one burst of pipelined
    commands costs one AER per peer instead of one per command; any other role handles them one by
    one, exactly as if they had arrived as separate ``CommandRequest``s. ``system_time`` is the
    newest of the commands' clocks.
    """

    commands: tuple[CommandRequest, ...]
    system_time: int = 0


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """``'$ra_join'`` for ``server_id`` (``add_member`` uses ``after_log_append``)."""

    server_id: ServerId
    reply_mode: ReplyMode
    from_: From | None
    system_time: int = 0


@dataclass(frozen=True, slots=True)
class LeaveRequest:
    """``'$ra_leave'`` (``remove_member``: after_log_append; ``leave_and_terminate``: await_consensus)."""

    server_id: ServerId
    reply_mode: ReplyMode
    from_: From | None
    system_time: int = 0


@dataclass(frozen=True, slots=True)
class DeleteClusterRequest:
    """``{'$ra_cluster', delete, await_consensus}`` from ``ra:delete_cluster``."""

    from_: From | None
    system_time: int = 0


QueryKind: TypeAlias = Literal["local", "leader", "consistent"]


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """A read: ``query`` is called with the machine state (the edge maps Erlang ``{M, F, A}`` to it)."""

    kind: QueryKind
    query: Callable[[object], object]
    from_: From


StateQuery: TypeAlias = Literal["members", "initial_members", "overview"]


@dataclass(frozen=True, slots=True)
class StateQueryRequest:
    """``{state_query, What}``; ``local=True`` for ``local_call`` (answered by any member)."""

    what: StateQuery
    from_: From
    local: bool = False


@dataclass(frozen=True, slots=True)
class TransferLeadershipRequest:
    """``{transfer_leadership, Target}`` (2.2.0: casts ``try_become_leader`` to the target)."""

    target: ServerId
    from_: From | None


@dataclass(frozen=True, slots=True)
class TriggerElection:
    """``trigger_election``: a follower starts a pre-vote; a no-op elsewhere; replies ``ok`` if ``from_``."""

    from_: From | None = None


@dataclass(frozen=True, slots=True)
class PingRequest:
    """``ping`` -> ``{pong, RaftState}``."""

    from_: From


@dataclass(frozen=True, slots=True)
class AuxCommand:
    """``{aux_command, Cmd}`` as a call (``from_`` set) or a cast."""

    command: object
    from_: From | None = None


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------


class TimerKind(Enum):
    """The core's own timers (Ra's gen_statem state timeouts, ra-internals §8.1)."""

    ELECTION = "election"
    AWAIT_CONDITION = "await_condition"
    RECEIVE_SNAPSHOT = "receive_snapshot"
    FLUSH_COMMANDS = "flush_commands"
    """Armed with 0 ms: Ra's self-cast ``flush_commands`` that appends queued low-priority commands
    (ra-internals §4.2) once the messages already waiting were handled."""


@dataclass(frozen=True, slots=True)
class MachineTimer:
    """Key of a machine ``{timer, Name, Ms}`` timer (leader only)."""

    name: object


TimerKey: TypeAlias = TimerKind | MachineTimer


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer started with ``StartTimer(key, ...)`` expired (and was not cancelled or restarted)."""

    key: TimerKey
    system_time: int = 0


@dataclass(frozen=True, slots=True)
class Tick:
    """The periodic tick (``tick_timeout``, 1000 ms) driven by the interpreter."""

    system_time: int = 0


# ---------------------------------------------------------------------------------------------
# I/O completions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogWritten:
    """Ra's ``{written, {FromIdx, ToIdx, Term}}``: entries ``from_index..to_index`` are durable.

    ``term`` is the term of the entry at ``to_index`` as written. The core ignores the event if
    its own log no longer holds ``(to_index, term)`` (a late event for entries that were since
    overwritten must not confirm the new, unwritten ones: Ra 2.15.3 fix, landscape §2.4).
    """

    from_index: Index
    to_index: Index
    term: Term


@dataclass(frozen=True, slots=True)
class LogWriteFailed:
    """The log could not write; Ra crashes the server (the core stops)."""

    reason: object


@dataclass(frozen=True, slots=True)
class SnapshotWritten:
    """A ``WriteSnapshot`` finished: the snapshot at ``index``/``term`` is durable."""

    index: Index
    term: Term


# ---------------------------------------------------------------------------------------------
# Failure detection and machine monitors (ra-internals §8.2)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerCallFailed:
    """A gen call this server made to ``peer`` (``PreVoteRpc``, ``RequestVoteRpc``, ``InstallSnapshotRpc``)
    ended without a result: ``noproc``, ``nodedown``, a timeout...

    Ra's spawned sender process crashes in that case and the leader sees it go down; for a snapshot
    transfer this puts the peer back to normal so that the next tick retries (ra-internals §2.5).
    Optional for drivers: without it a silent transfer is retried after ``snapshot_send_ticks``.
    """

    peer: ServerId
    rpc: PeerRpc
    reason: object = None


@dataclass(frozen=True, slots=True)
class PeerDown:
    """The process monitor on ``server_id`` fired; ``reason`` ``"noconnection"`` means the link broke."""

    server_id: ServerId
    reason: object


@dataclass(frozen=True, slots=True)
class NodeDown:
    """The failure detector (aten) says ``node`` is down."""

    node: str


@dataclass(frozen=True, slots=True)
class NodeUp:
    """The failure detector (aten) says ``node`` is up."""

    node: str


@dataclass(frozen=True, slots=True)
class MachineDown:
    """A process monitored by the machine (``Monitor("process", Pid)``) went down."""

    pid: Pid
    info: object
    system_time: int = 0


@dataclass(frozen=True, slots=True)
class MachineNodeEvent:
    """A node monitored by the machine (``Monitor("node", Node)``) went up or down."""

    node: str
    up: bool
    system_time: int = 0


Event: TypeAlias = (
    PeerMessage
    | CommandRequest
    | CommandBatch
    | JoinRequest
    | LeaveRequest
    | DeleteClusterRequest
    | QueryRequest
    | StateQueryRequest
    | TransferLeadershipRequest
    | TriggerElection
    | PingRequest
    | AuxCommand
    | TimerFired
    | Tick
    | LogWritten
    | LogWriteFailed
    | SnapshotWritten
    | PeerCallFailed
    | PeerDown
    | NodeDown
    | NodeUp
    | MachineDown
    | MachineNodeEvent
)
"""Every input of ``RaftCore.handle``."""

__all__ = [
    "AuxCommand",
    "CommandBatch",
    "CommandRequest",
    "DeleteClusterRequest",
    "Event",
    "JoinRequest",
    "LeaveRequest",
    "LogWriteFailed",
    "LogWritten",
    "MachineDown",
    "MachineNodeEvent",
    "MachineTimer",
    "NodeDown",
    "NodeUp",
    "PeerCallFailed",
    "PeerDown",
    "PeerMessage",
    "PingRequest",
    "Priority",
    "QueryKind",
    "QueryRequest",
    "SnapshotWritten",
    "StateQuery",
    "StateQueryRequest",
    "Tick",
    "TimerFired",
    "TimerKey",
    "TimerKind",
    "TransferLeadershipRequest",
    "TriggerElection",
]
