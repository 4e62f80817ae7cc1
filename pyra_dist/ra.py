"""The Ra API for Python: Ra 2.2.0's verbs (``src/ra.erl``) as async functions, plus a blocking facade.

Owns: the client side of Ra's wire protocol as Python calls (ra-internals §4, §5): building the core's
request events, the redirect loop of ``ra_server_proc:statem_call`` (§4.3), trying a list of servers in
order, mapping Ra's answers to Pythonic results (``reply, leader = await process_command(...)``) and its
error answers to the exceptions of ``pyra_dist.server.errors``; ``EventQueue`` for ``ra_event``
notifications; ``SyncRa``, the same verbs for code without an event loop.

Must not: reach into a server's state (everything goes through the system's transport, so the same
calls work for servers on other nodes once a distribution transport routes them) or hold globals:
every function takes the ``System`` it is called from, as Ra's functions run on some node.

Calling convention: ``system`` is the caller's system (Ra: the local node); ``server_id`` may name a
server on any node the system reaches. Timeouts are in seconds (Ra: ms, default 5000).
"""

# Ra's client API takes an explicit per-call timeout (Ra: Timeout argument, default 5000 ms).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import Future as ConcurrentFuture
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from pyra_dist.core.effects import (
    AtomReply,
    ErrorReply,
    LocalQueryReply,
    OkReply,
    Pong,
    Redirect,
    WrapReply,
)
from pyra_dist.core.events import (
    CommandRequest,
    DeleteClusterRequest,
    Event,
    JoinRequest,
    LeaveRequest,
    PingRequest,
    Priority,
    QueryKind,
    QueryRequest,
    StateQuery,
    StateQueryRequest,
    TransferLeadershipRequest,
    TriggerElection,
)
from pyra_dist.core.machine import Machine
from pyra_dist.log.config import SystemConfig
from pyra_dist.server.errors import (
    AlreadyMember,
    AlreadyStarted,
    ClusterChangeNotPermitted,
    ClusterNotFormed,
    ErrorReplyError,
    InvalidUid,
    NameNotRegistered,
    NodeDown,
    NoMoreServersToTry,
    NoProc,
    NotMember,
    NotNew,
    QueryFailed,
    RaError,
    RaTimeout,
    SystemNotStarted,
    UnknownMember,
    error_for_reason,
)
from pyra_dist.server.system import ServerConfig, System
from pyra_dist.server.transport import LocalNetwork, LocalPid, NodeOps, RaEvent
from pyra_dist.types import (
    AFTER_LOG_APPEND,
    AWAIT_CONSENSUS,
    NO_REPLY,
    From,
    NotifyReply,
    ReplyMode,
    Role,
    ServerId,
)

DEFAULT_TIMEOUT = 5.0
"""Ra's default call timeout (5000 ms)."""

Servers = ServerId | Sequence[ServerId]
"""One server id, or a list tried in order (Ra accepts both for leader calls)."""


@dataclass(frozen=True, slots=True)
class PythonQuery:
    """A Python callable query as the API sends it: ``fn`` runs on the state wherever the state is.

    On a server of the caller's interpreter the core calls it on the machine state, as any query.
    A callable cannot travel to another node, so for a server reached over Erlang distribution
    (an Erlang Ra server or a Python server on another node) the edge sends Ra's identity query
    ``{lists, append, [[]]}`` (``lists:append([], State)`` is ``State``), decodes the state term the
    server answers with and runs ``fn`` on it here. Cost: **the whole machine state crosses the
    wire on every such query** (use an ``{M, F, A}`` query to run on the server instead), and
    ``fn`` sees the state as a decoded term (Erlang maps as ``Map``, binaries as ``bytes``).
    """

    fn: Callable[[Any], object]

    def __call__(self, state: object) -> object:
        return self.fn(state)


def _as_query(query: Callable[[Any], object]) -> Callable[[object], object]:
    """Wrap a Python callable in ``PythonQuery``; Erlang query terms (``{M, F, A}``) pass as they are."""
    if callable(query) and not isinstance(query, PythonQuery):
        return PythonQuery(query)
    return query


class LocalQueryResult(NamedTuple):
    """``{ok, {{Index, Term}, Result}, Leader}`` of ``local_query``/``leader_query``."""

    index_term: tuple[int, int]
    result: object
    leader: ServerId | str


# ---------------------------------------------------------------------------------------------
# Systems
# ---------------------------------------------------------------------------------------------


async def start_system(
    name: str = "default",
    data_dir: Path | str | None = None,
    node: str = "pyra@localhost",
    *,
    network: LocalNetwork | None = None,
    config: SystemConfig | None = None,
) -> System:
    """Open a Ra system (Ra's ``ra_system:start`` / ``ra:start_in``); enter it with ``async with``.

    Args:
        name: the system name.
        data_dir: base data directory (the system lives in ``data_dir/node``; default: cwd).
        node: this node's name.
        network: an in-process ``LocalNetwork`` shared with other systems ("nodes").
        config: a full storage config (overrides ``name``/``data_dir``).

    Returns:
        The opened system.
    """
    return await System.start(name, data_dir, node, network=network, config=config)


async def start(data_dir: Path | str | None = None, node: str = "pyra@localhost") -> System:
    """Ra's ``ra:start()``: open the ``default`` system (``data_dir/node``); enter it with ``async with``.

    Args:
        data_dir: base data directory (default: the current directory, as Ra).
        node: this node's name.

    Returns:
        The opened default system.
    """
    return await System.start("default", data_dir, node)


def _node_system(system: System, node: str) -> NodeOps:
    """Server lifecycle on ``node`` (Ra: ``rpc:call(Node, ra_server_sup_sup, ...)``), via the transport."""
    if node == system.node:
        return system
    ops = system.transport.node_ops(node)
    if ops is None:
        raise NodeDown(f"node {node} is not connected")
    return ops


# ---------------------------------------------------------------------------------------------
# Cluster and server lifecycle (ra-internals §5.1)
# ---------------------------------------------------------------------------------------------


async def start_server(
    system: System, /,
    cluster_name: str,
    server_id: ServerId,
    machine: Machine,
    server_ids: Iterable[ServerId],
    *,
    uid: str | None = None,
    **options: Any,
) -> None:
    """Start one brand-new server (``ra:start_server/5``) on its node.

    Args:
        system: the calling system.
        cluster_name: the cluster's name (informational, uid prefix).
        server_id: the server to start.
        machine: the state machine.
        server_ids: the initial members (the server waits for a leader or ``trigger_election``).
        uid: the server's uid (default ``new_uid(cluster_name)``).
        options: other ``ServerConfig`` fields (``broadcast_time_ms``, ``machine_args``, ...).

    Raises:
        NodeDown: the server's node is not reachable.
        AlreadyStarted, NotNew, InvalidUid, SystemNotStarted: as Ra.
    """
    config = ServerConfig(
        server_id=server_id,
        uid=uid if uid is not None else system.new_uid(cluster_name),
        cluster_name=cluster_name,
        initial_members=tuple(server_ids),
        machine=machine,
        **options,
    )
    await _node_system(system, server_id.node).start_server(config)


async def start_cluster(
    system: System, /,
    cluster_name: str,
    machine: Machine,
    server_ids: Sequence[ServerId],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    **options: Any,
) -> tuple[list[ServerId], list[ServerId]]:
    """Start a cluster (``ra:start_cluster/4``): start every server, trigger an election, wait for a leader.

    Args:
        system: the calling system.
        cluster_name: the cluster's name.
        machine: the state machine of every member.
        server_ids: the members.
        timeout: per-step timeout; waiting for the leader gets ``len(server_ids) * timeout``.
        options: other ``ServerConfig`` fields.

    Returns:
        ``(started, not_started)``.

    Raises:
        ClusterNotFormed: no server started, or no leader was elected (started servers are deleted).
    """
    ids = list(server_ids)
    results = await asyncio.gather(
        *(start_server(system, cluster_name, sid, machine, ids, **options) for sid in ids),
        return_exceptions=True,
    )
    started = [sid for sid, res in zip(ids, results, strict=True) if res is None]
    not_started = [sid for sid, res in zip(ids, results, strict=True) if res is not None]
    for res in results:
        if isinstance(res, BaseException) and not isinstance(res, Exception):
            raise res
    if not started:
        raise ClusterNotFormed(f"no server of {cluster_name} started: {results}")
    # Local servers first, as Ra does; the first that accepts triggers the election.
    for sid in sorted(started, key=lambda s: s.node != system.node):
        try:
            await trigger_election(system, sid, timeout=timeout)
            break
        except RaError:
            continue
    try:
        await members(system, started[0], timeout=len(ids) * timeout)
    except RaError as exc:
        for sid in started:
            try:
                await force_delete_server(system, sid)
            except RaError:
                pass
        raise ClusterNotFormed(f"{cluster_name}: no leader elected ({exc})") from exc
    return started, not_started


async def restart_server(
    system: System, /, server_id: ServerId, *, machine: Machine | None = None, **mutable: Any
) -> None:
    """Restart a stopped server from its data (``ra:restart_server/2,3``).

    Raises:
        NameNotRegistered, AlreadyStarted, NodeDown: as Ra.
    """
    await _node_system(system, server_id.node).restart_server(server_id.name, machine, **mutable)


async def stop_server(system: System, /, server_id: ServerId) -> None:
    """Stop a server, keeping its data (``ra:stop_server/2``; fine if it is not running).

    Raises:
        NodeDown: the server's node is not reachable.
    """
    await _node_system(system, server_id.node).stop_server(server_id.name)


async def force_delete_server(system: System, /, server_id: ServerId) -> None:
    """Stop a server and delete its data (``ra:force_delete_server/2``).

    Raises:
        NodeDown: the server's node is not reachable.
    """
    await _node_system(system, server_id.node).force_delete_server(server_id.name)


async def delete_cluster(
    system: System, /, server_ids: Sequence[ServerId], timeout: float = DEFAULT_TIMEOUT
) -> ServerId:
    """Delete a cluster through a replicated command (``ra:delete_cluster/1,2``).

    Returns:
        The leader that committed the delete.

    Raises:
        NoMoreServersToTry: no server of the list answered.
    """
    _, leader = await _leader_call(system, list(server_ids), lambda f: DeleteClusterRequest(from_=f), timeout)
    return leader


# ---------------------------------------------------------------------------------------------
# Commands and queries (ra-internals §5.2)
# ---------------------------------------------------------------------------------------------


async def process_command(
    system: System, /, server_id: Servers, command: object, timeout: float = DEFAULT_TIMEOUT
) -> tuple[object, ServerId]:
    """Replicate ``command`` and return once the leader applied it (``ra:process_command/2,3``).

    Returns:
        ``(reply, leader)``: the machine's reply and the leader that answered.

    Raises:
        RaTimeout: no answer within ``timeout`` (e.g. no quorum).
        NoProc, NodeDown: the server is not running / its node is down.
    """
    now = system.now_ms()

    def request(f: From) -> Event:
        return CommandRequest(
            data=command, reply_mode=AWAIT_CONSENSUS, from_=f, priority="normal", system_time=now
        )

    return await _leader_call(system, server_id, request, timeout)


async def pipeline_command(
    system: System, /,
    server_id: ServerId,
    command: object,
    correlation: object | None = None,
    priority: Priority = "low",
    *,
    notify: LocalPid | None = None,
) -> None:
    """Cast ``command`` without waiting (``ra:pipeline_command/2,3,4``).

    With a ``correlation`` the leader sends ``applied`` events (``RaEvent(kind="applied", body=((corr,
    reply), ...))``) to ``notify`` (an ``EventQueue.pid``); a follower that knows the leader answers
    ``rejected`` (``body=(leader, corr)``) and the caller resends there. Without one it is fire and
    forget (followers forward it to the leader).

    Raises:
        ValueError: a correlation was given without ``notify``.
    """
    mode: ReplyMode
    if correlation is None:
        mode = NO_REPLY
    else:
        if notify is None:
            raise ValueError("pipeline_command with a correlation needs notify= (an EventQueue.pid)")
        mode = NotifyReply(correlation=correlation, pid=notify)
    now = system.now_ms()
    request = CommandRequest(data=command, reply_mode=mode, from_=None, priority=priority, system_time=now)
    system.transport.cast(server_id, request)


async def local_query(
    system: System, /, server_id: ServerId, query: Callable[[Any], object], timeout: float = DEFAULT_TIMEOUT
) -> LocalQueryResult:
    """Run ``query(state)`` on ``server_id`` itself, maybe stale (``ra:local_query/2,3``).

    ``query`` is a Python callable or an Erlang query term (``{M, F, A}`` tuple, ``ErlangQuery``).
    For a server on another node a Python callable runs *here* on the server's whole state, which
    crosses the wire as a term (see ``PythonQuery``); an ``{M, F, A}`` runs on the server.

    Returns:
        ``LocalQueryResult((last_applied, term), result, leader)``; ``leader`` is an id or ``"not_known"``.

    Raises:
        QueryFailed: the query raised.
    """
    return await _query(system, server_id, "local", query, timeout)


async def leader_query(
    system: System, /, server_id: Servers, query: Callable[[Any], object], timeout: float = DEFAULT_TIMEOUT
) -> LocalQueryResult:
    """Run ``query(state)`` on the leader, no consensus round (``ra:leader_query/2,3``).

    A Python callable against a server on another node gets the leader's whole state sent back
    and runs here (see ``PythonQuery`` and ``local_query``).

    Returns:
        ``LocalQueryResult((last_applied, term), result, leader)``.

    Raises:
        ErrorReplyError: the query raised (``reason`` is the exception).
    """
    return await _query(system, server_id, "leader", query, timeout)


async def consistent_query(
    system: System, /, server_id: Servers, query: Callable[[Any], object], timeout: float = DEFAULT_TIMEOUT
) -> tuple[object, ServerId]:
    """Linearizable read: the leader confirms leadership with a quorum first (``ra:consistent_query/2,3``).

    A Python callable against a server on another node runs here on the leader's whole state,
    which crosses the wire (see ``PythonQuery``); the read is still linearizable (the state is the
    one the leader confirmed).

    Returns:
        ``(result, leader)``.

    Raises:
        ErrorReplyError: the query raised (``reason`` is the exception).
    """
    wrapped = _as_query(query)
    reply, leader = await _leader_call(
        system, server_id, lambda f: QueryRequest(kind="consistent", query=wrapped, from_=f), timeout
    )
    if isinstance(reply, OkReply):
        return reply.value, leader
    raise RaError(f"unexpected reply {reply!r}", server_id=leader)


async def members(
    system: System, /, server_id: Servers, timeout: float = DEFAULT_TIMEOUT, *, local: bool = False
) -> tuple[list[ServerId], ServerId]:
    """The cluster's members as the leader (or, with ``local=True``, ``server_id``) sees them.

    Returns:
        ``(members, leader_or_server)``.

    Raises:
        RaTimeout: no leader within ``timeout`` (Ra answers ``{timeout, S}`` before an election).
    """
    value, leader = await _state_query(system, server_id, "members", timeout, local)
    assert isinstance(value, Iterable)
    return sorted(value), leader


async def initial_members(
    system: System, /, server_id: Servers, timeout: float = DEFAULT_TIMEOUT
) -> tuple[object, ServerId]:
    """``ra:initial_members/1,2``: the initial members (or ``"error"``) and the leader."""
    return await _state_query(system, server_id, "initial_members", timeout, False)


async def add_member(
    system: System, /, server_id: Servers, new_member: ServerId, timeout: float = DEFAULT_TIMEOUT
) -> tuple[tuple[int, int], ServerId]:
    """Append a membership change adding ``new_member`` (``ra:add_member/2,3``); start it separately.

    Returns:
        ``((index, term), leader)`` of the appended change.

    Raises:
        AlreadyMember, ClusterChangeNotPermitted: as Ra.
    """
    reply, leader = await _leader_call(
        system,
        server_id,
        lambda f: JoinRequest(server_id=new_member, reply_mode=AFTER_LOG_APPEND, from_=f),
        timeout,
    )
    return _index_term(reply), leader


async def remove_member(
    system: System, /, server_id: Servers, member: ServerId, timeout: float = DEFAULT_TIMEOUT
) -> tuple[tuple[int, int], ServerId]:
    """Append a membership change removing ``member`` (``ra:remove_member/2,3``).

    Raises:
        NotMember, ClusterChangeNotPermitted: as Ra.
    """
    reply, leader = await _leader_call(
        system,
        server_id,
        lambda f: LeaveRequest(server_id=member, reply_mode=AFTER_LOG_APPEND, from_=f),
        timeout,
    )
    return _index_term(reply), leader


async def leave_and_terminate(
    system: System, /, server_id: Servers, member: ServerId, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Remove ``member`` with consensus, then stop it (``ra:leave_and_terminate/3,4``)."""
    await _leader_call(
        system,
        server_id,
        lambda f: LeaveRequest(server_id=member, reply_mode=AWAIT_CONSENSUS, from_=f),
        timeout,
    )
    await stop_server(system, member)


async def transfer_leadership(
    system: System, /, server_id: ServerId, target: ServerId, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """Ask the leader to hand leadership to ``target`` (``ra:transfer_leadership/2``).

    Returns:
        ``"ok"`` (transfer started) or ``"already_leader"``.

    Raises:
        UnknownMember: ``target`` is not a member.
    """
    reply, _ = await _leader_call(
        system, server_id, lambda f: TransferLeadershipRequest(target=target, from_=f), timeout, raw=True
    )
    if isinstance(reply, AtomReply):
        return reply.atom
    raise RaError(f"unexpected reply {reply!r}", server_id=server_id)


async def trigger_election(system: System, /, server_id: ServerId, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Make ``server_id`` start an election (pre-vote) now (``ra:trigger_election/1,2``)."""
    await _call(system, server_id, lambda f: TriggerElection(from_=f), timeout)


async def ping(system: System, /, server_id: ServerId, timeout: float = DEFAULT_TIMEOUT) -> Role:
    """``ra:ping/2``: the server's raft state."""
    reply = await _call(system, server_id, lambda f: PingRequest(from_=f), timeout)
    if isinstance(reply, Pong):
        return reply.role
    raise RaError(f"unexpected reply {reply!r}", server_id=server_id)


def overview(system: System) -> dict[str, object]:
    """``ra:overview/1``: this node's servers (role, term, indexes), registered names, leaderboard."""
    return system.overview()


# ---------------------------------------------------------------------------------------------
# ra_event subscriptions
# ---------------------------------------------------------------------------------------------


class EventQueue:
    """A Python process that receives ``ra_event`` notifications (``pipeline_command`` replies).

    Use as ``async with EventQueue(system) as events:`` then pass ``notify=events.pid`` and
    ``await events.get()`` (or ``async for event in events``).
    """

    def __init__(self, system: System, maxsize: int = 0) -> None:
        self._system = system
        self._queue: asyncio.Queue[RaEvent] = asyncio.Queue(maxsize)
        self.pid: LocalPid = system.transport.register_sink(self._queue.put_nowait)

    async def get(self) -> RaEvent:
        """The next event."""
        return await self._queue.get()

    def get_nowait(self) -> RaEvent:
        """The next event if one is queued (raises ``asyncio.QueueEmpty`` otherwise)."""
        return self._queue.get_nowait()

    def close(self) -> None:
        """Stop receiving events."""
        self._system.transport.unregister_sink(self.pid)

    async def __aenter__(self) -> EventQueue:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __aiter__(self) -> EventQueue:
        return self

    async def __anext__(self) -> RaEvent:
        return await self._queue.get()


def subscribe(system: System, callback: Callable[[RaEvent], None]) -> LocalPid:
    """Register ``callback`` as a process receiving ``ra_event``s; returns its pid for ``notify=``."""
    return system.transport.register_sink(callback)


# ---------------------------------------------------------------------------------------------
# The client loop (ra-internals §4.3)
# ---------------------------------------------------------------------------------------------


async def _call(system: System, server_id: ServerId, make: Callable[[From], Event], timeout: float) -> object:
    """One gen call with Ra's error mapping (timeout -> RaTimeout; noproc/nodedown as raised)."""
    try:
        return await system.transport.call(server_id, make, timeout)
    except TimeoutError:
        raise RaTimeout(f"{server_id} did not answer within {timeout} s", server_id=server_id) from None


async def _leader_call(
    system: System, servers: Servers, make: Callable[[From], Event], timeout: float, *, raw: bool = False
) -> tuple[object, ServerId]:
    """``statem_call`` with redirects; a list of servers is tried in order (``NoMoreServersToTry``)."""
    if isinstance(servers, ServerId):
        return await _leader_call_one(system, servers, make, timeout, raw)
    failures: list[RaError] = []
    for server_id in servers:
        try:
            return await _leader_call_one(system, server_id, make, timeout, raw)
        except (RaTimeout, NoProc, NodeDown) as exc:
            failures.append(exc)
    raise NoMoreServersToTry(failures)


async def _leader_call_one(
    system: System, server_id: ServerId, make: Callable[[From], Event], timeout: float, raw: bool
) -> tuple[object, ServerId]:
    target = server_id
    for _ in range(64):  # Ra loops unbounded; a redirect cycle this long means no stable leader.
        reply = await _call(system, target, make, timeout)
        match reply:
            case Redirect(leader=leader):
                target = leader
            case WrapReply(reply=value):
                return value, target
            case ErrorReply(reason=reason):
                raise error_for_reason(reason, target)
            case LocalQueryReply() | OkReply():
                return reply, target
            case _:
                if raw:
                    return reply, target
                raise RaError(f"unexpected reply {reply!r}", server_id=target)
    raise RaTimeout(f"{server_id}: too many redirects", server_id=server_id)


async def _query(
    system: System, servers: Servers, kind: QueryKind, query: Callable[[Any], object], timeout: float
) -> LocalQueryResult:
    wrapped = _as_query(query)

    def make(f: From) -> Event:
        return QueryRequest(kind=kind, query=wrapped, from_=f)

    if kind == "local":
        assert isinstance(servers, ServerId)
        reply: object = await _call(system, servers, make, timeout)
        if isinstance(reply, ErrorReply):
            raise QueryFailed(reply.reason, server_id=servers)
    else:
        reply, _ = await _leader_call(system, servers, make, timeout)
    if isinstance(reply, LocalQueryReply):
        return LocalQueryResult((reply.index, reply.term), reply.result, reply.leader)
    raise RaError(f"unexpected reply {reply!r}")


async def _state_query(
    system: System, servers: Servers, what: StateQuery, timeout: float, local: bool
) -> tuple[object, ServerId]:
    def make(f: From) -> Event:
        return StateQueryRequest(what=what, from_=f, local=local)

    if local:
        assert isinstance(servers, ServerId)
        reply = await _call(system, servers, make, timeout)
        answered = servers
    else:
        reply, answered = await _leader_call(system, servers, make, timeout)
    if isinstance(reply, OkReply):
        leader = reply.leader if isinstance(reply.leader, ServerId) else answered
        return reply.value, leader
    raise RaError(f"unexpected reply {reply!r}")


def _index_term(reply: object) -> tuple[int, int]:
    if isinstance(reply, tuple) and len(reply) == 2 and all(isinstance(x, int) for x in reply):
        return reply[0], reply[1]
    raise RaError(f"expected (index, term), got {reply!r}")


# ---------------------------------------------------------------------------------------------
# Blocking facade
# ---------------------------------------------------------------------------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _blocking(
    fn: Callable[Concatenate[System, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[SyncRa, _P], _R]:
    def call(self: SyncRa, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return self.run(fn(self.system, *args, **kwargs))

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


class SyncRa:
    """The same verbs without ``await``: a system running on its own event-loop thread.

    ``with SyncRa.start(data_dir=d, node="py1@localhost") as r: reply, leader = r.process_command(sid, 5)``
    """

    def __init__(self, system: System, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self.system = system
        self._loop = loop
        self._thread = thread

    @classmethod
    def start(
        cls,
        name: str = "default",
        data_dir: Path | str | None = None,
        node: str = "pyra@localhost",
        *,
        config: SystemConfig | None = None,
    ) -> SyncRa:
        """Start a loop thread, open and enter a system on it, and return the facade."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"pyra-loop-{node}", daemon=True)
        thread.start()

        async def open_system() -> System:
            system = await System.start(name, data_dir, node, config=config)
            await system.__aenter__()
            return system

        system = asyncio.run_coroutine_threadsafe(open_system(), loop).result()
        return cls(system, loop, thread)

    def run(self, coro: Coroutine[Any, Any, _R]) -> _R:
        """Run ``coro`` on the system's loop and return its result."""
        future: ConcurrentFuture[_R] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def close(self) -> None:
        """Stop every server, close the system and the loop thread."""
        if self._loop.is_closed():
            return
        self.run(self.system.__aexit__(None, None, None))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> SyncRa:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def overview(self) -> dict[str, object]:
        """See ``overview``."""
        return self.run(_overview_async(self.system))

    start_cluster = _blocking(start_cluster)
    start_server = _blocking(start_server)
    restart_server = _blocking(restart_server)
    stop_server = _blocking(stop_server)
    force_delete_server = _blocking(force_delete_server)
    delete_cluster = _blocking(delete_cluster)
    process_command = _blocking(process_command)
    pipeline_command = _blocking(pipeline_command)
    local_query = _blocking(local_query)
    leader_query = _blocking(leader_query)
    consistent_query = _blocking(consistent_query)
    members = _blocking(members)
    add_member = _blocking(add_member)
    remove_member = _blocking(remove_member)
    leave_and_terminate = _blocking(leave_and_terminate)
    transfer_leadership = _blocking(transfer_leadership)
    trigger_election = _blocking(trigger_election)


async def _overview_async(system: System) -> dict[str, object]:
    return system.overview()


__all__ = [
    "DEFAULT_TIMEOUT",
    "AlreadyMember",
    "AlreadyStarted",
    "ClusterChangeNotPermitted",
    "ClusterNotFormed",
    "ErrorReplyError",
    "EventQueue",
    "InvalidUid",
    "LocalNetwork",
    "LocalPid",
    "LocalQueryResult",
    "NameNotRegistered",
    "NoMoreServersToTry",
    "NoProc",
    "NodeDown",
    "NotMember",
    "NotNew",
    "PythonQuery",
    "QueryFailed",
    "RaError",
    "RaEvent",
    "RaTimeout",
    "ServerConfig",
    "ServerId",
    "SyncRa",
    "System",
    "SystemNotStarted",
    "UnknownMember",
    "add_member",
    "consistent_query",
    "delete_cluster",
    "force_delete_server",
    "initial_members",
    "leader_query",
    "leave_and_terminate",
    "local_query",
    "members",
    "overview",
    "ping",
    "pipeline_command",
    "process_command",
    "remove_member",
    "restart_server",
    "start",
    "start_cluster",
    "start_server",
    "start_system",
    "stop_server",
    "subscribe",
    "transfer_leadership",
    "trigger_election",
]
