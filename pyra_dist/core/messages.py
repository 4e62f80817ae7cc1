"""Server-to-server records of Ra 2.2.0 as typed values.

Owns: one frozen dataclass per record of ra-internals §2, with fields in Ra's tuple order (the
record tag is implied by the class), plus the 2.2.0 ``try_become_leader`` signal. Must not: encode
to bytes or know about Erlang distribution; the edge maps ``AppendEntriesRpc(...)`` to
``{append_entries_rpc, Term, LeaderId, LeaderCommit, PrevLogIndex, PrevLogTerm, Entries}`` etc.

Envelopes (ra-internals §1.3, the edge's job): AER/heartbeat are raw casts and their replies are
cast as ``{FollowerId, Reply}``; pre-vote, request-vote and install-snapshot are gen calls whose
results are gen replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from pyra_dist.types import Entry, Index, ServerId, SnapshotMeta, Term

RA_PROTO_VERSION = 1
"""``?RA_PROTO_VERSION`` (src/ra.hrl); travels only in ``pre_vote_rpc.version``."""

AER_CHUNK_SIZE = 128
"""Max entries per ``append_entries_rpc`` in 2.2.0 (``?AER_CHUNK_SIZE``)."""


@dataclass(frozen=True, slots=True)
class AppendEntriesRpc:
    """``{append_entries_rpc, Term, LeaderId, LeaderCommit, PrevLogIndex, PrevLogTerm, Entries}``."""

    term: Term
    leader_id: ServerId
    leader_commit: Index
    prev_log_index: Index
    prev_log_term: Term
    entries: tuple[Entry, ...] = ()


@dataclass(frozen=True, slots=True)
class AppendEntriesReply:
    """``{append_entries_reply, Term, Success, NextIndex, LastIndex, LastTerm}``.

    ``next_index`` = follower's last index + 1 (incl. unwritten entries); ``last_index``/
    ``last_term`` = last *written* (fsynced) entry (ra-internals §2.1).
    """

    term: Term
    success: bool
    next_index: Index
    last_index: Index
    last_term: Term


@dataclass(frozen=True, slots=True)
class RequestVoteRpc:
    """``{request_vote_rpc, Term, CandidateId, LastLogIndex, LastLogTerm}``."""

    term: Term
    candidate_id: ServerId
    last_log_index: Index
    last_log_term: Term


@dataclass(frozen=True, slots=True)
class RequestVoteResult:
    """``{request_vote_result, Term, VoteGranted}``."""

    term: Term
    vote_granted: bool


@dataclass(frozen=True, slots=True)
class PreVoteRpc:
    """``{pre_vote_rpc, Version, MachineVersion, Term, Token, CandidateId, LastLogIndex, LastLogTerm}``.

    ``term`` is the candidate's current (not incremented) term; ``token`` is fresh per round
    (an Erlang reference on the wire; the core uses an opaque value it generates).
    """

    version: int
    machine_version: int
    term: Term
    token: object
    candidate_id: ServerId
    last_log_index: Index
    last_log_term: Term


@dataclass(frozen=True, slots=True)
class PreVoteResult:
    """``{pre_vote_result, Term, Token, VoteGranted}``; the token echoes the rpc's."""

    term: Term
    token: object
    vote_granted: bool


@dataclass(frozen=True, slots=True)
class HeartbeatRpc:
    """``{heartbeat_rpc, QueryIndex, Term, LeaderId}`` (consistent queries, ra-internals §2.4)."""

    query_index: int
    term: Term
    leader_id: ServerId


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """``{heartbeat_reply, QueryIndex, Term}``."""

    query_index: int
    term: Term


ChunkFlag: TypeAlias = Literal["next", "last"]


@dataclass(frozen=True, slots=True)
class ChunkState:
    """``{ChunkNum, next | last}``; 2.2.0 numbers chunks from 1."""

    number: int
    flag: ChunkFlag


@dataclass(frozen=True, slots=True)
class InstallSnapshotRpc:
    """``{install_snapshot_rpc, Term, LeaderId, Meta, ChunkState, Data}``.

    Concatenating every chunk's ``data`` gives the bytes produced by the core's
    ``SnapshotCodec.encode`` (for Ra interop: ``<<Crc:32, term_to_binary(State)>>``).
    """

    term: Term
    leader_id: ServerId
    meta: SnapshotMeta
    chunk_state: ChunkState
    data: bytes


@dataclass(frozen=True, slots=True)
class InstallSnapshotResult:
    """``{install_snapshot_result, Term, LastIndex, LastTerm}`` (receiver's term, snapshot's index/term)."""

    term: Term
    last_index: Index
    last_term: Term


@dataclass(frozen=True, slots=True)
class TryBecomeLeader:
    """Ra 2.2.0 leadership transfer signal ``try_become_leader`` (a gen cast to the target)."""


PeerRpc: TypeAlias = (
    AppendEntriesRpc
    | AppendEntriesReply
    | RequestVoteRpc
    | RequestVoteResult
    | PreVoteRpc
    | PreVoteResult
    | HeartbeatRpc
    | HeartbeatReply
    | InstallSnapshotRpc
    | InstallSnapshotResult
    | TryBecomeLeader
)
"""Everything one Ra server sends another (ra-internals §2: there are no other records)."""

__all__ = [
    "AER_CHUNK_SIZE",
    "RA_PROTO_VERSION",
    "AppendEntriesReply",
    "AppendEntriesRpc",
    "ChunkFlag",
    "ChunkState",
    "HeartbeatReply",
    "HeartbeatRpc",
    "InstallSnapshotResult",
    "InstallSnapshotRpc",
    "PeerRpc",
    "PreVoteResult",
    "PreVoteRpc",
    "RequestVoteResult",
    "RequestVoteRpc",
    "TryBecomeLeader",
]
