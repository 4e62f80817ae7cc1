"""Ra 2.2.0's wire records and log commands <-> the core's typed values.

Owns: the exact Erlang shapes of ra-internals §2 (the ten server-to-server records and the 2.2.0
``try_become_leader`` signal), §3 (``{Index, Term, Command}`` entries, ``'$usr'``, ``noop``,
``'$ra_cluster_change'`` with its peer map, ``'$ra_cluster'`` delete, reply modes) and the
snapshot meta map, as terms of ``erl_interop.term``. "Ra's wire records are produced only at the
edge": the core never sees an ``Atom``; this module is the only place that knows field order.

Must not: do I/O, pick envelopes (``'$gen_cast'``, gen calls, ``{FollowerId, Reply}``: see
``transport.py``) or accept shapes it cannot reproduce. Decoding is strict: an unknown record,
an extra meta key or a wrong arity raises :class:`RecordError`, so a term from a newer Ra is
refused, never silently altered (issue 6, point 7). The shapes that only Ra main (3.x) sends
(ra-internals §10: ``info_rpc``/``info_reply``, pre-vote protocol versions above 1, the
``{0, init}``/``{0, pre}`` snapshot phases, ``voter_status``/``machine_version`` in cluster maps,
main-only peer statuses and reply modes, the ``election_timeout`` transfer cast) raise its
subclass :class:`UnsupportedRaVersion`, whose message names the peer and what pyra does about it
(the version policy and its log: ``versions.py``, docs/ra-versions.md).

Round trip: for every term ``t`` a real Ra 2.2.0 produces, ``x_to_term(x_from_term(t)) == t``
(tests/interop/test_ra_records.py checks this against live captures). Maps are rebuilt with their
keys in Erlang term order, which is the order OTP 25 writes small maps in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final, cast

from erl_interop.term import Atom, Map, Term
from pyra_dist.core.messages import (
    RA_PROTO_VERSION,
    AppendEntriesReply,
    AppendEntriesRpc,
    ChunkState,
    HeartbeatReply,
    HeartbeatRpc,
    InstallSnapshotResult,
    InstallSnapshotRpc,
    PeerRpc,
    PreVoteResult,
    PreVoteRpc,
    RequestVoteResult,
    RequestVoteRpc,
    TryBecomeLeader,
)
from pyra_dist.types import (
    AFTER_LOG_APPEND,
    AWAIT_CONSENSUS,
    NO_REPLY,
    AfterLogAppend,
    AwaitConsensus,
    ClusterChange,
    ClusterDelete,
    Command,
    Entry,
    Noop,
    NoReply,
    NotifyReply,
    PeerState,
    ReplyMode,
    ServerId,
    SnapshotMeta,
    UsrCommand,
)

__all__ = [
    "ENTRIES_REFUSED",
    "SPOKEN_RA_VERSION",
    "RecordError",
    "UnsupportedRaVersion",
    "atom_text",
    "command_from_term",
    "command_to_term",
    "entry_from_term",
    "entry_to_term",
    "opaque",
    "reply_mode_from_term",
    "reply_mode_to_term",
    "rpc_from_term",
    "rpc_to_term",
    "server_id_from_term",
    "server_id_to_term",
    "snapshot_meta_from_term",
    "snapshot_meta_to_term",
]


class RecordError(ValueError):
    """A term is not a Ra 2.2.0 record, command or id that this edge can reproduce exactly."""

    def __init__(self, what: str, term: object) -> None:
        super().__init__(f"not a Ra 2.2.0 {what}: {term!r}")
        self.what = what
        self.term = term


SPOKEN_RA_VERSION: Final = "2.2.0"
"""The Ra release whose wire records and client protocol pyra speaks (``RA_PROTO_VERSION`` 1)."""


class UnsupportedRaVersion(RecordError):
    """A term only a newer Ra (main, 3.x) sends: refused whole, before anything reaches the core.

    The message states the peer-visible fact, the sender when the term names one, what pyra
    speaks and what happens to the term, e.g. ``pre_vote_rpc protocol version 2 from
    {s1,n1@host}: pyra speaks Ra 2.2.0 (protocol 1); vote refused (not answered)``. It never
    contains the whole term (an append_entries_rpc or a snapshot chunk can be megabytes).

    Attributes:
        kind: a stable name of the refused feature (``info_rpc``, ``pre_vote_version``,
            ``snapshot_phase``...), used with ``sender`` to rate-limit the log (``versions.py``).
        fact: what arrived, in Erlang's words.
        sender: the Ra server that sent it, when the term names one.
        outcome: what pyra does instead of what the newer Ra expects.
    """

    def __init__(
        self, kind: str, fact: str, term: object, *, sender: ServerId | None = None, outcome: str = "refused"
    ) -> None:
        who = f" from {erlang_text(server_id_to_term(sender))}" if sender is not None else ""
        message = f"{fact}{who}: pyra speaks Ra {SPOKEN_RA_VERSION} (protocol {RA_PROTO_VERSION}); {outcome}"
        ValueError.__init__(self, message)
        self.what = kind
        self.term = term
        self.kind = kind
        self.fact = fact
        self.sender = sender
        self.outcome = outcome

    def carried_by(
        self, carrier: str, sender: ServerId | None = None, outcome: str | None = None
    ) -> UnsupportedRaVersion:
        """The same refusal, seen from the term that carried it (``entry 7 carrying ...``).

        Args:
            carrier: what carried the refused term, e.g. ``entry 7`` or ``install_snapshot_rpc``.
            sender: the server that sent the carrier (default: as before).
            outcome: what happens to the carrier (default: as before).
        """
        return self._restate(f"{carrier} carrying {self.fact}", sender, outcome)

    def sent_in(self, record: str, sender: ServerId | None, outcome: str) -> UnsupportedRaVersion:
        """The same refusal, as part of a record from ``sender`` (``append_entries_rpc entry 7 ...``).

        Args:
            record: the record's name, e.g. ``append_entries_rpc``.
            sender: the server that sent the record.
            outcome: what happens to the record (``ENTRIES_REFUSED`` for an append_entries_rpc).
        """
        return self._restate(f"{record} {self.fact}", sender, outcome)

    def _restate(self, fact: str, sender: ServerId | None, outcome: str | None) -> UnsupportedRaVersion:
        return UnsupportedRaVersion(
            self.kind,
            fact,
            self.term,
            sender=sender if sender is not None else self.sender,
            outcome=outcome if outcome is not None else self.outcome,
        )


ENTRIES_REFUSED: Final = "entries refused (not appended, not answered)"
"""The outcome of an append_entries_rpc with an entry only Ra main writes: the whole rpc is dropped."""


_PLAIN_ATOM: Final = re.compile(r"[a-z][A-Za-z0-9_@]*")
_TEXT_LIMIT: Final = 120


def erlang_text(term: object, limit: int = _TEXT_LIMIT) -> str:
    """A short ``~p``-like text of a term for log lines (atoms quoted as Erlang prints them).

    Containers are abbreviated past ``limit`` characters; binaries show their size only.
    """
    text = _erlang_text(term, limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _erlang_text(term: object, limit: int) -> str:
    if type(term) is Atom:
        name = term.name
        return name if _PLAIN_ATOM.fullmatch(name) else "'" + name.replace("'", "\\'") + "'"
    if type(term) is bool:
        return "true" if term else "false"
    if type(term) is int:
        return str(term)
    if type(term) is bytes:
        return f"<<{len(term)} bytes>>"
    if type(term) is tuple:
        return "{" + _join(term, limit) + "}"
    if type(term) is list:
        return "[" + _join(term, limit) + "]"
    if isinstance(term, Mapping):
        parts = (f"{_erlang_text(k, limit)} => {_erlang_text(v, limit)}" for k, v in term.items())
        return "#{" + _bounded(parts, limit) + "}"
    return type(term).__name__


def _join(items: tuple[object, ...] | list[object], limit: int) -> str:
    return _bounded((_erlang_text(i, limit) for i in items), limit)


def _bounded(parts: Iterable[str], limit: int) -> str:
    out: list[str] = []
    size = 0
    for part in parts:
        if size > limit:
            out.append("...")
            break
        out.append(part)
        size += len(part) + 1
    return ",".join(out)


# Record tags (src/ra.hrl, 2.2.0).
APPEND_ENTRIES_RPC: Final = Atom("append_entries_rpc")
APPEND_ENTRIES_REPLY: Final = Atom("append_entries_reply")
REQUEST_VOTE_RPC: Final = Atom("request_vote_rpc")
REQUEST_VOTE_RESULT: Final = Atom("request_vote_result")
PRE_VOTE_RPC: Final = Atom("pre_vote_rpc")
PRE_VOTE_RESULT: Final = Atom("pre_vote_result")
INSTALL_SNAPSHOT_RPC: Final = Atom("install_snapshot_rpc")
INSTALL_SNAPSHOT_RESULT: Final = Atom("install_snapshot_result")
HEARTBEAT_RPC: Final = Atom("heartbeat_rpc")
HEARTBEAT_REPLY: Final = Atom("heartbeat_reply")
TRY_BECOME_LEADER: Final = Atom("try_become_leader")

# Ra main (3.x) only (ra-internals §10), recognised so that they are refused with a clear reason.
INFO_RPC: Final = Atom("info_rpc")
INFO_REPLY: Final = Atom("info_reply")
ELECTION_TIMEOUT: Final = Atom("election_timeout")
VOTER_STATUS: Final = Atom("voter_status")
INIT: Final = Atom("init")
PRE: Final = Atom("pre")
DISCONNECTED: Final = Atom("disconnected")
SNAPSHOT_BACKOFF: Final = Atom("snapshot_backoff")
SENDING_SNAPSHOT: Final = Atom("sending_snapshot")

# Command tags (ra-internals §3.2).
USR: Final = Atom("$usr")
NOOP: Final = Atom("noop")
RA_CLUSTER_CHANGE: Final = Atom("$ra_cluster_change")
RA_CLUSTER: Final = Atom("$ra_cluster")
DELETE: Final = Atom("delete")

# Reply modes (ra-internals §3.2 "Reply modes").
AWAIT_CONSENSUS_ATOM: Final = Atom("await_consensus")
AFTER_LOG_APPEND_ATOM: Final = Atom("after_log_append")
NOREPLY_ATOM: Final = Atom("noreply")
NOTIFY: Final = Atom("notify")

# Meta and map keys.
TS: Final = Atom("ts")
FROM: Final = Atom("from")
INDEX: Final = Atom("index")
TERM: Final = Atom("term")
CLUSTER: Final = Atom("cluster")
MACHINE_VERSION: Final = Atom("machine_version")
NEXT_INDEX: Final = Atom("next_index")
MATCH_INDEX: Final = Atom("match_index")
COMMIT_INDEX_SENT: Final = Atom("commit_index_sent")
QUERY_INDEX: Final = Atom("query_index")
STATUS: Final = Atom("status")

NEXT: Final = Atom("next")
LAST: Final = Atom("last")
TRUE: Final = Atom("true")
FALSE: Final = Atom("false")


def opaque(value: object) -> Term:
    """An opaque value the core carries for Erlang (``object`` in pyra_dist.types) as the term it is.

    The core never builds these itself: they are decoded terms (pids, alias tags, user data,
    pre-vote tokens) that it stores and hands back untouched (ra-internals §9.2).
    """
    return cast(Term, value)


def atom_text(term: object, what: str) -> str:
    """The text of an atom.

    Args:
        term: the value that must be an atom.
        what: what it should be (for the error message).

    Raises:
        RecordError: ``term`` is not an atom.
    """
    if type(term) is not Atom:
        raise RecordError(what, term)
    return term.name


def _int(term: object, what: str) -> int:
    # Erlang integers only: a Python bool is the atom true/false, not 1/0.
    if type(term) is not int:
        raise RecordError(what, term)
    return term


def _bool(term: object, what: str) -> bool:
    if term is True or term == TRUE:
        return True
    if term is False or term == FALSE:
        return False
    raise RecordError(what, term)


def _tuple(term: object, tag: Atom, arity: int, what: str) -> tuple[Term, ...]:
    # ``arity`` counts the tag, as Erlang's tuple_size/1 does for a record.
    if type(term) is not tuple or len(term) != arity or term[0] != tag:
        raise RecordError(what, term)
    return term


def _map(term: object, keys: frozenset[Atom], optional: frozenset[Atom], what: str) -> Mapping[Atom, Term]:
    # Strict key check: every required key present, nothing unknown (a newer Ra's extra keys would
    # be lost on re-encoding, so they are refused instead).
    if not isinstance(term, Mapping):
        raise RecordError(what, term)
    present = set(term.keys())
    if not keys <= present or not present <= keys | optional:
        raise RecordError(what, term)
    return term


def _sorted_map(pairs: list[tuple[Atom, Term]]) -> Map:
    # OTP writes small maps (<= 32 keys) with keys in term order; atoms sort by their text.
    return Map(sorted(pairs, key=lambda kv: kv[0].name))


# ---------------------------------------------------------------------------------------------
# Server ids
# ---------------------------------------------------------------------------------------------


def server_id_to_term(server_id: ServerId) -> tuple[Atom, Atom]:
    """``ServerId(name, node)`` -> ``{Name, Node}`` (ra-internals §1.1)."""
    return (Atom(server_id.name), Atom(server_id.node))


def server_id_from_term(term: object) -> ServerId:
    """``{Name, Node}`` -> ``ServerId``.

    Raises:
        RecordError: not a 2-tuple of atoms.
    """
    if type(term) is not tuple or len(term) != 2:
        raise RecordError("server id", term)
    return ServerId(atom_text(term[0], "server id"), atom_text(term[1], "server id"))


# ---------------------------------------------------------------------------------------------
# Reply modes and commands (ra-internals §3.2, §3.3)
# ---------------------------------------------------------------------------------------------


def reply_mode_to_term(mode: ReplyMode) -> Term:
    """A reply mode -> ``await_consensus | after_log_append | noreply | {notify, Corr, Pid}``."""
    match mode:
        case AwaitConsensus():
            return AWAIT_CONSENSUS_ATOM
        case AfterLogAppend():
            return AFTER_LOG_APPEND_ATOM
        case NoReply():
            return NOREPLY_ATOM
        case NotifyReply(correlation=corr, pid=pid):
            return (NOTIFY, opaque(corr), opaque(pid))


def reply_mode_from_term(term: object) -> ReplyMode:
    """The inverse of :func:`reply_mode_to_term`.

    Raises:
        RecordError: not one of the 2.2.0 reply modes.
    """
    if term == AWAIT_CONSENSUS_ATOM:
        return AWAIT_CONSENSUS
    if term == AFTER_LOG_APPEND_ATOM:
        return AFTER_LOG_APPEND
    if term == NOREPLY_ATOM:
        return NO_REPLY
    if type(term) is tuple and len(term) == 3 and term[0] == NOTIFY:
        return NotifyReply(correlation=term[1], pid=term[2])
    if type(term) is tuple and len(term) == 2 and term[0] == AWAIT_CONSENSUS_ATOM:
        # main: {await_consensus, #{reply_from => leader | local | {member, Id}}} (ra.erl).
        raise UnsupportedRaVersion(
            "reply_mode",
            f"reply mode {erlang_text(term)} (Ra main reply_from option)",
            term,
            outcome="command refused (not answered)",
        )
    raise RecordError("reply mode", term)


_META_KEYS: Final = frozenset({TS})
_META_OPTIONAL: Final = frozenset({FROM})
_PEER_KEYS: Final = frozenset({NEXT_INDEX, MATCH_INDEX, COMMIT_INDEX_SENT, QUERY_INDEX, STATUS})


def _meta_to_term(ts: int, from_: object | None) -> Map:
    pairs: list[tuple[Atom, Term]] = [(TS, ts)]
    if from_ is not None:
        pairs.append((FROM, opaque(from_)))
    return _sorted_map(pairs)


def _meta_from_term(term: object, what: str) -> tuple[int, object | None]:
    meta = _map(term, _META_KEYS, _META_OPTIONAL, what)
    return _int(meta[TS], what), meta.get(FROM)


def _status_to_term(status: object) -> Term:
    # ``normal``/``suspended`` are kept as text by the core; ``{sending_snapshot, Pid}`` stays a term.
    return Atom(status) if isinstance(status, str) else opaque(status)


def _status_from_term(term: object) -> object:
    return term.name if type(term) is Atom else term


def peer_state_to_term(peer: PeerState) -> Map:
    """A peer's bookkeeping -> Ra 2.2.0's five-key map (ra-internals §3.3)."""
    return _sorted_map(
        [
            (COMMIT_INDEX_SENT, peer.commit_index_sent),
            (MATCH_INDEX, peer.match_index),
            (NEXT_INDEX, peer.next_index),
            (QUERY_INDEX, peer.query_index),
            (STATUS, _status_to_term(peer.status)),
        ]
    )


def peer_state_from_term(term: object) -> PeerState:
    """The inverse of :func:`peer_state_to_term` (exactly the five 2.2.0 keys).

    Raises:
        UnsupportedRaVersion: Ra main's ``voter_status``/``machine_version`` keys or peer statuses.
        RecordError: other missing or extra keys.
    """
    if isinstance(term, Mapping):
        for key, feature in ((VOTER_STATUS, "membership"), (MACHINE_VERSION, "machine version discovery")):
            if key in term:
                fact = f"a cluster map value with {key.name} (Ra main {feature})"
                raise UnsupportedRaVersion("cluster_map", fact, term)
        _refuse_main_status(term.get(STATUS))
    m = _map(term, _PEER_KEYS, frozenset(), "cluster map value")
    return PeerState(
        next_index=_int(m[NEXT_INDEX], "next_index"),
        match_index=_int(m[MATCH_INDEX], "match_index"),
        commit_index_sent=_int(m[COMMIT_INDEX_SENT], "commit_index_sent"),
        query_index=_int(m[QUERY_INDEX], "query_index"),
        status=_status_from_term(m[STATUS]),
    )


def _refuse_main_status(status: object) -> None:
    # 2.2.0: normal | suspended | {sending_snapshot, Pid}; main adds disconnected,
    # {snapshot_backoff, N} and {sending_snapshot, Pid, Attempt} (src/ra.hrl, ra_peer_status()).
    main_only = status == DISCONNECTED or (
        type(status) is tuple
        and (
            (len(status) == 2 and status[0] == SNAPSHOT_BACKOFF)
            or (len(status) == 3 and status[0] == SENDING_SNAPSHOT)
        )
    )
    if main_only:
        fact = f"a cluster map value with peer status {erlang_text(status)} (Ra main)"
        raise UnsupportedRaVersion("peer_status", fact, status)


def cluster_to_term(cluster: Mapping[ServerId, PeerState]) -> Map:
    """The ``'$ra_cluster_change'`` peer map ``#{ServerId => PeerMap}``, keys in term order."""
    # ServerId orders as (name, node), which is Erlang's order of {Name, Node} atom pairs.
    return Map((server_id_to_term(sid), peer_state_to_term(cluster[sid])) for sid in sorted(cluster))


def cluster_from_term(term: object) -> dict[ServerId, PeerState]:
    """The inverse of :func:`cluster_to_term`.

    Raises:
        RecordError: not a map of server ids to 2.2.0 peer maps.
    """
    if not isinstance(term, Mapping):
        raise RecordError("cluster map", term)
    return {server_id_from_term(k): peer_state_from_term(v) for k, v in term.items()}


def command_to_term(command: Command) -> Term:
    """A log command -> its Ra 2.2.0 tuple (ra-internals §3.2)."""
    match command:
        case UsrCommand(data=data, reply_mode=mode, from_=from_, ts=ts):
            return (USR, _meta_to_term(ts, from_), opaque(data), reply_mode_to_term(mode))
        case Noop(machine_version=version, ts=ts):
            return (NOOP, _meta_to_term(ts, None), version)
        case ClusterChange(cluster=cluster, reply_mode=mode, from_=from_, ts=ts):
            return (
                RA_CLUSTER_CHANGE,
                _meta_to_term(ts, from_),
                cluster_to_term(cluster),
                reply_mode_to_term(mode),
            )
        case ClusterDelete(reply_mode=mode, from_=from_, ts=ts):
            return (RA_CLUSTER, _meta_to_term(ts, from_), DELETE, reply_mode_to_term(mode))


def command_from_term(term: object) -> Command:
    """The inverse of :func:`command_to_term`.

    Raises:
        RecordError: not a 2.2.0 log command (``'$ra_join'``/``'$ra_leave'`` never reach the log).
    """
    if type(term) is not tuple or not term:
        raise RecordError("log command", term)
    tag = term[0]
    if tag == USR and len(term) == 4:
        ts, from_ = _meta_from_term(term[1], "'$usr' meta")
        return UsrCommand(data=term[2], reply_mode=reply_mode_from_term(term[3]), from_=from_, ts=ts)
    if tag == NOOP and len(term) == 3:
        ts, from_ = _meta_from_term(term[1], "noop meta")
        if from_ is not None:
            raise RecordError("noop meta", term[1])
        return Noop(machine_version=_int(term[2], "noop machine version"), ts=ts)
    if tag == RA_CLUSTER_CHANGE and len(term) == 4:
        ts, from_ = _meta_from_term(term[1], "'$ra_cluster_change' meta")
        return ClusterChange(
            cluster=cluster_from_term(term[2]), reply_mode=reply_mode_from_term(term[3]), from_=from_, ts=ts
        )
    if tag == RA_CLUSTER and len(term) == 4 and term[2] == DELETE:
        ts, from_ = _meta_from_term(term[1], "'$ra_cluster' meta")
        return ClusterDelete(reply_mode=reply_mode_from_term(term[3]), from_=from_, ts=ts)
    raise RecordError("log command", term)


def entry_to_term(entry: Entry) -> tuple[int, int, Term]:
    """``Entry`` -> ``{Index, Term, Command}`` (ra-internals §3.1)."""
    return (entry.index, entry.term, command_to_term(entry.command))


def entry_from_term(term: object) -> Entry:
    """The inverse of :func:`entry_to_term`.

    Raises:
        RecordError: not a 3-tuple of two integers and a 2.2.0 command.
    """
    if type(term) is not tuple or len(term) != 3:
        raise RecordError("log entry", term)
    index = _int(term[0], "entry index")
    try:
        command = command_from_term(term[2])
    except UnsupportedRaVersion as exc:
        raise exc.carried_by(f"entry {index}") from None
    return Entry(index, _int(term[1], "entry term"), command)


# ---------------------------------------------------------------------------------------------
# Snapshot meta (ra-internals §2.5: 2.2.0 ``cluster`` is a list of ids)
# ---------------------------------------------------------------------------------------------

_SNAPSHOT_META_KEYS: Final = frozenset({INDEX, TERM, CLUSTER, MACHINE_VERSION})


def snapshot_meta_to_term(meta: SnapshotMeta) -> Map:
    """``SnapshotMeta`` -> ``#{cluster => [Id], index, machine_version, term}`` (keys in term order)."""
    return _sorted_map(
        [
            (CLUSTER, [server_id_to_term(s) for s in meta.cluster]),
            (INDEX, meta.index),
            (MACHINE_VERSION, meta.machine_version),
            (TERM, meta.term),
        ]
    )


def snapshot_meta_from_term(term: object) -> SnapshotMeta:
    """The inverse of :func:`snapshot_meta_to_term`.

    Raises:
        UnsupportedRaVersion: a main-style ``cluster`` map (``#{Id => #{voter_status => ...}}``).
        RecordError: missing/extra keys.
    """
    if isinstance(term, Mapping) and isinstance(term.get(CLUSTER), Mapping):
        raise UnsupportedRaVersion(
            "snapshot_meta_cluster", "a snapshot meta whose cluster is a map (Ra main)", term
        )
    m = _map(term, _SNAPSHOT_META_KEYS, frozenset(), "snapshot meta")
    cluster = m[CLUSTER]
    if type(cluster) is not list:
        raise RecordError("snapshot meta cluster list", cluster)
    return SnapshotMeta(
        index=_int(m[INDEX], "snapshot index"),
        term=_int(m[TERM], "snapshot term"),
        cluster=tuple(server_id_from_term(s) for s in cluster),
        machine_version=_int(m[MACHINE_VERSION], "snapshot machine_version"),
    )


# ---------------------------------------------------------------------------------------------
# Server-to-server records (ra-internals §2, field order = tuple order)
# ---------------------------------------------------------------------------------------------


def rpc_to_term(rpc: PeerRpc) -> Term:
    """A peer record -> the tuple a Ra 2.2.0 server sends or expects (without envelope)."""
    match rpc:
        case AppendEntriesRpc():
            return (
                APPEND_ENTRIES_RPC,
                rpc.term,
                server_id_to_term(rpc.leader_id),
                rpc.leader_commit,
                rpc.prev_log_index,
                rpc.prev_log_term,
                [entry_to_term(e) for e in rpc.entries],
            )
        case AppendEntriesReply():
            return (
                APPEND_ENTRIES_REPLY,
                rpc.term,
                rpc.success,
                rpc.next_index,
                rpc.last_index,
                rpc.last_term,
            )
        case RequestVoteRpc():
            return (
                REQUEST_VOTE_RPC,
                rpc.term,
                server_id_to_term(rpc.candidate_id),
                rpc.last_log_index,
                rpc.last_log_term,
            )
        case RequestVoteResult():
            return (REQUEST_VOTE_RESULT, rpc.term, rpc.vote_granted)
        case PreVoteRpc():
            return (
                PRE_VOTE_RPC,
                rpc.version,
                rpc.machine_version,
                rpc.term,
                opaque(rpc.token),
                server_id_to_term(rpc.candidate_id),
                rpc.last_log_index,
                rpc.last_log_term,
            )
        case PreVoteResult():
            return (PRE_VOTE_RESULT, rpc.term, opaque(rpc.token), rpc.vote_granted)
        case HeartbeatRpc():
            return (HEARTBEAT_RPC, rpc.query_index, rpc.term, server_id_to_term(rpc.leader_id))
        case HeartbeatReply():
            return (HEARTBEAT_REPLY, rpc.query_index, rpc.term)
        case InstallSnapshotRpc():
            chunk = rpc.chunk_state
            return (
                INSTALL_SNAPSHOT_RPC,
                rpc.term,
                server_id_to_term(rpc.leader_id),
                snapshot_meta_to_term(rpc.meta),
                (chunk.number, Atom(chunk.flag)),
                rpc.data,
            )
        case InstallSnapshotResult():
            return (INSTALL_SNAPSHOT_RESULT, rpc.term, rpc.last_index, rpc.last_term)
        case TryBecomeLeader():
            return TRY_BECOME_LEADER


def _chunk_state_from_term(term: object) -> ChunkState:
    if type(term) is not tuple or len(term) != 2:
        raise RecordError("snapshot chunk state", term)
    number = _int(term[0], "snapshot chunk number")
    if term[1] == NEXT:
        return ChunkState(number, "next")
    if term[1] == LAST:
        return ChunkState(number, "last")
    if term[1] in (INIT, PRE):
        # main's {0, init} / {0, pre} live-index phases do not exist in 2.2.0 (ra-internals §2.5).
        fact = f"chunk state {erlang_text(term)} (Ra main live-index snapshot phase)"
        raise UnsupportedRaVersion("snapshot_phase", fact, term)
    raise RecordError("2.2.0 snapshot chunk state", term)


def _sender_in(term: Term, position: int) -> ServerId | None:
    # The server id a record names (for a refusal's message), if that field is one.
    try:
        return server_id_from_term(term[position]) if type(term) is tuple and len(term) > position else None
    except RecordError:
        return None


def _entries_from_term(entries: object, leader: ServerId) -> tuple[Entry, ...]:
    if type(entries) is not list:
        raise RecordError("append_entries_rpc entries", entries)
    try:
        return tuple([entry_from_term(e) for e in entries])
    except UnsupportedRaVersion as exc:
        raise exc.sent_in("append_entries_rpc", leader, ENTRIES_REFUSED) from None


def rpc_from_term(term: object) -> PeerRpc:
    """The inverse of :func:`rpc_to_term`.

    Raises:
        UnsupportedRaVersion: a record or field only Ra main sends (``info_rpc``, ``info_reply``,
            the ``election_timeout`` transfer cast, a pre-vote protocol version above 1, snapshot
            phases ``{0, init}``/``{0, pre}``, main cluster maps in entries or snapshot meta).
        RecordError: anything else that is not one of Ra 2.2.0's peer records.
    """
    if term == TRY_BECOME_LEADER:
        return TryBecomeLeader()
    if term == ELECTION_TIMEOUT:
        # main's leader casts it to the transfer target (ra-internals §10); 2.2.0 sends
        # try_become_leader. (A 2.2.0 server would take it as its own election timeout.)
        raise UnsupportedRaVersion(
            "election_timeout",
            "election_timeout cast (Ra main leadership transfer)",
            term,
            outcome="ignored (pyra takes transfers as try_become_leader)",
        )
    if type(term) is not tuple or not term or type(term[0]) is not Atom:
        raise RecordError("peer record", term)
    tag = term[0]
    if tag == INFO_RPC:
        # main >= 2.16: {info_rpc, From, Term, Keys}, cast by a new leader and on every tick while
        # a peer's machine version is unknown (ra_server:info_rpc_effects).
        keys = erlang_text(term[3]) if len(term) > 3 else "?"
        raise UnsupportedRaVersion(
            "info_rpc",
            f"info_rpc for {keys} (Ra main machine version discovery)",
            term,
            sender=_sender_in(term, 1),
            outcome="not answered (the leader keeps the effective machine version)",
        )
    if tag == INFO_REPLY:
        raise UnsupportedRaVersion(
            "info_reply", "info_reply (Ra main)", term, sender=_sender_in(term, 1), outcome="ignored"
        )
    if tag == APPEND_ENTRIES_RPC:
        t = _tuple(term, tag, 7, "append_entries_rpc")
        leader = server_id_from_term(t[2])
        return AppendEntriesRpc(
            term=_int(t[1], "term"),
            leader_id=leader,
            leader_commit=_int(t[3], "leader_commit"),
            prev_log_index=_int(t[4], "prev_log_index"),
            prev_log_term=_int(t[5], "prev_log_term"),
            entries=_entries_from_term(t[6], leader),
        )
    if tag == APPEND_ENTRIES_REPLY:
        t = _tuple(term, tag, 6, "append_entries_reply")
        return AppendEntriesReply(
            term=_int(t[1], "term"),
            success=_bool(t[2], "success"),
            next_index=_int(t[3], "next_index"),
            last_index=_int(t[4], "last_index"),
            last_term=_int(t[5], "last_term"),
        )
    if tag == REQUEST_VOTE_RPC:
        t = _tuple(term, tag, 5, "request_vote_rpc")
        return RequestVoteRpc(
            term=_int(t[1], "term"),
            candidate_id=server_id_from_term(t[2]),
            last_log_index=_int(t[3], "last_log_index"),
            last_log_term=_int(t[4], "last_log_term"),
        )
    if tag == REQUEST_VOTE_RESULT:
        t = _tuple(term, tag, 3, "request_vote_result")
        return RequestVoteResult(term=_int(t[1], "term"), vote_granted=_bool(t[2], "vote_granted"))
    if tag == PRE_VOTE_RPC:
        t = _tuple(term, tag, 8, "pre_vote_rpc")
        version = _int(t[1], "version")
        if version > RA_PROTO_VERSION:
            # Ra 2.2.0 answers false (after adopting the term); pyra refuses the call at the edge so
            # that a protocol it does not know never reaches the core (docs/ra-versions.md).
            raise UnsupportedRaVersion(
                "pre_vote_version",
                f"pre_vote_rpc protocol version {version}",
                term,
                sender=_sender_in(t, 5),
                outcome="vote refused (not answered)",
            )
        return PreVoteRpc(
            version=version,
            machine_version=_int(t[2], "machine_version"),
            term=_int(t[3], "term"),
            token=t[4],
            candidate_id=server_id_from_term(t[5]),
            last_log_index=_int(t[6], "last_log_index"),
            last_log_term=_int(t[7], "last_log_term"),
        )
    if tag == PRE_VOTE_RESULT:
        t = _tuple(term, tag, 4, "pre_vote_result")
        return PreVoteResult(term=_int(t[1], "term"), token=t[2], vote_granted=_bool(t[3], "vote_granted"))
    if tag == HEARTBEAT_RPC:
        t = _tuple(term, tag, 4, "heartbeat_rpc")
        return HeartbeatRpc(
            query_index=_int(t[1], "query_index"),
            term=_int(t[2], "term"),
            leader_id=server_id_from_term(t[3]),
        )
    if tag == HEARTBEAT_REPLY:
        t = _tuple(term, tag, 3, "heartbeat_reply")
        return HeartbeatReply(query_index=_int(t[1], "query_index"), term=_int(t[2], "term"))
    if tag == INSTALL_SNAPSHOT_RPC:
        t = _tuple(term, tag, 6, "install_snapshot_rpc")
        leader = server_id_from_term(t[2])
        try:
            # The phase first: main's {0, init} carries a main meta too, the phase says more.
            chunk_state = _chunk_state_from_term(t[4])
            meta = snapshot_meta_from_term(t[3])
        except UnsupportedRaVersion as exc:
            outcome = "snapshot refused (chunk not answered)"
            raise exc.carried_by("install_snapshot_rpc", leader, outcome) from None
        data = t[5]
        if type(data) is not bytes:
            raise RecordError("install_snapshot_rpc data", data)
        return InstallSnapshotRpc(
            term=_int(t[1], "term"),
            leader_id=leader,
            meta=meta,
            chunk_state=chunk_state,
            data=data,
        )
    if tag == INSTALL_SNAPSHOT_RESULT:
        t = _tuple(term, tag, 4, "install_snapshot_result")
        return InstallSnapshotResult(
            term=_int(t[1], "term"), last_index=_int(t[2], "last_index"), last_term=_int(t[3], "last_term")
        )
    raise RecordError("peer record", term)
