"""How a Python-only node stores log entries: pickle, with fast reducers for pyra's frozen dataclasses.

Owns: ``FastPickleEntryCodec``, the default ``EntryCodec`` of a ``System`` without Erlang peers.
Must not: be used for clusters with Erlang members (the distribution edge injects an ETF codec so
that entries are the external-term bytes Ra expects, ra-internals §3.1, §7.2).

Why not plain pickle of the dataclasses: frozen slotted dataclasses pickle through
``__getstate__``/``__setstate__``, which call ``dataclasses.fields()`` for every object (about 30 µs
per entry in a profile of the throughput bench). Commands are stored as plain tuples instead
(tag first), which the C pickler writes and reads without calling back into Python.
"""

from __future__ import annotations

import pickle
from typing import assert_never

from pyra_dist.server.transport import ClientCall, LocalCall, LocalPid
from pyra_dist.types import (
    AFTER_LOG_APPEND,
    AWAIT_CONSENSUS,
    NO_REPLY,
    AfterLogAppend,
    AwaitConsensus,
    ClusterChange,
    ClusterDelete,
    Command,
    Noop,
    NoReply,
    NotifyReply,
    PeerState,
    ReplyMode,
    ServerId,
    UsrCommand,
)

# Tags of the plain-tuple form (position 0). The tuple is pickled with the C pickler's fast paths.
_USR, _NOOP, _CHANGE, _DELETE = 0, 1, 2, 3
# Reply modes: a small int, or (3, correlation, pid) for notify.
_AWAIT, _AFTER_APPEND, _NO_REPLY, _NOTIFY = 0, 1, 2, 3
_MODES: dict[int, ReplyMode] = {_AWAIT: AWAIT_CONSENSUS, _AFTER_APPEND: AFTER_LOG_APPEND, _NO_REPLY: NO_REPLY}
_MODE_CODES: dict[type, int] = {AwaitConsensus: _AWAIT, AfterLogAppend: _AFTER_APPEND, NoReply: _NO_REPLY}
_dumps = pickle.dumps
_PROTOCOL = pickle.HIGHEST_PROTOCOL
# Opaque caller tokens of this package, tagged so they come back as the same dataclasses.
_CLIENT_CALL, _LOCAL_PID, _LOCAL_CALL = "$pyra_cc", "$pyra_pid", "$pyra_lc"


def _mode(mode: ReplyMode) -> object:
    match mode:
        case AwaitConsensus():
            return _AWAIT
        case AfterLogAppend():
            return _AFTER_APPEND
        case NoReply():
            return _NO_REPLY
        case NotifyReply(correlation=correlation, pid=pid):
            return (_NOTIFY, correlation, _opaque(pid))
        case _:
            assert_never(mode)


def _unmode(raw: object) -> ReplyMode:
    if isinstance(raw, int):
        return _MODES[raw]
    assert isinstance(raw, tuple)
    return NotifyReply(correlation=raw[1], pid=_unopaque(raw[2]))


def _opaque(value: object) -> object:
    if type(value) is ClientCall:
        return (_CLIENT_CALL, value.node, value.ref)
    if type(value) is LocalPid:
        return (_LOCAL_PID, value.node, value.number)
    if type(value) is LocalCall:
        return (_LOCAL_CALL, value.caller.name, value.caller.node)
    return value


def _unopaque(value: object) -> object:
    if type(value) is tuple and len(value) == 3:
        tag = value[0]
        if tag == _CLIENT_CALL:
            return ClientCall(value[1], value[2])
        if tag == _LOCAL_PID:
            return LocalPid(value[1], value[2])
        if tag == _LOCAL_CALL:
            return LocalCall(ServerId(value[1], value[2]))
    return value


class FastPickleEntryCodec:
    """``EntryCodec`` (``pyra_dist.log.core_view``) for Python-only clusters."""

    def encode(self, command: Command) -> bytes:
        """Return the stored bytes of ``command``."""
        raw: tuple[object, ...]
        if type(command) is UsrCommand:
            # The hot path (one call per appended user command per replica): no pattern matching.
            mode = command.reply_mode
            code: object
            if type(mode) is NotifyReply:
                code = (_NOTIFY, mode.correlation, _opaque(mode.pid))
            else:
                code = _MODE_CODES.get(type(mode))
            raw = (
                _USR,
                command.data,
                code if code is not None else _mode(mode),
                None if command.from_ is None else _opaque(command.from_),
                command.ts,
            )
            return _dumps(raw, _PROTOCOL)
        match command:
            case UsrCommand(data=data, reply_mode=mode, from_=from_, ts=ts):
                raw = (_USR, data, _mode(mode), _opaque(from_), ts)
            case Noop(machine_version=version, ts=ts):
                raw = (_NOOP, version, ts)
            case ClusterChange(cluster=cluster, reply_mode=mode, from_=from_, ts=ts):
                peers = [
                    (sid.name, sid.node, p.next_index, p.match_index, p.commit_index_sent, p.query_index,
                     p.status)
                    for sid, p in cluster.items()
                ]
                raw = (_CHANGE, peers, _mode(mode), _opaque(from_), ts)
            case ClusterDelete(reply_mode=mode, from_=from_, ts=ts):
                raw = (_DELETE, _mode(mode), _opaque(from_), ts)
            case _:
                assert_never(command)
        return _dumps(raw, _PROTOCOL)

    def decode(self, data: bytes) -> Command:
        """Return the command stored as ``data``.

        Raises:
            ValueError: ``data`` is not a command written by this codec.
        """
        raw = pickle.loads(data)
        match raw:
            case (0, payload, mode, from_, ts):
                return UsrCommand(payload, _unmode(mode), _unopaque(from_), ts)
            case (1, version, ts):
                return Noop(version, ts)
            case (2, peers, mode, from_, ts):
                cluster = {ServerId(p[0], p[1]): PeerState(p[2], p[3], p[4], p[5], p[6]) for p in peers}
                return ClusterChange(cluster, _unmode(mode), _unopaque(from_), ts)
            case (3, mode, from_, ts):
                return ClusterDelete(_unmode(mode), _unopaque(from_), ts)
            case _:
                raise ValueError(f"not a pyra log entry: {raw!r}")


class EncodedCommands:
    """The stored bytes of recently encoded commands, shared by the systems of one ``LocalNetwork``.

    In-process followers receive the leader's very ``Entry`` objects, so the bytes the leader stored
    can be reused instead of encoding each command once per replica. Keys are object identities; the
    command is kept alongside so that its id cannot be reused while cached. Loop thread only.
    """

    __slots__ = ("_items", "_limit")

    def __init__(self, limit: int = 16384) -> None:
        self._items: dict[int, tuple[Command, bytes]] = {}
        self._limit = limit

    def get(self, command: Command) -> bytes | None:
        """The bytes cached for this very object, if any."""
        item = self._items.get(id(command))
        return item[1] if item is not None and item[0] is command else None

    def put(self, command: Command, data: bytes) -> None:
        """Remember ``data`` as the encoding of ``command`` (evicting the oldest beyond the limit)."""
        items = self._items
        items[id(command)] = (command, data)
        if len(items) > self._limit:
            # Drop the older half at once: deleting the oldest key one put at a time leaves the dict's
            # entry table full of holes that every ``next(iter(items))`` scans again.
            self._items = dict(list(items.items())[len(items) // 2 :])


class SharedEncodingCodec:
    """An ``EntryCodec`` that reuses encodings from an ``EncodedCommands`` cache (see there)."""

    __slots__ = ("_cache", "_inner")

    def __init__(self, inner: FastPickleEntryCodec, cache: EncodedCommands) -> None:
        self._inner = inner
        self._cache = cache

    def encode(self, command: Command) -> bytes:
        """Return the cached bytes of this object, or encode and cache them."""
        item = self._cache._items.get(id(command))
        if item is not None and item[0] is command:
            return item[1]
        data = self._inner.encode(command)
        self._cache.put(command, data)
        return data

    def decode(self, data: bytes) -> Command:
        """See ``FastPickleEntryCodec.decode``."""
        return self._inner.decode(data)
