"""Ra's shared vocabulary as plain Python values: server ids, log entries and the commands inside them.

Owns: the typed mirror of Ra 2.2.0's terms that live in the log and on the wire (``{Name, Node}``
server ids, ``{Index, Term, Command}`` entries, ``'$usr'``/``noop``/``'$ra_cluster_change'``/
``'$ra_cluster'`` commands, reply modes, snapshot meta). Every class converts 1:1 to the Erlang
term named in its docstring; the conversion itself lives at the edge (a later module), so this
module must not import ``erl_interop`` nor do any I/O.

Opaque Erlang values (pids, alias references, ``From`` tuples, user command payloads) are kept as
``object``: the core stores and returns them untouched (ra-internals §9.2: "store entries as
opaque Erlang terms and return them byte-for-byte equivalent").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeAlias

Index: TypeAlias = int
"""A log index; 0 is the implicit empty prefix (ra-internals §3.1)."""

Term: TypeAlias = int
"""A Raft term; 0 before any election."""

From: TypeAlias = object
"""An opaque caller token (Erlang's ``{Pid, Tag}`` from a gen call, or anything a Python driver uses)."""

Pid: TypeAlias = object
"""An opaque process identifier (an Erlang pid, or a Python stand-in) used by notify reply modes."""


@dataclass(frozen=True, slots=True, order=True)
class ServerId:
    """Ra's server id ``{Name, Node}``: the server is registered under ``name`` on ``node``.

    Server ids key every peer map and vote set, so the hash is computed once (a frozen dataclass
    would rebuild it on every lookup); pickling goes through ``__reduce__`` so that an unpickled id
    recomputes it (string hashes differ between processes).
    """

    name: str
    node: str
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.name, self.node)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[ServerId], tuple[str, str]]:
        return (ServerId, (self.name, self.node))

    def __str__(self) -> str:
        return f"{self.name}@{self.node}" if "@" not in self.node else f"{{{self.name},{self.node}}}"


# ---------------------------------------------------------------------------------------------
# Reply modes (ra-internals §3.2 "Reply modes")
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AwaitConsensus:
    """``await_consensus``: the leader replies ``{wrap_reply, Reply}`` to ``from`` once applied."""


@dataclass(frozen=True, slots=True)
class AfterLogAppend:
    """``after_log_append``: the leader replies ``{wrap_reply, {Index, Term}}`` right after appending."""


@dataclass(frozen=True, slots=True)
class NotifyReply:
    """``{notify, Correlation, Pid}``: the leader sends ``{ra_event, Leader, {applied, [{Corr, Reply}]}}``."""

    correlation: object
    pid: Pid


@dataclass(frozen=True, slots=True)
class NoReply:
    """``noreply``: fire and forget."""


ReplyMode: TypeAlias = AwaitConsensus | AfterLogAppend | NotifyReply | NoReply

AWAIT_CONSENSUS = AwaitConsensus()
AFTER_LOG_APPEND = AfterLogAppend()
NO_REPLY = NoReply()


# ---------------------------------------------------------------------------------------------
# Commands stored in log entries (ra-internals §3.2)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsrCommand:
    """``{'$usr', Meta, Data, ReplyMode}`` with ``Meta = #{ts => Ts[, from => From]}``.

    ``ts`` is the leader's system time in ms when it received the command (it becomes the apply
    meta's ``system_time``); ``from_`` is present only for commands that came through a call.
    """

    data: object
    reply_mode: ReplyMode = NO_REPLY
    from_: From | None = None
    ts: int = 0


@dataclass(frozen=True, slots=True)
class Noop:
    """``{noop, #{ts => Ts}, MachineVersion}``: first entry of every new leader's term."""

    machine_version: int
    ts: int = 0


@dataclass(frozen=True, slots=True)
class PeerState:
    """The value side of Ra 2.2.0's cluster map (ra-internals §3.3): the leader's bookkeeping per peer.

    Followers use only the keys of the map; the values are kept so that entries received from an
    Erlang leader can be re-sent unchanged.
    """

    next_index: Index = 1
    match_index: Index = 0
    commit_index_sent: Index = 0
    query_index: int = 0
    status: object = "normal"


@dataclass(frozen=True, slots=True)
class ClusterChange:
    """``{'$ra_cluster_change', Meta, ClusterMap, ReplyMode}``; effective as soon as appended/received."""

    cluster: Mapping[ServerId, PeerState]
    reply_mode: ReplyMode = NO_REPLY
    from_: From | None = None
    ts: int = 0

    @property
    def members(self) -> tuple[ServerId, ...]:
        """The member ids of the new configuration, sorted (Ra uses only the map's keys)."""
        return tuple(sorted(self.cluster))


@dataclass(frozen=True, slots=True)
class ClusterDelete:
    """``{'$ra_cluster', Meta, delete, ReplyMode}`` written by ``ra:delete_cluster``."""

    reply_mode: ReplyMode = AWAIT_CONSENSUS
    from_: From | None = None
    ts: int = 0


Command: TypeAlias = UsrCommand | Noop | ClusterChange | ClusterDelete


@dataclass(frozen=True, slots=True)
class Entry:
    """A log entry ``{Index, Term, Command}`` (ra-internals §3.1)."""

    index: Index
    term: Term
    command: Command


# ---------------------------------------------------------------------------------------------
# Snapshots (ra-internals §2.5, §6.5)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Ra 2.2.0 snapshot meta ``#{index, term, cluster => [ServerId], machine_version}``."""

    index: Index
    term: Term
    cluster: tuple[ServerId, ...] = field(default_factory=tuple)
    machine_version: int = 0


# ---------------------------------------------------------------------------------------------
# Roles (ra-internals §6.2 state_enter list)
# ---------------------------------------------------------------------------------------------


class Role(Enum):
    """Ra's raft states; ``value`` is the atom name used in ``state_enter``/``ping`` replies."""

    FOLLOWER = "follower"
    PRE_VOTE = "pre_vote"
    CANDIDATE = "candidate"
    LEADER = "leader"
    AWAIT_CONDITION = "await_condition"
    RECEIVE_SNAPSHOT = "receive_snapshot"
    TERMINATING_LEADER = "terminating_leader"
    TERMINATING_FOLLOWER = "terminating_follower"
    STOPPED = "stopped"


__all__ = [
    "AFTER_LOG_APPEND",
    "AWAIT_CONSENSUS",
    "NO_REPLY",
    "AfterLogAppend",
    "AwaitConsensus",
    "ClusterChange",
    "ClusterDelete",
    "Command",
    "Entry",
    "From",
    "Index",
    "NoReply",
    "Noop",
    "NotifyReply",
    "PeerState",
    "Pid",
    "ReplyMode",
    "Role",
    "ServerId",
    "SnapshotMeta",
    "Term",
    "UsrCommand",
]
