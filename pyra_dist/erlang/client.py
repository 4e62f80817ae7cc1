"""Ra 2.2.0's client wire protocol on a Python server: requests in, replies and ``ra_event``s out.

Owns: the mapping of what ``ra:*`` sends to a server (ra-internals §4 table: ``{leader_call, ...}``,
``{local_call, ...}``, ``{local_query, Q}``, ``ping``, ``trigger_election``, ``{aux_command, C}``
calls and ``{command, Prio, {'$usr', C, Mode}}`` casts) to the core's events, of the core's
``ClientReply`` values to the exact reply terms (``{wrap_reply, R}``, ``{redirect, L}``,
``{ok, {{Idx, Term}, R}, L}``...), of ``RaEvent`` to ``{ra_event, Id, Body}`` (§4.4), and of query
terms (Erlang funs, ``{M, F, A}``) to the callables the core runs on the machine state.

Must not: send anything or await anything except in :func:`resolve_reply`, which finishes the
queries that must run on a BEAM (an Erlang closure cannot run in Python: it is evaluated on the
caller's node with the machine state as argument, ``erlang:apply(Fun, [State])``, through an rpc
the caller of :func:`resolve_reply` provides). Everything else here is pure.

Query semantics (Ra 2.2.0 ``ra_machine:query/3``): ``Fun(State)`` or ``apply(M, F, A ++ [State])``;
any exception becomes the reply ``{error, Reason}`` (class dropped; ``exit(boom)``,
``error(boom)`` and ``throw(boom)`` all answer ``{error, boom}``, checked against real Ra).
For the ``simple`` machine the query sees ``S`` of ``{simple, Fun, S}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from erl_interop.term import Atom, ExportFun, Map, OpaqueFun, Pid, Term
from pyra_dist.core.effects import (
    AtomReply,
    AuxReply,
    ClientReply,
    ErrorReply,
    LocalQueryReply,
    OkReply,
    Pong,
    Redirect,
    WrapReply,
)
from pyra_dist.core.events import (
    AuxCommand,
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
from pyra_dist.erlang.records import (
    NOTIFY,
    RecordError,
    opaque,
    reply_mode_from_term,
    server_id_from_term,
    server_id_to_term,
)
from pyra_dist.types import AWAIT_CONSENSUS, From, NotifyReply, ServerId

__all__ = [
    "ERROR",
    "OK",
    "ErlangQuery",
    "LocalQueryFun",
    "QueryFailed",
    "QueryResolver",
    "RemoteQuery",
    "applied_event_term",
    "caller_node",
    "machine_event_term",
    "parse_call",
    "parse_cast",
    "rejected_event_term",
    "reply_term",
    "resolve_reply",
]

LEADER_CALL: Final = Atom("leader_call")
LOCAL_CALL: Final = Atom("local_call")
LOCAL_QUERY: Final = Atom("local_query")
CONSISTENT_QUERY: Final = Atom("consistent_query")
STATE_QUERY: Final = Atom("state_query")
COMMAND: Final = Atom("command")
TRANSFER_LEADERSHIP: Final = Atom("transfer_leadership")
TRIGGER_ELECTION: Final = Atom("trigger_election")
PING: Final = Atom("ping")
AUX_COMMAND: Final = Atom("aux_command")
USR: Final = Atom("$usr")
RA_JOIN: Final = Atom("$ra_join")
RA_LEAVE: Final = Atom("$ra_leave")
RA_CLUSTER: Final = Atom("$ra_cluster")
DELETE: Final = Atom("delete")
NORMAL: Final = Atom("normal")
LOW: Final = Atom("low")

OK: Final = Atom("ok")
ERROR: Final = Atom("error")
WRAP_REPLY: Final = Atom("wrap_reply")
REDIRECT: Final = Atom("redirect")
PONG: Final = Atom("pong")
RA_EVENT: Final = Atom("ra_event")
APPLIED: Final = Atom("applied")
REJECTED: Final = Atom("rejected")
NOT_LEADER: Final = Atom("not_leader")
MACHINE: Final = Atom("machine")
UNDEFINED: Final = Atom("undefined")
SIMPLE: Final = Atom("simple")

_PRIORITIES: Final[Mapping[str, Priority]] = {NORMAL.name: "normal", LOW.name: "low"}
_STATE_QUERIES: Final[Mapping[Atom, StateQuery]] = {
    Atom("members"): "members",
    Atom("initial_members"): "initial_members",
    Atom("overview"): "overview",
}


# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------

LocalQueryFun = Callable[..., object]
"""A Python function registered for an Erlang ``{M, F, A}`` / ``fun M:F/1`` query; called as
``fn(*A, State)`` like ``apply(M, F, A ++ [State])``. Raise ``ErlangError(Reason)`` to answer
``{error, Reason}``."""


@dataclass(frozen=True, slots=True)
class QueryFailed:
    """A query that raised; the reply becomes ``{error, reason}``."""

    reason: Term


@dataclass(frozen=True, slots=True)
class RemoteQuery:
    """A query that must run on ``node`` (a BEAM): ``erlang:apply(fun, args ++ [state])``.

    ``fun`` is an Erlang fun (``OpaqueFun``/``ExportFun``) with ``args == []``, or the pair
    ``(M, F)`` of an MFA query with its ``args``.
    """

    node: Atom
    fun: Term
    args: tuple[Term, ...]
    state: Term


@dataclass(frozen=True, slots=True)
class ErlangQuery:
    """The callable handed to the core for an Erlang query term.

    Returns the answer (a local registered function ran), a :class:`QueryFailed`, or a
    :class:`RemoteQuery` that :func:`resolve_reply` finishes before the reply leaves.

    Args:
        query: the query term as the client sent it.
        caller_node: the node of the calling process (where closures run).
        local: finds the Python function for ``(Module, Function, Arity)`` (registered or a BIF
            twin), or None (the query then runs on the caller's node).
        simple: the server runs the ``simple`` machine (queries see ``S`` of ``{simple, F, S}``).
    """

    query: Term
    caller_node: Atom
    local: Callable[[str, str, int], LocalQueryFun | None]
    simple: bool = False

    def __call__(self, state: object) -> object:
        if self.simple and type(state) is tuple and len(state) == 3 and state[0] == SIMPLE:
            state = state[2]
        q: object = self.query
        if isinstance(q, OpaqueFun):
            return RemoteQuery(self.caller_node, q, (), opaque(state))
        if isinstance(q, ExportFun) and q.arity == 1:
            return self._mfa(q.module, q.function, [], state)
        if (
            type(q) is tuple
            and len(q) == 3
            and type(q[0]) is Atom
            and type(q[1]) is Atom
            and type(q[2]) is list
        ):
            return self._mfa(q[0], q[1], q[2], state)
        # ra_machine:apply_fun/2 has no clause for it: case_clause, caught as {error, _}.
        return QueryFailed((Atom("case_clause"), self.query))

    def _mfa(self, m: Atom, f: Atom, args: list[Term], state: object) -> object:
        fn = self.local(m.name, f.name, len(args) + 1)
        if fn is None:
            return RemoteQuery(self.caller_node, (m, f), tuple(args), opaque(state))
        from erl_interop.node.process import ErlangError

        try:
            return fn(*args, state)
        except ErlangError as exc:
            return QueryFailed(exc.reason)
        except Exception as exc:
            return QueryFailed((Atom("python"), type(exc).__name__.encode(), str(exc).encode()))


class QueryResolver:
    """Runs :class:`RemoteQuery` values on their BEAM node.

    Args:
        rpc: ``await rpc(node, module, function, args)`` returning the value, raising
            ``erl_interop.errors.RpcError`` (with ``reason``) when the function raised.
    """

    def __init__(self, rpc: Callable[[Atom, Atom, Atom, list[Term]], Awaitable[Term]]) -> None:
        self._rpc = rpc

    async def run(self, query: RemoteQuery) -> object:
        """The query's value, or :class:`QueryFailed` with the exception's reason."""
        from erl_interop.errors import ErlInteropError

        erlang, apply = Atom("erlang"), Atom("apply")
        args: list[Term] = [*query.args, query.state]
        if isinstance(query.fun, tuple):
            m, f = query.fun
            call: list[Term] = [m, f, args]
        else:
            call = [query.fun, args]
        try:
            return await self._rpc(query.node, erlang, apply, call)
        except ErlInteropError as exc:
            return QueryFailed(_rpc_error_reason(exc))


def _rpc_error_reason(exc: Exception) -> Term:
    # The Ra reply keeps the reason only (class dropped): erpc gives {exception, Reason, Stack}
    # for error/exit and the thrown value for throw; erl_interop's RpcError carries ``reason``.
    reason = getattr(exc, "reason", None)
    if reason is None:
        return (Atom("python"), type(exc).__name__.encode(), str(exc).encode())
    return opaque(reason)


# ---------------------------------------------------------------------------------------------
# Requests (ra-internals §4: what ra:* sends)
# ---------------------------------------------------------------------------------------------


def _priority(term: Term) -> Priority:
    # Keyed by the atom's text: a str-keyed dict lookup costs no Python-level Atom hash/eq.
    priority = _PRIORITIES.get(term.name) if type(term) is Atom else None
    if priority is None:
        raise RecordError("command priority", term)
    return priority


def _command(
    cmd: Term, from_: From | None, priority: Priority, now_ms: int
) -> CommandRequest | JoinRequest | LeaveRequest | DeleteClusterRequest:
    if type(cmd) is not tuple or len(cmd) != 3:
        raise RecordError("client command", cmd)
    tag, arg, mode = cmd
    if tag == USR:
        return CommandRequest(
            data=arg,
            reply_mode=reply_mode_from_term(mode),
            from_=from_,
            priority=priority,
            system_time=now_ms,
        )
    if tag == RA_JOIN:
        return JoinRequest(server_id_from_term(arg), reply_mode_from_term(mode), from_, now_ms)
    if tag == RA_LEAVE:
        return LeaveRequest(server_id_from_term(arg), reply_mode_from_term(mode), from_, now_ms)
    if tag == RA_CLUSTER and arg == DELETE and reply_mode_from_term(mode) == AWAIT_CONSENSUS:
        return DeleteClusterRequest(from_, now_ms)
    raise RecordError("client command", cmd)


def parse_call(
    request: Term,
    from_: From,
    *,
    now_ms: int,
    query: Callable[[Term, Pid], ErlangQuery],
) -> Event:
    """Map the request of a gen call to a Ra server onto the core's event.

    Args:
        request: the third element of ``{'$gen_call', From, Request}``.
        from_: ``{Pid, Tag}`` of the caller (kept opaque, echoed in replies and log meta).
        now_ms: the server's wall clock (stamped into commands as ``ts``).
        query: builds the query callable for a query term and the caller pid.

    Returns:
        The event to deliver to the server.

    Raises:
        RecordError: a request Ra 2.2.0 servers do not handle (2.2.0 leaves such calls
            unanswered; the caller times out).
    """
    caller = from_[0] if type(from_) is tuple and len(from_) == 2 else None
    if request == PING:
        return PingRequest(from_)
    if request == TRIGGER_ELECTION:
        return TriggerElection(from_)
    if type(request) is tuple and len(request) == 2:
        tag, body = request
        if tag == LOCAL_QUERY:
            return _query("local", body, from_, caller, query)
        if tag == AUX_COMMAND:
            return AuxCommand(body, from_)
        if tag in (LEADER_CALL, LOCAL_CALL) and type(body) is tuple and body:
            local = tag == LOCAL_CALL
            inner = body[0]
            if inner == STATE_QUERY and len(body) == 2 and body[1] in _STATE_QUERIES:
                return StateQueryRequest(_STATE_QUERIES[body[1]], from_, local)  # type: ignore[index]
            if not local and inner == COMMAND and len(body) == 3:
                return _command(body[2], from_, _priority(body[1]), now_ms)
            if not local and inner == LOCAL_QUERY and len(body) == 2:
                return _query("leader", body[1], from_, caller, query)
            if not local and inner == CONSISTENT_QUERY and len(body) == 2:
                return _query("consistent", body[1], from_, caller, query)
            if not local and inner == TRANSFER_LEADERSHIP and len(body) == 2:
                return TransferLeadershipRequest(server_id_from_term(body[1]), from_)
    raise RecordError("client call", request)


def _query(
    kind: QueryKind, q: Term, from_: From, caller: object, query: Callable[[Term, Pid], ErlangQuery]
) -> QueryRequest:
    if not isinstance(caller, Pid):
        raise RecordError("query caller", caller)
    return QueryRequest(kind, query(q, caller), from_)


def parse_cast(message: Term, *, now_ms: int) -> Event:
    """Map the body of a ``{'$gen_cast', Msg}`` from a client onto the core's event.

    Args:
        message: ``Msg``: ``{command, Prio, {'$usr', C, Mode}}`` (``pipeline_command``, or a
            follower forwarding a ``noreply`` command, ra-internals §4) or ``{aux_command, C}``.
        now_ms: the server's wall clock.

    Raises:
        RecordError: anything else (peer records are the transport's business).
    """
    if type(message) is tuple and len(message) == 3 and message[0] == COMMAND:
        cmd = message[2]
        if type(cmd) is tuple and len(cmd) == 3 and cmd[0] == USR:
            # ra:pipeline_command's {'$usr', C, {notify, Corr, Pid}} (the hot path, one per command).
            mode = cmd[2]
            reply_mode = (
                NotifyReply(mode[1], mode[2])
                if type(mode) is tuple and len(mode) == 3 and mode[0] == NOTIFY
                else reply_mode_from_term(mode)
            )
            return CommandRequest(
                data=cmd[1], reply_mode=reply_mode, priority=_priority(message[1]), system_time=now_ms
            )
        event = _command(cmd, None, _priority(message[1]), now_ms)
        if isinstance(event, CommandRequest):
            return event
    if type(message) is tuple and len(message) == 2 and message[0] == AUX_COMMAND:
        return AuxCommand(message[1])
    raise RecordError("client cast", message)


# ---------------------------------------------------------------------------------------------
# Replies and events (ra-internals §4 "typical replies", §4.4)
# ---------------------------------------------------------------------------------------------


def _leader_term(leader: ServerId | str) -> Term:
    return server_id_to_term(leader) if isinstance(leader, ServerId) else Atom(leader)


def _value_term(value: object) -> Term:
    # members / initial_members are lists of ServerId in the core; anything else is an Erlang
    # term already (machine replies, query results) and passes untouched.
    if isinstance(value, ServerId):
        return server_id_to_term(value)
    if isinstance(value, list | tuple) and value and all(isinstance(v, ServerId) for v in value):
        return [server_id_to_term(v) for v in value]
    if isinstance(value, str):
        return Atom(value)  # the core's atoms: "error" for unknown initial members
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return Map((Atom(k), _value_term(v)) for k, v in value.items())
    return opaque(value)


def reply_term(reply: ClientReply) -> Term:
    """The exact reply a Ra 2.2.0 server sends for ``reply``.

    Query results must already be final (see :func:`resolve_reply`); a :class:`QueryFailed`
    result turns the whole reply into ``{error, Reason}``.
    """
    match reply:
        case WrapReply(reply=r):
            return (WRAP_REPLY, opaque(r))
        case Redirect(leader=leader):
            return (REDIRECT, server_id_to_term(leader))
        case ErrorReply(reason=reason):
            return (ERROR, _error_reason(reason))
        case LocalQueryReply(index=index, term=term, result=result, leader=leader):
            if isinstance(result, QueryFailed):
                return (ERROR, result.reason)
            return (OK, ((index, term), opaque(result)), _leader_term(leader))
        case OkReply(value=value, leader=leader):
            if isinstance(value, QueryFailed):
                return (ERROR, value.reason)
            return (OK, _value_term(value), _leader_term(leader))
        case AtomReply(atom=atom):
            return Atom(atom)
        case Pong(role=role):
            return (PONG, Atom(role.value))
        case AuxReply(reply=r):
            return opaque(r)


def _error_reason(reason: object) -> Term:
    # The core names Ra's error atoms as text; a Python exception (a local query that raised
    # outside ErlangQuery) is reported the way erl_interop reports Python exceptions.
    if isinstance(reason, str):
        return Atom(reason)
    if isinstance(reason, QueryFailed):
        return reason.reason
    if isinstance(reason, BaseException):
        return (Atom("python"), type(reason).__name__.encode(), str(reason).encode())
    return opaque(reason)


async def resolve_reply(reply: ClientReply, resolver: QueryResolver) -> ClientReply:
    """Finish the remote part of a query reply (no-op for every other reply).

    Args:
        reply: the core's reply.
        resolver: runs :class:`RemoteQuery` values on their node.

    Returns:
        The reply with a final result (a value or :class:`QueryFailed`).
    """
    match reply:
        case LocalQueryReply(result=RemoteQuery() as q):
            return LocalQueryReply(reply.index, reply.term, await resolver.run(q), reply.leader)
        case OkReply(value=RemoteQuery() as q):
            return OkReply(await resolver.run(q), reply.leader)
        case _:
            return reply


def applied_event_term(leader: ServerId, replies: Sequence[tuple[object, object]]) -> Term:
    """``{ra_event, Leader, {applied, [{Corr, Reply}]}}`` (pairs in apply order, ra-internals §4.4)."""
    # The pairs are (Corr, Reply) tuples already: the list holds them as they are.
    return (RA_EVENT, server_id_to_term(leader), (APPLIED, opaque(list(replies))))


def rejected_event_term(sender: ServerId, leader: ServerId | None, correlation: object) -> Term:
    """``{ra_event, Sender, {rejected, {not_leader, Leader | undefined, Corr}}}`` from a non-leader."""
    leader_term: Term = UNDEFINED if leader is None else server_id_to_term(leader)
    return (RA_EVENT, server_id_to_term(sender), (REJECTED, (NOT_LEADER, leader_term, opaque(correlation))))


def machine_event_term(leader: ServerId, message: object) -> Term:
    """``{ra_event, Leader, {machine, Msg}}`` (a ``send_msg`` effect with the ``ra_event`` option)."""
    return (RA_EVENT, server_id_to_term(leader), (MACHINE, opaque(message)))


def caller_node(from_: object) -> Atom | None:
    """The node of the process in a ``{Pid, Tag}`` caller token, if it is one."""
    if type(from_) is tuple and len(from_) == 2 and isinstance(from_[0], Pid):
        return from_[0].node
    return None
