"""The rpc targets Erlang's ``ra`` calls on a Python node, and ``ErlangEdge``, which wires it all up.

Owns: ``ra_server_sup_sup:start_server_rpc/3``, ``restart_server_rpc/3``,
``prepare_server_stop_rpc/2``, ``delete_server_rpc/2`` and the ``ra_server_sup_sup`` registered
process answering ``supervisor:terminate_child`` (ra-internals §5.1, §9.3, answers shaped as the
2.2.0 sources build them), ``ra_machine:version/1`` (the probe an Erlang leader makes before
sending a snapshot), the ``ra`` module for bare shells (``ra_module.py``), and :class:`ErlangEdge`:
the composition of a ``System``, a started ``erl_interop`` ``Node``, the ``DistTransport`` and
these services (including the rate limit on refusal warnings, ``versions.py``).

Deliberately not exposed (docs/ra-versions.md): Ra main's ``ra_log_snapshot:context/0`` and
``ra_counters:counters/2``. Their ``undef`` is what a Ra 2.2.0 node answers, and a Ra main leader
takes the ``undef`` of ``context/0`` as "send the 2.2.0-style snapshot" (``ra_snapshot:context/2``).

Must not: run Raft or storage (the ``System`` does), or accept a machine it cannot run (the
reason goes back as ``{error, Reason}``, like a Ra server that fails to start).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from erl_interop.node.gen_server import From as GenFrom
from erl_interop.node.gen_server import GenServer
from erl_interop.node.process import ErlangError
from erl_interop.term import Atom, Map, Term
from pyra_dist.erlang.machines import ErlangRegistry, UnsupportedMachine
from pyra_dist.erlang.ra_module import RaModule
from pyra_dist.erlang.records import RecordError, server_id_from_term
from pyra_dist.erlang.transport import DistTransport
from pyra_dist.erlang.versions import RefusalLogLimiter
from pyra_dist.server import errors
from pyra_dist.server.system import ServerConfig

if TYPE_CHECKING:
    from erl_interop.node.node import Node
    from pyra_dist.server.system import System

__all__ = ["ErlangEdge", "attach_erlang_edge"]

_log = logging.getLogger("pyra_dist.erlang")

A = Atom
OK: Final = A("ok")
ERROR: Final = A("error")
SERVER_SUP: Final = A("ra_server_sup_sup")
"""The default system's ``server_sup`` name: ``prepare_server_stop_rpc`` returns it and
``ra:stop_server`` then calls ``supervisor:terminate_child({SrvSup, Node}, Parent)``."""

ATEN_BEAT_S: Final = 0.1
"""aten's ``heartbeat_interval`` (100 ms)."""

# Ra server config keys that map onto ServerConfig fields (Ra: ms; ra-internals §7.7).
_TIMING_KEYS: Final = {
    "broadcast_time": "broadcast_time_ms",
    "tick_timeout": "tick_timeout_ms",
    "await_condition_timeout": "await_condition_timeout_ms",
    "max_pipeline_count": "max_pipeline_count",
}


def _text(term: object) -> str:
    # cluster names and uids: atom, binary or string in Ra.
    if isinstance(term, Atom):
        return term.name
    if isinstance(term, bytes):
        return term.decode("utf-8", "replace")
    if isinstance(term, list) and all(type(c) is int for c in term):
        return "".join(map(chr, term))
    return str(term)


class _ServerSupSup(GenServer):
    """The ``ra_server_sup_sup`` process: ``supervisor:terminate_child(Sup, Pid)`` stops a server."""

    def __init__(self, edge: ErlangEdge) -> None:
        super().__init__()
        self.edge = edge

    async def handle_call(self, request: Term, from_: GenFrom) -> Term:
        if type(request) is tuple and len(request) == 2 and request[0] == A("terminate_child"):
            server = self.edge.transport.server_of_pid(request[1])
            if server is None:
                return (ERROR, A("not_found"))
            await self.edge.system.stop_server(server.server_id.name)
            return OK
        if request == A("which_children"):
            return [
                (
                    p.server_id.name,
                    self.edge.transport.pid_of(p.server_id.name),
                    A("worker"),
                    [A("ra_server_sup")],
                )
                for p in self.edge.system.processes()
            ]
        return (ERROR, (A("unsupported_call"), request))


class ErlangEdge:
    """A ``System`` made reachable from Erlang nodes through a started ``erl_interop`` node.

    Args:
        system: an opened (not yet entered) system whose ``node`` equals the node's name.
        node: the started distribution node.
        registry: machines and functions Erlang may name (a fresh one if None).
    """

    def __init__(self, system: System, node: Node, registry: ErlangRegistry | None = None) -> None:
        if str(node.name) != system.node:
            raise ValueError(f"system node {system.node!r} differs from the distribution node {node.name}")
        self.system = system
        self.node = node
        self.registry = registry if registry is not None else ErlangRegistry()
        local = system.local
        if system.transport is not local:
            raise TypeError("the system already has a non-local transport")
        self.transport = DistTransport(system, node, self.registry, local)
        system.transport = self.transport
        self.ra = RaModule(node)
        self._aten: asyncio.Task[None] | None = None
        self._refusals = RefusalLogLimiter(str(node.name), clock=lambda: system.now_ms() / 1000)

    def install(self) -> None:
        """Expose the rpc targets and register ``ra_server_sup_sup``; attach running servers."""
        n = self.node
        n.expose("ra_server_sup_sup", "start_server_rpc", self.start_server_rpc)
        n.expose("ra_server_sup_sup", "restart_server_rpc", self.restart_server_rpc)
        n.expose("ra_server_sup_sup", "prepare_server_stop_rpc", self.prepare_server_stop_rpc)
        n.expose("ra_server_sup_sup", "delete_server_rpc", self.delete_server_rpc)
        n.expose("ra_machine", "version", self.machine_version)
        self.ra.install()
        n.start_gen_server(_ServerSupSup(self), name=SERVER_SUP)
        for process in self.system.processes():
            self.transport.attach(process)
        # The transport logs refused Ra main terms on this logger; a Ra main peer repeats them.
        _log.addFilter(self._refusals)
        self._aten = n.task_group.create_task(self._aten_emitter(), name=f"aten-emitter-{n.name}")

    async def _aten_emitter(self) -> None:
        """Beat like ``aten_emitter`` (aten 0.5.8): ``{'$gen_cast', {hb, Node}}`` to every connected
        node's ``aten_sink`` every 100 ms (ra-internals §8.2).

        Erlang followers of a Python leader register our node with aten; without regular beats
        aten reports it ``down`` and the follower arms an election timer that only an AER cancels,
        so an idle Python leader would be deposed by a pre-vote it cannot refuse.
        """
        beat: Term = (A("$gen_cast"), (A("hb"), self.node.name))
        sink = A("aten_sink")
        while True:
            for peer in self.node.nodes():
                self.node.send((sink, peer), beat)
            await asyncio.sleep(ATEN_BEAT_S)

    def close(self) -> None:
        """Stop beating and unregister every server (the node and system stay up)."""
        if self._aten is not None:
            self._aten.cancel()
        _log.removeFilter(self._refusals)
        self.transport.close()

    # -- ra_server_sup_sup --------------------------------------------------------------------------

    def _system_ok(self, system: Term) -> bool:
        return system == A(self.system.name) and self.system.running

    async def start_server_rpc(self, system: Term, uid: Term, config: Term) -> Term:
        """``ra_server_sup_sup:start_server_rpc(System, UId, Config)`` -> ``{ok, Pid}`` or ``{error, R}``."""
        if not self._system_ok(system):
            return (ERROR, A("system_not_started"))
        if not isinstance(config, Mapping):
            return (ERROR, (A("badarg"), config))
        try:
            server_config = self._server_config(uid, config)
        except UnsupportedMachine as exc:
            # As a Ra server whose init fails: {error, {shutdown, {failed_to_start_child, Name, R}}}.
            _log.warning("%s: cannot start %r: %s", self.system.node, config.get(A("id")), exc)
            server = config.get(A("id"))
            name = server[0] if type(server) is tuple and len(server) == 2 else A("undefined")
            return (ERROR, (A("shutdown"), (A("failed_to_start_child"), name, exc.reason)))
        except (RecordError, KeyError) as exc:
            return (ERROR, (A("badarg"), repr(exc).encode()))
        name = server_config.server_id.name
        try:
            await self.system.start_server(server_config)
        except errors.AlreadyStarted:
            pid = self.transport.pid_of(name)
            reason: Term = (A("already_started"), pid)
            return (ERROR, (A("shutdown"), (A("failed_to_start_child"), A(name), reason)))
        except errors.NotNew:
            return (ERROR, A("not_new"))
        except errors.InvalidUid:
            return (ERROR, A("invalid_uid"))
        except errors.SystemNotStarted:
            return (ERROR, A("system_not_started"))
        return (OK, self._attach(name))

    def _attach(self, name: str) -> Term:
        process = self.system.process(name)
        if process is None:
            return A("undefined")
        return self.transport.attach(process)

    def _server_config(self, uid: Term, config: Mapping[Term, Term]) -> ServerConfig:
        server_id = server_id_from_term(config[A("id")])
        members = config.get(A("initial_members"), [])
        if type(members) is not list:
            raise RecordError("initial_members", members)
        machine_spec = config[A("machine")]
        machine = self.registry.machine(machine_spec)
        args: dict[str, object] = {}
        if type(machine_spec) is tuple and len(machine_spec) == 3 and isinstance(machine_spec[2], Mapping):
            args = {_text(k): v for k, v in machine_spec[2].items() if machine_spec[0] == A("module")}
        timing = {
            field: config[A(key)] for key, field in _TIMING_KEYS.items() if type(config.get(A(key))) is int
        }
        log_init = config.get(A("log_init_args"))
        if isinstance(log_init, Mapping) and type(log_init.get(A("snapshot_interval"))) is int:
            timing["snapshot_interval"] = log_init[A("snapshot_interval")]
        return ServerConfig(
            server_id=server_id,
            uid=_text(uid),
            cluster_name=_text(config.get(A("cluster_name"), server_id.name)),
            initial_members=tuple(server_id_from_term(m) for m in members),
            machine=machine,
            machine_args=args,
            **timing,  # type: ignore[arg-type]
        )

    async def restart_server_rpc(self, system: Term, server: Term, add_config: Term) -> Term:
        """``ra_server_sup_sup:restart_server_rpc(System, {Name, Node}, AddConfig)``."""
        if not self._system_ok(system):
            return (ERROR, A("system_not_started"))
        name = server_id_from_term(server).name
        try:
            await self.system.restart_server(name)
        except errors.NameNotRegistered:
            return (ERROR, A("name_not_registered"))
        except errors.AlreadyStarted:
            return (ERROR, (A("already_started"), self.transport.pid_of(name)))
        return (OK, self._attach(name))

    def prepare_server_stop_rpc(self, system: Term, name: Term) -> Term:
        """``ra_server_sup_sup:prepare_server_stop_rpc(System, Name)`` -> ``{ok, Parent, SrvSup}``."""
        if not self._system_ok(system):
            return (ERROR, A("system_not_started"))
        pid = self.transport.pid_of(_text(name)) if self.system.process(_text(name)) is not None else None
        return (OK, pid if pid is not None else A("undefined"), SERVER_SUP)

    async def delete_server_rpc(self, system: Term, name: Term) -> Term:
        """``ra_server_sup_sup:delete_server_rpc(System, Name)``: stop and delete data -> ``ok``."""
        if not self._system_ok(system):
            return (ERROR, A("system_not_started"))
        await self.system.force_delete_server(_text(name))
        return OK

    def machine_version(self, machine: Term) -> Term:
        """``ra_machine:version({machine, Mod, Args})``, answered as Ra's ``ra_machine`` does.

        Ra asks it before sending a snapshot (2.2.0 tolerates a failure, main does not, §2.5;
        main may pass the bare module). Ra's answer is ``Mod:version()``, or 0 when ``Mod`` has
        no ``version/0`` or is not loaded (its ``?OPT_CALL`` catches ``undef``):
        ``ra_machine_simple`` answers 0 whatever its fun, a module no Python machine is
        registered for answers 0, a registered one its ``version()``.

        Raises:
            ErlangError: a spec Ra would not match (``function_clause``) or a machine that fails
                to build from its config.
        """
        if type(machine) is Atom:
            machine = (A("machine"), machine, Map())  # main also takes the bare module
        if type(machine) is not tuple or len(machine) != 3 or machine[0] != A("machine"):
            raise ErlangError(A("function_clause"))
        module = machine[1]
        if module == A("ra_machine_simple") or (
            type(module) is Atom and module.name not in self.registry.modules
        ):
            return 0
        try:
            return self.registry.version(machine)
        except UnsupportedMachine as exc:
            raise ErlangError(exc.reason) from None


def attach_erlang_edge(system: System, node: Node, registry: ErlangRegistry | None = None) -> ErlangEdge:
    """Make ``system`` reachable from Erlang through ``node`` (call before ``async with system``).

    Args:
        system: an opened system, not entered, whose peers may be Erlang:
            ``await System.start(..., node=str(node.name), snapshot_codec=RaSnapshotCodec())``.
        node: the started ``erl_interop`` node.
        registry: machines and functions Erlang may name.

    Returns:
        The edge; call :meth:`ErlangEdge.install` once the system is entered.
    """
    return ErlangEdge(system, node, registry)
