"""Ra 2.2.0's ``ra`` module, callable on a Python node through ``rpc:call(PyNode, ra, F, Args)``.

Owns: a term-level port of the client half of ``src/ra.erl`` and ``ra_server_proc``'s call loop
(ra-internals §4.3, §5): every answer is built exactly as Ra builds it (``{ok, Reply, Leader}``,
``{timeout, ServerId}``, ``{error, noproc | nodedown}``, ``{error, {no_more_servers_to_try, Errs}}``,
the ``start_cluster`` choreography). Servers are reached by gen calls through the node, so the
same code serves ids on this Python node, other Python nodes and Erlang nodes; server lifecycle
goes through ``ra_server_sup_sup:*_rpc`` on the server's node, as Ra does.

Must not: touch a server's state directly, or answer anything Ra 2.2.0 would not (issue 5, 3c:
a shell without Ra's code sees the same answers as one with it).
"""

# Ra's functions take Erlang-style timeout arguments (ms or infinity, default 5000).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import TYPE_CHECKING, Final

from erl_interop.errors import CallTimeout, ErlInteropError, NodeDown, NoProc
from erl_interop.node.gen_server import CallExit
from erl_interop.node.process import Dest, ErlangError
from erl_interop.term import Atom, Pid, Term

if TYPE_CHECKING:
    from erl_interop.node.node import Node

__all__ = ["RaModule"]

A = Atom
OK: Final = A("ok")
ERROR: Final = A("error")
TIMEOUT: Final = A("timeout")
REDIRECT: Final = A("redirect")
WRAP_REPLY: Final = A("wrap_reply")
LEADER_CALL: Final = A("leader_call")
LOCAL_CALL: Final = A("local_call")
COMMAND: Final = A("command")
NORMAL: Final = A("normal")
LOW: Final = A("low")
NO_CORRELATION: Final = A("no_correlation")
USR: Final = A("$usr")
DEFAULT_TIMEOUT_MS: Final = 5000


class RaModule:
    """The ``ra`` functions a bare Erlang shell may call on this node.

    Args:
        node: the distribution node the calls are made from.
    """

    def __init__(self, node: Node) -> None:
        self._node = node

    def install(self) -> None:
        """Expose every function as ``ra:Name`` (arity is dispatched on the argument count)."""
        for name in (
            "process_command",
            "pipeline_command",
            "members",
            "initial_members",
            "local_query",
            "leader_query",
            "consistent_query",
            "add_member",
            "remove_member",
            "delete_cluster",
            "transfer_leadership",
            "trigger_election",
            "ping",
            "start_cluster",
            "start_server",
            "restart_server",
            "stop_server",
            "force_delete_server",
            "leave_and_terminate",
            "new_uid",
        ):
            self._node.expose("ra", name, getattr(self, name))

    # -- ra_server_proc:statem_call ------------------------------------------------------------------

    async def _safe_call(self, server: Term, msg: Term, timeout_ms: Term) -> Term:
        # gen_statem_safe_call/3: timeout -> timeout, noproc -> {error, noproc},
        # {nodedown, _} -> {error, nodedown}; other exits propagate as exits.
        try:
            return await self._node.call(_dest(server), msg, _seconds(timeout_ms))
        except CallTimeout:
            return TIMEOUT
        except NoProc:
            return (ERROR, A("noproc"))
        except NodeDown:
            return (ERROR, A("nodedown"))
        except CallExit as exc:
            raise ErlangError(exc.reason) from None

    async def _statem_call(self, server: Term, msg: Term, timeout_ms: Term) -> Term:
        if type(server) is list:
            errs: list[Term] = []
            for i, one in enumerate(server):
                reply = await self._statem_call(one, msg, timeout_ms)
                if type(reply) is tuple and len(reply) == 2 and reply[0] in (ERROR, TIMEOUT):
                    errs.insert(0, reply)
                    if i == len(server) - 1:
                        return (ERROR, (A("no_more_servers_to_try"), errs))
                    continue
                return reply
            return (ERROR, (A("no_more_servers_to_try"), errs))
        while True:
            reply = await self._safe_call(server, msg, timeout_ms)
            if type(reply) is tuple and len(reply) == 2 and reply[0] == REDIRECT:
                server = reply[1]
                continue
            if type(reply) is tuple and len(reply) == 2 and reply[0] == WRAP_REPLY:
                return (OK, reply[1], server)
            if reply == TIMEOUT:
                return (TIMEOUT, server)
            return reply

    async def _leader_call(self, server: Term, msg: Term, timeout_ms: Term) -> Term:
        return await self._statem_call(server, (LEADER_CALL, msg), timeout_ms)

    async def _command(self, server: Term, cmd: Term, timeout_ms: Term) -> Term:
        return await self._leader_call(server, (COMMAND, NORMAL, cmd), timeout_ms)

    # -- commands and queries (src/ra.erl) -------------------------------------------------------------

    async def process_command(self, server: Term, command: Term, timeout: Term = DEFAULT_TIMEOUT_MS) -> Term:
        """``ra:process_command/2,3``."""
        return await self._command(server, (USR, command, A("await_consensus")), timeout)

    async def pipeline_command(
        self, server: Term, command: Term, correlation: Term = NO_CORRELATION, priority: Term = LOW
    ) -> Term:
        """``ra:pipeline_command/2,3,4`` (notifications go to the rpc's process, as in Ra)."""
        if correlation == NO_CORRELATION:
            cmd: Term = (USR, command, A("noreply"))
        else:
            async with self._node.process() as me:
                cmd = (USR, command, (A("notify"), correlation, me.pid))
        self._node.send(_dest(server), (A("$gen_cast"), (COMMAND, priority, cmd)))
        return OK

    async def members(self, server: Term, timeout: Term = DEFAULT_TIMEOUT_MS) -> Term:
        """``ra:members/1,2`` (``{local, Id}`` asks that server only)."""
        if type(server) is tuple and len(server) == 2 and server[0] == A("local"):
            return await self._statem_call(server[1], (LOCAL_CALL, (A("state_query"), A("members"))), timeout)
        return await self._leader_call(server, (A("state_query"), A("members")), timeout)

    async def initial_members(self, server: Term, timeout: Term = DEFAULT_TIMEOUT_MS) -> Term:
        """``ra:initial_members/1,2``."""
        return await self._leader_call(server, (A("state_query"), A("initial_members")), timeout)

    async def local_query(self, server: Term, query: Term, timeout: Term = DEFAULT_TIMEOUT_MS) -> Term:
        """``ra:local_query/2,3``."""
        return await self._statem_call(server, (A("local_query"), query), timeout)

    async def leader_query(self, server: Term, query: Term, timeout: Term = DEFAULT_TIMEOUT_MS) -> Term:
        """``ra:leader_query/2,3``."""
        return await self._leader_call(server, (A("local_query"), query), timeout)

    async def consistent_query(self, server: Term, query: Term, timeout: Term = DEFAULT_TIMEOUT_MS) -> Term:
        """``ra:consistent_query/2,3``."""
        return await self._leader_call(server, (A("consistent_query"), query), timeout)

    async def add_member(self, server: Term, new: Term, timeout: Term = DEFAULT_TIMEOUT_MS) -> Term:
        """``ra:add_member/2,3``."""
        return await self._command(server, (A("$ra_join"), new, A("after_log_append")), timeout)

    async def remove_member(self, server: Term, old: Term, timeout: Term = DEFAULT_TIMEOUT_MS) -> Term:
        """``ra:remove_member/2,3``."""
        return await self._command(server, (A("$ra_leave"), old, A("after_log_append")), timeout)

    async def delete_cluster(self, servers: Term, timeout: Term = DEFAULT_TIMEOUT_MS) -> Term:
        """``ra:delete_cluster/1,2``: ``{ok, Leader}`` / ``{error, timeout}`` / errors."""
        reply = await self._command(servers, (A("$ra_cluster"), A("delete"), A("await_consensus")), timeout)
        if type(reply) is tuple and len(reply) == 3 and reply[0] == OK:
            return (OK, reply[2])
        if type(reply) is tuple and len(reply) == 2 and reply[0] == TIMEOUT:
            return (ERROR, TIMEOUT)
        return reply

    async def transfer_leadership(self, server: Term, target: Term) -> Term:
        """``ra:transfer_leadership/2``."""
        return await self._leader_call(server, (A("transfer_leadership"), target), DEFAULT_TIMEOUT_MS)

    async def trigger_election(self, server: Term, timeout: Term = DEFAULT_TIMEOUT_MS) -> Term:
        """``ra:trigger_election/1,2``: a plain call; failures exit like ``gen_statem:call``."""
        try:
            return await self._node.call(_dest(server), A("trigger_election"), _seconds(timeout))
        except CallTimeout:
            raise ErlangError(TIMEOUT) from None
        except NoProc:
            raise ErlangError(A("noproc")) from None

    async def ping(self, server: Term, timeout: Term) -> Term:
        """``ra:ping/2``."""
        reply = await self._safe_call(server, A("ping"), timeout)
        return (TIMEOUT, server) if reply == TIMEOUT else reply

    # -- lifecycle (ra_server_sup_sup rpcs on the server's node) -----------------------------------------

    async def _rpc(self, node: Term, function: str, args: list[Term]) -> Term:
        # rpc:call/4 (infinite timeout): {badrpc, Reason} on failure.
        try:
            return await self._node.rpc(_atom(node), A("ra_server_sup_sup"), A(function), args, None)
        except NodeDown:
            return (A("badrpc"), A("nodedown"))
        except ErlInteropError as exc:
            return (A("badrpc"), (A("EXIT"), getattr(exc, "reason", A("undefined"))))

    def new_uid(self, cluster_name: Term) -> Term:
        """``ra:new_uid/1``: up to 6 base64url characters of the name, upper-cased, + 12 random."""
        raw = cluster_name if isinstance(cluster_name, bytes) else str(cluster_name).encode()
        prefix = base64.urlsafe_b64encode(raw).decode().rstrip("=")[:6].upper()
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return (prefix + "".join(secrets.choice(alphabet) for _ in range(12))).encode()

    def _config(self, cluster_name: Term, server: Term, machine: Term, members: Term) -> dict[Term, Term]:
        uid = self.new_uid(cluster_name if not isinstance(cluster_name, Atom) else cluster_name.name.encode())
        return {
            A("cluster_name"): cluster_name,
            A("id"): server,
            A("uid"): uid,
            A("initial_members"): members,
            A("log_init_args"): {A("uid"): uid},
            A("machine"): machine,
        }

    async def _start_server_config(self, system: Term, config: dict[Term, Term]) -> Term:
        server = config[A("id")]
        assert type(server) is tuple
        reply = await self._rpc(server[1], "start_server_rpc", [system, config[A("uid")], config])
        if type(reply) is tuple and reply and reply[0] == OK:
            return OK
        if type(reply) is tuple and len(reply) == 2 and reply[0] in (ERROR, A("badrpc")):
            return (ERROR, reply[1])
        return reply

    async def start_server(
        self, system: Term, cluster_name: Term, server: Term, machine: Term, members: Term
    ) -> Term:
        """``ra:start_server/5``."""
        return await self._start_server_config(system, self._config(cluster_name, server, machine, members))

    async def start_cluster(self, system: Term, cluster_name: Term, machine: Term, servers: Term) -> Term:
        """``ra:start_cluster/4``: Ra's choreography (ra-internals §5.1), same answer shapes."""
        assert type(servers) is list
        configs = [self._config(cluster_name, s, machine, servers) for s in servers]
        results = await asyncio.gather(*(self._start_server_config(system, c) for c in configs))
        # ra_lib:partition_parallel accumulates in reverse order.
        started = [c[A("id")] for c, r in zip(configs, results, strict=True) if r == OK][::-1]
        not_started = [c[A("id")] for c, r in zip(configs, results, strict=True) if r != OK][::-1]
        if not started:
            return (ERROR, A("cluster_not_formed"))
        me = self._node.name
        ordered = _sort_by_local(started, me)
        for sid in ordered:
            try:
                if await self.trigger_election(sid) == OK:
                    break
            except ErlangError:
                continue
        reply = await self.members(started[0], len(configs) * DEFAULT_TIMEOUT_MS)
        if type(reply) is tuple and len(reply) == 3 and reply[0] == OK:
            return (OK, started, not_started)
        for sid in started:
            await self.force_delete_server(system, sid)
        return (ERROR, A("cluster_not_formed"))

    async def restart_server(self, system: Term, server: Term) -> Term:
        """``ra:restart_server/2``."""
        assert type(server) is tuple
        reply = await self._rpc(server[1], "restart_server_rpc", [system, server, {}])
        if type(reply) is tuple and reply and reply[0] == OK:
            return OK
        if type(reply) is tuple and len(reply) == 2 and reply[0] == A("badrpc"):
            return (ERROR, reply[1])
        return reply

    async def stop_server(self, system: Term, server: Term) -> Term:
        """``ra:stop_server/2``: prepare on the server's node, then terminate_child there."""
        assert type(server) is tuple
        name, node = server
        reply = await self._rpc(node, "prepare_server_stop_rpc", [system, name])
        if reply == (A("badrpc"), A("nodedown")):
            return (ERROR, A("nodedown"))
        if type(reply) is tuple and len(reply) == 3 and reply[0] == OK:
            parent, sup = reply[1], reply[2]
            if parent == A("undefined"):
                return OK
            try:
                answer = await self._node.call(_dest((sup, node)), (A("terminate_child"), parent), None)
            except NoProc:
                return OK
            except NodeDown:
                return (ERROR, A("nodedown"))
            return OK if answer in (OK, (ERROR, A("not_found"))) else answer
        return reply

    async def force_delete_server(self, system: Term, server: Term) -> Term:
        """``ra:force_delete_server/2``."""
        stopped = await self.stop_server(system, server)
        if stopped != OK:
            return stopped
        assert type(server) is tuple
        return await self._rpc(server[1], "delete_server_rpc", [system, server[0]])

    async def leave_and_terminate(
        self, system: Term, server_ref: Term, server: Term, timeout: Term = DEFAULT_TIMEOUT_MS
    ) -> Term:
        """``ra:leave_and_terminate/3,4``."""
        reply = await self._command(server_ref, (A("$ra_leave"), server, A("await_consensus")), timeout)
        if type(reply) is tuple and len(reply) == 2 and reply[0] == TIMEOUT:
            return TIMEOUT
        if reply == (ERROR, A("noproc")):
            return reply
        if type(reply) is tuple and len(reply) == 3 and reply[0] == OK:
            return await self.stop_server(system, server)
        return reply


def _dest(server: Term) -> Dest:
    # A server reference as ra takes it: {Name, Node}, a registered name or a pid.
    if type(server) is tuple and len(server) == 2 and type(server[0]) is Atom and type(server[1]) is Atom:
        return (server[0], server[1])
    if isinstance(server, Atom | Pid):
        return server
    raise ErlangError((A("badarg"), server))


def _atom(term: Term) -> Atom:
    if isinstance(term, Atom):
        return term
    raise ErlangError((A("badarg"), term))


def _seconds(timeout_ms: Term) -> float | None:
    # Erlang timeouts: milliseconds or the atom infinity.
    if type(timeout_ms) is int:
        return timeout_ms / 1000.0
    if timeout_ms == A("infinity"):
        return None
    raise ErlangError((A("badarg"), timeout_ms))


def _sort_by_local(ids: list[Term], me: Atom) -> list[Term]:
    # ra:sort_by_local/2: walks the list, reversing it, and moves the first local id to the front.
    acc: list[Term] = []
    for i, sid in enumerate(ids):
        if type(sid) is tuple and len(sid) == 2 and sid[1] == me:
            return [sid, *acc, *ids[i + 1 :]]
        acc.insert(0, sid)
    return acc
