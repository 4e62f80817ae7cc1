"""The signals that travel between processes, local or remote.

Owns: one closed vocabulary of process-to-process signals (messages, links, unlinks, exits,
monitors, DOWNs, spawn requests and replies). The node routes every signal the same way:
a local target gets it from :meth:`Node._deliver`, a remote one gets it translated to the
matching distribution control message (erts ``erl_dist_protocol``, "Control Messages";
erlang-distribution.md §4).

Must not: do I/O or hold state. Translation to and from wire control messages lives in
``erl_interop.node.wire``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias, assert_never

from erl_interop.term import Atom, Pid, Reference, Term

__all__ = [
    "AliasMessage",
    "Demonitor",
    "Down",
    "ExitSignal",
    "Link",
    "Message",
    "Monitor",
    "NamedMessage",
    "Signal",
    "SpawnReply",
    "SpawnRequest",
    "UnlinkId",
    "UnlinkIdAck",
    "destination",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A message to a pid (SEND / SEND_SENDER). ``sender`` is None only for anonymous sends."""

    sender: Pid | None
    to: Pid
    message: Term


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedMessage:
    """A message to ``{name, node}`` (REG_SEND); dropped silently if the name is free."""

    sender: Pid
    name: Atom
    node: Atom
    message: Term


@dataclass(frozen=True, slots=True, kw_only=True)
class AliasMessage:
    """A message to a process alias (ALIAS_SEND); dropped if the alias is inactive."""

    sender: Pid
    alias: Reference
    message: Term


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """LINK: ``sender`` links to ``to`` (new link protocol, erts "Linking")."""

    sender: Pid
    to: Pid


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlinkId:
    """UNLINK_ID: ``sender`` unlinks from ``to``; ``to`` must answer UNLINK_ID_ACK with ``id``."""

    id: int
    sender: Pid
    to: Pid


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlinkIdAck:
    """UNLINK_ID_ACK: completes the unlink started with the same ``id``."""

    id: int
    sender: Pid
    to: Pid


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitSignal:
    """An exit signal. ``link`` is True for a broken link (EXIT), False for ``exit/2`` (EXIT2)."""

    sender: Pid
    to: Pid
    reason: Term
    link: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Monitor:
    """MONITOR_P: ``sender`` monitors ``target`` (a pid, or a name atom on ``node``)."""

    sender: Pid
    target: Pid | Atom
    node: Atom
    ref: Reference


@dataclass(frozen=True, slots=True, kw_only=True)
class Demonitor:
    """DEMONITOR_P: ``sender`` drops the monitor ``ref`` on ``target`` (a pid or a name on ``node``)."""

    sender: Pid
    target: Pid | Atom
    node: Atom
    ref: Reference


@dataclass(frozen=True, slots=True, kw_only=True)
class Down:
    """MONITOR_P_EXIT: the monitored process died. ``sender`` is the name atom if monitored by name."""

    sender: Pid | Atom
    sender_node: Atom
    to: Pid
    ref: Reference
    reason: Term


@dataclass(frozen=True, slots=True, kw_only=True)
class SpawnRequest:
    """SPAWN_REQUEST: ``sender`` asks ``node`` to spawn ``module:function/len(args)``."""

    req_id: Reference
    sender: Pid
    group_leader: Pid
    node: Atom
    module: Atom
    function: Atom
    arity: int
    options: list[Term]
    args: list[Term]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpawnReply:
    """SPAWN_REPLY: ``result`` is the new pid or an error atom; ``flags`` 1 = linked, 2 = monitored."""

    req_id: Reference
    to: Pid
    flags: int
    result: Pid | Atom


Signal: TypeAlias = (
    Message
    | NamedMessage
    | AliasMessage
    | Link
    | UnlinkId
    | UnlinkIdAck
    | ExitSignal
    | Monitor
    | Demonitor
    | Down
    | SpawnRequest
    | SpawnReply
)


def destination(signal: Signal) -> Atom:
    """The node a signal is addressed to."""
    match signal:
        case Message(to=to) | Link(to=to) | UnlinkId(to=to) | UnlinkIdAck(to=to):
            return to.node
        case ExitSignal(to=to) | Down(to=to) | SpawnReply(to=to):
            return to.node
        case NamedMessage(node=node) | Monitor(node=node) | Demonitor(node=node) | SpawnRequest(node=node):
            return node
        case AliasMessage(alias=alias):
            return alias.node
        case _:
            assert_never(signal)
