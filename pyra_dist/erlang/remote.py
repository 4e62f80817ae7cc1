"""Python clients of servers on other nodes: Ra's client requests and lifecycle rpcs sent from Python.

Owns: the inverse of ``client.py`` for ``pyra_dist.ra`` calls whose server is reached over
distribution (an Erlang Ra server, or a Python server on another node): the core's request event
-> the term ``ra`` would send (ra-internals §4), the reply term -> the core's ``ClientReply``, and
``RemoteNodeOps``, the ``NodeOps`` of a remote node: ``ra_server_sup_sup:start_server_rpc``,
``restart_server_rpc``, ``prepare_server_stop_rpc`` + ``supervisor:terminate_child`` and
``delete_server_rpc`` made by rpc, exactly as ``ra:start_server`` and friends do (§5.1, §9.3).

Must not: decide anything a Ra client does not (the redirect loop stays in ``pyra_dist.ra``).

Queries: Erlang terms (``ErlangQuery``, a fun, an ``{M, F, A}`` tuple) travel as they are. A Python
callable cannot travel: for the API's ``PythonQuery`` the server is sent the identity query
``{lists, append, [[]]}`` (Ra applies it as ``lists:append([], State)``, i.e. ``[] ++ State``, which
is ``State`` whatever it is) and the callable runs here on the decoded state term; the reply keeps
Ra's shape with the callable's result in it. The whole machine state crosses the wire on every such
query. A bare callable (not through ``pyra_dist.ra``) is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, cast

from erl_interop.errors import NodeDown, NoProc
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
    QueryRequest,
    StateQueryRequest,
    TransferLeadershipRequest,
    TriggerElection,
)
from pyra_dist.core.machine import Machine
from pyra_dist.erlang.client import ErlangQuery
from pyra_dist.erlang.machines import ErlangSimpleMachine
from pyra_dist.erlang.records import (
    RecordError,
    opaque,
    reply_mode_to_term,
    server_id_from_term,
    server_id_to_term,
)
from pyra_dist.ra import PythonQuery
from pyra_dist.server import errors
from pyra_dist.types import NotifyReply, ReplyMode, Role, ServerId

if TYPE_CHECKING:
    from erl_interop.node.node import Node
    from pyra_dist.server.system import ServerConfig

__all__ = ["RemoteNodeOps", "erlang_machine_spec", "reply_from_term", "request_term"]

A = Atom
OK: Final = A("ok")
ERROR: Final = A("error")
LEADER_CALL: Final = A("leader_call")
LOCAL_CALL: Final = A("local_call")
COMMAND: Final = A("command")
USR: Final = A("$usr")


def erlang_machine_spec(machine: Machine) -> Term:
    """The Ra machine spec an Erlang node would be given for ``machine``.

    ``ErlangSimpleMachine`` -> ``{simple, Fun, Initial}``; a machine class with an ``ERLANG_MODULE``
    attribute (the twin of an Erlang module, e.g. ``PyraKv``) -> ``{module, Mod, Config}``.

    Raises:
        errors.RaError: a Python-only machine (an Erlang node cannot run it).
    """
    if isinstance(machine, ErlangSimpleMachine):
        return (A("simple"), machine.fun, opaque(machine.initial))
    module = getattr(machine, "ERLANG_MODULE", None)
    if isinstance(module, str):
        config = getattr(machine, "config", {})
        pairs = config.items() if isinstance(config, Mapping) else ()
        return (A("module"), A(module), Map((A(k), opaque(v)) for k, v in pairs))
    raise errors.ErrorReplyError(
        (A("unsupported_machine"), repr(machine).encode()),
        server_id=None,
    )


IDENTITY_QUERY: Final[Term] = (A("lists"), A("append"), [[]])
"""``{lists, append, [[]]}``: Ra runs it as ``lists:append([], State)`` = ``State`` (any term)."""


def _is_erlang_query(query: object) -> bool:
    return isinstance(query, ErlangQuery | OpaqueFun | ExportFun) or (
        type(query) is tuple and len(query) == 3 and type(query[0]) is Atom
    )


def _runs_here(query: object) -> bool:
    """A Python callable from the API: the server sends its state, the caller applies the callable."""
    return isinstance(query, PythonQuery) and not _is_erlang_query(query.fn)


def _query_term(query: object) -> Term:
    if isinstance(query, PythonQuery):
        if not _is_erlang_query(query.fn):
            return IDENTITY_QUERY
        query = query.fn
    if isinstance(query, ErlangQuery):
        return query.query
    if _is_erlang_query(query):
        return cast(Term, query)
    # A bare callable handed to the transport directly (not through pyra_dist.ra): refuse it
    # rather than ship the whole state without the caller having asked for that.
    raise errors.ErrorReplyError(
        (A("unsupported_query"), b"a bare Python callable cannot run on another node; use pyra_dist.ra"),
    )


def _apply_here(query: object, state: Term) -> tuple[bool, object]:
    """Run a Python query on the state term a server sent; ``(False, exc)`` if it raised.

    Mirrors ``RaftCore.run_query``: a raising query is Ra's ``{error, Reason}`` (class dropped).
    """
    try:
        return True, query(state)  # type: ignore[operator]
    except Exception as exc:  # the caller's own code: never let it break the client loop
        return False, exc


def request_term(event: Event, pid_of: Any) -> tuple[Term, bool]:
    """The gen-call request ``ra`` sends for ``event``, and whether it is a leader call.

    Args:
        event: the request the Python API built (its ``from_`` is ignored).
        pid_of: maps a Python ``LocalPid`` (notify reply modes) to an Erlang pid.

    Raises:
        errors.RaError: the event has no wire form (a Python query callable).
    """
    match event:
        case CommandRequest(data=data, reply_mode=mode, priority=prio):
            cmd = (USR, opaque(data), _mode(mode, pid_of))
            return (LEADER_CALL, (COMMAND, A(prio), cmd)), True
        case JoinRequest(server_id=sid, reply_mode=mode):
            return (
                LEADER_CALL,
                (COMMAND, A("normal"), (A("$ra_join"), server_id_to_term(sid), _mode(mode, pid_of))),
            ), True
        case LeaveRequest(server_id=sid, reply_mode=mode):
            return (
                LEADER_CALL,
                (COMMAND, A("normal"), (A("$ra_leave"), server_id_to_term(sid), _mode(mode, pid_of))),
            ), True
        case DeleteClusterRequest():
            return (
                LEADER_CALL,
                (COMMAND, A("normal"), (A("$ra_cluster"), A("delete"), A("await_consensus"))),
            ), True
        case QueryRequest(kind="local", query=q):
            return (A("local_query"), _query_term(q)), False
        case QueryRequest(kind="leader", query=q):
            return (LEADER_CALL, (A("local_query"), _query_term(q))), True
        case QueryRequest(kind="consistent", query=q):
            return (LEADER_CALL, (A("consistent_query"), _query_term(q))), True
        case StateQueryRequest(what=what, local=local):
            return ((LOCAL_CALL if local else LEADER_CALL), (A("state_query"), A(what))), not local
        case TransferLeadershipRequest(target=target):
            return (LEADER_CALL, (A("transfer_leadership"), server_id_to_term(target))), True
        case TriggerElection():
            return A("trigger_election"), False
        case PingRequest():
            return A("ping"), False
        case AuxCommand(command=cmd):
            return (A("aux_command"), opaque(cmd)), False
        case _:
            raise errors.ErrorReplyError((A("unsupported_call"), repr(event).encode()))


def cast_term(event: CommandRequest, pid_of: Any) -> Term:
    """``{'$gen_cast', {command, Prio, {'$usr', C, Mode}}}`` for a pipelined command."""
    return (
        A("$gen_cast"),
        (COMMAND, A(event.priority), (USR, opaque(event.data), _mode(event.reply_mode, pid_of))),
    )


def _mode(mode: ReplyMode, pid_of: Any) -> Term:
    if isinstance(mode, NotifyReply) and not isinstance(mode.pid, Pid):
        return reply_mode_to_term(NotifyReply(mode.correlation, pid_of(mode.pid)))
    return reply_mode_to_term(mode)


def _leader(term: Term) -> ServerId | str:
    return term.name if isinstance(term, Atom) else server_id_from_term(term)


def _value(term: Term) -> object:
    # members / initial_members: lists of {Name, Node}; anything else stays a term.
    if type(term) is list and term:
        try:
            return [server_id_from_term(t) for t in term]
        except RecordError:
            return term
    return term


def reply_from_term(event: Event, term: Term) -> ClientReply:
    """The core's ``ClientReply`` for the reply ``term`` a server gave to ``event``'s request.

    Raises:
        RecordError: a reply shape Ra 2.2.0 never gives for that request.
    """
    if type(term) is tuple and len(term) == 2 and term[0] == A("wrap_reply"):
        return WrapReply(term[1])
    if type(term) is tuple and len(term) == 2 and term[0] == A("redirect"):
        return Redirect(server_id_from_term(term[1]))
    if type(term) is tuple and len(term) == 2 and term[0] == ERROR:
        reason = term[1]
        return ErrorReply(reason.name if isinstance(reason, Atom) else reason)
    match event:
        case PingRequest() if type(term) is tuple and len(term) == 2 and term[0] == A("pong"):
            return Pong(Role(str(term[1])))
        case AuxCommand():
            return AuxReply(term)
        case QueryRequest(kind="local" | "leader", query=query) if (
            type(term) is tuple and len(term) == 3 and term[0] == OK
        ):
            body = term[1]
            if type(body) is tuple and len(body) == 2 and type(body[0]) is tuple and len(body[0]) == 2:
                index, term_no = body[0]
                if type(index) is int and type(term_no) is int:
                    result: object = body[1]
                    if _runs_here(query):
                        ok, result = _apply_here(query, body[1])
                        if not ok:
                            return ErrorReply(result)
                    return LocalQueryReply(index, term_no, result, _leader(term[2]))
            raise RecordError("local query reply", term)
        case QueryRequest(query=query) if type(term) is tuple and len(term) == 3 and term[0] == OK:
            # A query's result is the user's term as it is (a list of 2-tuples is not a member list).
            result = term[1]
            if _runs_here(query):
                ok, result = _apply_here(query, term[1])
                if not ok:
                    return ErrorReply(result)
            return OkReply(result, _leader(term[2]))
        case StateQueryRequest() if type(term) is tuple and len(term) == 3 and term[0] == OK:
            return OkReply(_value(term[1]), _leader(term[2]))
        case _ if isinstance(term, Atom):
            return AtomReply(term.name)
        case _:
            raise RecordError("client reply", term)


class RemoteNodeOps:
    """``NodeOps`` of a node reached over distribution: Ra's lifecycle rpcs on it.

    Args:
        node: the local distribution node making the calls.
        target: the node whose servers are managed.
        system: the Ra system name on ``target`` (``default``).
    """

    def __init__(self, node: Node, target: str, system: str = "default") -> None:
        self._node = node
        self._target = A(target)
        self._system = A(system)

    async def _rpc(self, function: str, args: list[Term]) -> Term:
        try:
            return await self._node.rpc(self._target, A("ra_server_sup_sup"), A(function), args, None)
        except NodeDown as exc:
            raise errors.NodeDown(f"node {self._target} is down: {exc}") from None

    async def start_server(self, config: ServerConfig) -> None:
        """``start_server_rpc(System, UId, Config)`` with Ra's config map (§9.3)."""
        uid = config.uid.encode()
        members = [server_id_to_term(m) for m in config.initial_members]
        conf = Map(
            [
                (A("cluster_name"), A(config.cluster_name)),
                (A("id"), server_id_to_term(config.server_id)),
                (A("initial_members"), members),
                (
                    A("log_init_args"),
                    Map([(A("snapshot_interval"), config.snapshot_interval), (A("uid"), uid)]),
                ),
                (A("machine"), erlang_machine_spec(config.machine)),
                (A("uid"), uid),
            ]
        )
        reply = await self._rpc("start_server_rpc", [self._system, uid, conf])
        if type(reply) is tuple and reply and reply[0] == OK:
            return
        raise _lifecycle_error(reply, config.server_id)

    async def restart_server(self, name: str, machine: Machine | None = None, **mutable: Any) -> None:
        """``restart_server_rpc(System, {Name, Node}, #{})`` (the remote node has the config)."""
        sid = ServerId(name, self._target.name)
        reply = await self._rpc("restart_server_rpc", [self._system, server_id_to_term(sid), Map()])
        if type(reply) is tuple and reply and reply[0] == OK:
            return
        raise _lifecycle_error(reply, sid)

    async def stop_server(self, name: str) -> None:
        """``prepare_server_stop_rpc`` then ``supervisor:terminate_child({SrvSup, Node}, Parent)``."""
        reply = await self._rpc("prepare_server_stop_rpc", [self._system, A(name)])
        if type(reply) is tuple and len(reply) == 3 and reply[0] == OK:
            parent, sup = reply[1], reply[2]
            if parent == A("undefined"):
                return
            try:
                if not isinstance(sup, Atom):
                    raise _lifecycle_error(reply, ServerId(name, self._target.name))
                await self._node.call((sup, self._target), (A("terminate_child"), parent), None)
            except NoProc:
                return
            return
        raise _lifecycle_error(reply, ServerId(name, self._target.name))

    async def force_delete_server(self, name: str) -> None:
        """Stop, then ``delete_server_rpc(System, Name)``."""
        await self.stop_server(name)
        reply = await self._rpc("delete_server_rpc", [self._system, A(name)])
        if reply != OK:
            raise _lifecycle_error(reply, ServerId(name, self._target.name))


def _lifecycle_error(reply: Term, server_id: ServerId) -> errors.RaError:
    reason: Term = reply[1] if type(reply) is tuple and len(reply) == 2 and reply[0] == ERROR else reply
    # {shutdown, {failed_to_start_child, Name, R}} (a Ra supervisor start failure) -> R
    if type(reason) is tuple and len(reason) == 2 and reason[0] == A("shutdown"):
        inner = reason[1]
        if type(inner) is tuple and len(inner) == 3 and inner[0] == A("failed_to_start_child"):
            reason = inner[2]
    if type(reason) is tuple and reason and reason[0] == A("already_started"):
        return errors.AlreadyStarted(f"{server_id} is already running", server_id=server_id)
    if isinstance(reason, Atom):
        return errors.error_for_reason(reason.name, server_id)
    return errors.error_for_reason(reason, server_id)
