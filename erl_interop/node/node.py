"""The Node users program against: a named Erlang distribution node made of Python processes.

Owns: the lifetime of one node (EPMD registration, listener, connections, system services,
every process task, all held by one ``asyncio.TaskGroup``), the routing of signals to local
processes or to peers, and the public API (spawn, send, call, cast, ping, rpc, expose).

Must not: keep module-level state (two Nodes in one interpreter are independent), block the
loop, or implement wire formats (``erl_interop.dist`` does) or per-process semantics
(``process.py`` does).

Theory of operation: every interaction between processes is a :mod:`signals` value passed
to :meth:`Node._emit`. A signal for this node goes through a FIFO run queue drained on the
spot (so delivery order equals emission order, and a chain of exits never recurses deeply);
a signal for another node goes to :class:`~erl_interop.node.remote.Peers`, which connects
on demand and keeps per-peer order (erlang-distribution.md §4.1 "Ordering").
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, assert_never

from erl_interop.errors import ErlInteropError
from erl_interop.node import signals as s
from erl_interop.node.process import NODEDOWN, NODEUP, NOPROC, Dest, Process
from erl_interop.node.registry import Registry
from erl_interop.term import Atom, Pid, Reference, Term

if TYPE_CHECKING:
    from types import TracebackType

    from erl_interop.node.gen_server import GenServer
    from erl_interop.node.global_server import GlobalNameServer
    from erl_interop.node.remote import Peers
    from erl_interop.node.rpc import RpcService
    from erl_interop.node.sync import SyncNode

__all__ = ["Node", "split_node_name"]

log = logging.getLogger(__name__)

ExposedFunction = Callable[..., Any]
"""A Python function callable from Erlang: plain or ``async``, called with the Erlang arguments."""


def split_node_name(name: str, long_names: bool | None) -> tuple[str, bool]:
    """Complete ``name`` into ``alive@host`` and decide short vs long names.

    Args:
        name: ``"py"`` or ``"py@host"``.
        long_names: force ``-name`` (True) or ``-sname`` (False); None infers it from the host
            (a dot or an IP address means long names, as ``erl`` requires).

    Returns:
        ``(full_name, long_names)``.

    Raises:
        ValueError: a short name with a dotted host, or an empty part.
    """
    if "@" in name:
        alive, host = name.split("@", 1)
    else:
        alive = name
        host = "127.0.0.1" if long_names else socket.gethostname().split(".")[0]
    if not alive or not host:
        raise ValueError(f"bad node name {name!r}")
    if long_names is None:
        long_names = "." in host
    if not long_names and "." in host:
        raise ValueError(f"short node names cannot have a dotted host: {name!r} (use long_names=True)")
    return f"{alive}@{host}", long_names


class Node:
    """A Python Erlang node. Use as ``async with Node("py", cookie=...) as node:``.

    Args:
        name: ``"alive"`` or ``"alive@host"``.
        cookie: the distribution cookie; None reads ``ERLANG_COOKIE`` then ``~/.erlang.cookie``.
        hidden: connect as a hidden node (default). Hidden nodes get no ``global``/``rex``
            traffic and are listed by ``nodes(hidden)`` only (erlang-distribution.md §5).
        long_names: ``-name`` style names; None infers from the host part.
        net_ticktime: seconds; a silent peer is dropped after about this long (``-kernel
            net_ticktime``; keep it equal on every node of a cluster).
        distributed: False starts a node with no listener, EPMD registration or peers
            (for tests and single-node programs); its pids have creation 0.
    """

    def __init__(
        self,
        name: str,
        *,
        cookie: str | None = None,
        hidden: bool = True,
        long_names: bool | None = None,
        distributed: bool = True,
        net_ticktime: float = 60.0,
    ) -> None:
        full, long_names = split_node_name(name, long_names)
        self.name = Atom(full)
        self.cookie = cookie
        self.hidden = hidden
        self.long_names = long_names
        self.distributed = distributed
        self.net_ticktime = net_ticktime
        self.creation = 0
        self._registry: Registry[Process] = Registry(self.name, 0)
        self._run_queue: deque[s.Signal] = deque()
        self._draining = False
        self._tg: asyncio.TaskGroup | None = None
        self._peers: Peers | None = None
        self._rpc: RpcService | None = None
        self._system: Process | None = None
        self._global: GlobalNameServer | None = None
        self._exposed: dict[tuple[Atom, Atom], ExposedFunction] = {}
        # net_kernel:monitor_nodes subscribers: get {nodeup, N} / {nodedown, N} for every peer.
        self._node_subscribers: set[Pid] = set()
        self._started = False
        self._stopping = False

    def __repr__(self) -> str:
        return f"<Node {self.name!r} creation={self.creation}>"

    @classmethod
    def start_sync(cls, name: str, **options: Any) -> SyncNode:
        """Start a node in a background thread and return its blocking facade (see ``SyncNode``)."""
        from erl_interop.node.sync import SyncNode

        return SyncNode(name, **options).start()

    # -- lifetime --------------------------------------------------------------------------

    @classmethod
    async def start(cls, name: str, **options: Any) -> Node:
        """Create and start a node (``node = await Node.start(...)``); end it with ``await
        node.stop()`` or ``async with node:``, from the same task."""
        node = cls(name, **options)
        await node.__aenter__()
        return node

    async def stop(self) -> None:
        """Stop the node: every process exits ``shutdown``, connections and EPMD registration close."""
        await self.__aexit__(None, None, None)

    async def __aenter__(self) -> Node:
        if self._started:
            if self._stopping:
                raise RuntimeError("a Node cannot be restarted; create a new one")
            return self  # already started with Node.start(): `async with node:` just scopes it
        self._started = True
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        try:
            if self.distributed:
                from erl_interop.node.remote import Peers

                peers = Peers(self)
                self._peers = peers  # set first: a failed start is still closed by _shutdown
                self.creation = await peers.start()
            self._registry = Registry(self.name, self.creation)
            self._system = self.process()
            await self._start_services()
        except BaseException:
            await self._shutdown()
            self._tg = None
            await tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tg is None:
            return  # never started, or already stopped
        await self._shutdown()
        # Hand the TaskGroup only a cancellation (it needs it to uncancel correctly); any
        # other exception of the body propagates as itself, not wrapped in an ExceptionGroup.
        tg, self._tg = self._tg, None
        if exc_type is None:
            await tg.__aexit__(None, None, None)
        elif issubclass(exc_type, asyncio.CancelledError):
            await tg.__aexit__(exc_type, exc, tb)
        else:
            # The body failed: the TaskGroup cancels every task still attached to the node (user
            # tasks such as a beat loop included; waiting for them would hang the exit) and wraps
            # the body's exception in a group. When that exception is the only one, return so that
            # `async with` re-raises it as itself.
            try:
                await tg.__aexit__(exc_type, exc, tb)
            except BaseExceptionGroup as group:
                others = [e for e in group.exceptions if e is not exc]
                if others:
                    raise BaseExceptionGroup(group.message, others) from exc

    async def _start_services(self) -> None:
        from erl_interop.node.net_kernel import start_net_kernel
        from erl_interop.node.rpc import RpcService

        start_net_kernel(self)
        self._rpc = RpcService(self)
        self._rpc.start()
        if not self.hidden:
            from erl_interop.node.global_server import start_global_name_server

            self._global = start_global_name_server(self)

    async def _shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        shutdown = Atom("shutdown")
        for proc in self._registry.all_processes():
            proc.close(shutdown)
        if self._peers is not None:
            await self._peers.close()
        # Let cancelled process tasks run their finally blocks before the TaskGroup exits.
        await asyncio.sleep(0)

    @property
    def task_group(self) -> asyncio.TaskGroup:
        """The TaskGroup owning every task of this node (to attach user tasks to its life)."""
        if self._tg is None:
            raise RuntimeError("node not started: use 'async with Node(...)'")
        return self._tg

    # -- processes -------------------------------------------------------------------------

    def spawn(
        self,
        body: Callable[..., Awaitable[Any]],
        *args: Any,
        name: str | Atom | None = None,
        trap_exit: bool = False,
        link: Pid | None = None,
    ) -> Process:
        """Start a process running ``await body(proc, *args)`` as a task of this node.

        The process exits ``normal`` when ``body`` returns, with ``ProcessExit.reason`` when it
        raises that, and with ``{python, Class, Message}`` on any other exception.

        Args:
            body: the coroutine function; it receives the new :class:`Process` first.
            args: more arguments for ``body``.
            name: register the process under this name.
            trap_exit: turn exit signals into ``{'EXIT', From, Reason}`` messages.
            link: link the new process to this pid before it runs (``spawn_link``).

        Returns:
            The new process (its ``pid``, ``task``...).
        """
        proc = self._new_process(name=name, trap_exit=trap_exit)
        if link is not None:
            self._link_pair(proc, link)
        proc.task = self.task_group.create_task(proc._run(body, args), name=f"{self.name}:{proc.pid}")
        return proc

    def process(
        self,
        *,
        name: str | Atom | None = None,
        trap_exit: bool = False,
        handler: Callable[[Term], None] | None = None,
    ) -> Process:
        """Create an attached process: a pid and mailbox used by the calling code (no task).

        Close it with ``proc.close()`` or use ``async with node.process() as proc:``.

        Args:
            name: register the process under this name.
            trap_exit: turn exit signals into ``{'EXIT', From, Reason}`` messages.
            handler: instead of queueing messages for ``receive``, call ``handler(message)`` on
                the loop as each one arrives, in order (a receive loop without a task: no
                wake-up per message). It must not block; an exception it raises reaches the
                sender of that message (for a peer's message: logged by the connection).
        """
        return self._new_process(name=name, trap_exit=trap_exit, handler=handler)

    def _new_process(
        self, *, name: str | Atom | None, trap_exit: bool, handler: Callable[[Term], None] | None = None
    ) -> Process:
        if self._stopping:
            raise RuntimeError("node is stopping")
        proc = Process(self, self._registry.new_pid(), trap_exit=trap_exit, handler=handler)
        self._registry.processes[proc.pid] = proc
        if name is not None:
            self.register(name, proc.pid)
        return proc

    def _link_pair(self, proc: Process, other: Pid) -> None:
        # spawn_link: the link exists before the new process runs; the other side is told.
        proc.link(other)

    def register(self, name: str | Atom, pid: Pid) -> None:
        """Register a local ``pid`` under ``name`` (``register/2``).

        Raises:
            ValueError: the name is taken, the pid has a name, or the pid is not a live local process.
        """
        atom = _atom(name)
        proc = self._registry.process(pid)
        if proc is None:
            raise ValueError(f"{pid!r} is not a live process of {self.name}")
        self._registry.register(atom, pid)
        proc.name = atom

    def unregister(self, name: str | Atom) -> None:
        """Remove a registered name (no error if free)."""
        atom = _atom(name)
        pid = self._registry.whereis(atom)
        self._registry.unregister(atom)
        proc = None if pid is None else self._registry.process(pid)
        if proc is not None:
            proc.name = None

    def whereis(self, name: str | Atom) -> Pid | None:
        """The local pid registered under ``name``, or None."""
        return self._registry.whereis(_atom(name))

    def processes(self) -> list[Pid]:
        """Pids of the live processes of this node."""
        return list(self._registry.processes)

    # -- messaging -------------------------------------------------------------------------

    def send(self, dest: Dest, message: Term) -> None:
        """Send ``message`` from the node's system process (see :meth:`Process.send`)."""
        assert self._system is not None, "node not started"
        self._send_from(self._system.pid, dest, message)

    def _send_from(self, sender: Pid, dest: Dest, message: Term) -> None:
        match dest:
            case Pid():
                self._emit(s.Message(sender=sender, to=dest, message=message))
            case Reference():
                self._emit(s.AliasMessage(sender=sender, alias=dest, message=message))
            case Atom():
                self._emit(s.NamedMessage(sender=sender, name=dest, node=self.name, message=message))
            case (name, node):
                self._emit(s.NamedMessage(sender=sender, name=_atom(name), node=_atom(node), message=message))
            case _:
                raise TypeError(f"cannot send to {dest!r}")

    def _resolve_target(self, target: Pid | Atom | tuple[Atom | str, Atom | str]) -> tuple[Pid | Atom, Atom]:
        match target:
            case Pid():
                return target, target.node
            case Atom():
                return target, self.name
            case (name, node):
                return _atom(name), _atom(node)
            case _:
                raise TypeError(f"cannot monitor {target!r}")

    def _emit(self, signal: s.Signal) -> None:
        """Route one signal: run-queue for local targets, the peer's channel for remote ones."""
        if s.destination(signal) != self.name:
            if self._peers is None:
                self._unreachable(signal)
            else:
                self._peers.send(signal)
            return
        self._emit_local(signal)

    def _receive_named(self, sender: Pid, name: Atom, message: Term) -> None:
        """A REG_SEND from a peer to ``name`` here: ``_emit_local(NamedMessage(...))`` without
        building the signal when nothing is queued ahead of it (the hot path of a server that
        peers cast to). Same order and same drops as the signal path."""
        if self._draining or self._run_queue:
            self._emit_local(s.NamedMessage(sender=sender, name=name, node=self.name, message=message))
            return
        pid = self._registry.whereis(name)
        proc = None if pid is None else self._registry.process(pid)
        if proc is None:
            return
        self._draining = True
        try:
            proc.mailbox.put(message)  # Process._handle of a NamedMessage
            while self._run_queue:
                self._deliver(self._run_queue.popleft())
        finally:
            self._draining = False

    def _emit_local(self, signal: s.Signal) -> None:
        """Deliver a signal addressed to this node, in emission order (see ``_emit``)."""
        self._run_queue.append(signal)
        if self._draining:
            return
        self._draining = True
        try:
            while self._run_queue:
                self._deliver(self._run_queue.popleft())
        finally:
            self._draining = False

    def _deliver(self, signal: s.Signal) -> None:
        """Deliver a signal addressed to this node (from a local process or a peer)."""
        reg = self._registry
        match signal:
            case s.Message(to=to):
                self._to_pid(to, signal)
            case s.NamedMessage(name=name):
                pid = reg.whereis(name)
                if pid is not None:
                    self._to_pid(pid, signal)
            case s.AliasMessage(alias=alias):
                owner = reg.aliases.get(alias)
                if owner is not None:
                    self._to_pid(owner, signal)
            case s.Link(sender=sender, to=to):
                proc = reg.process(to)
                if proc is None:
                    # Linking to a dead or unknown process: the linker gets exit noproc (V, §4.1).
                    self._emit(s.ExitSignal(sender=to, to=sender, reason=NOPROC, link=True))
                else:
                    proc._handle(signal)
            case s.Monitor(sender=sender, target=target, ref=ref):
                pid = reg.whereis(target) if isinstance(target, Atom) else target
                proc = None if pid is None else reg.process(pid)
                if proc is None:
                    self._emit(
                        s.Down(sender=target, sender_node=self.name, to=sender, ref=ref, reason=NOPROC)
                    )
                else:
                    proc._handle(signal)
            case s.Demonitor(target=target):
                pid = reg.whereis(target) if isinstance(target, Atom) else target
                if pid is not None:
                    self._to_pid(pid, signal)
            case s.UnlinkId(to=to) | s.UnlinkIdAck(to=to) | s.ExitSignal(to=to) | s.Down(to=to):
                self._to_pid(to, signal)
            case s.SpawnReply(to=to):
                self._to_pid(to, signal)
            case s.SpawnRequest():
                if self._rpc is not None:
                    self._rpc.handle_spawn_request(signal)
            case _:
                assert_never(signal)

    def _to_pid(self, pid: Pid, signal: s.Signal) -> None:
        proc = self._registry.process(pid)
        if proc is not None:
            proc._handle(signal)

    def _unreachable(self, signal: s.Signal) -> None:
        """A signal for a node we cannot reach: links and monitors fire ``noconnection``."""
        from erl_interop.node.process import NOCONNECTION

        match signal:
            case s.Link(sender=sender, to=to):
                self._emit(s.ExitSignal(sender=to, to=sender, reason=NOCONNECTION, link=True))
            case s.Monitor(sender=sender, target=target, node=node, ref=ref):
                self._emit(s.Down(sender=target, sender_node=node, to=sender, ref=ref, reason=NOCONNECTION))
            case s.SpawnRequest(req_id=req_id, sender=sender):
                self._emit(s.SpawnReply(req_id=req_id, to=sender, flags=0, result=NOCONNECTION))
            case _:
                pass  # messages and other signals to an unreachable node are dropped, as with '!'

    def _forget(self, proc: Process) -> None:
        """Called by a process as it terminates: free its pid and name."""
        self._registry.processes.pop(proc.pid, None)
        if proc.name is not None and self._registry.whereis(proc.name) == proc.pid:
            self._registry.unregister(proc.name)

    def _node_up(self, peer: Atom, published: bool) -> None:
        """A connection to ``peer`` is up; a visible pair of nodes tells global we are in sync."""
        if published and self._global is not None:
            self._global.announce(peer)
        self._notify_subscribers(NODEUP, peer)

    def _node_down(self, peer: Atom) -> None:
        """The connection to ``peer`` closed: fan ``noconnection`` out to every process."""
        for proc in self._registry.all_processes():
            proc._node_down(peer)
        self._notify_subscribers(NODEDOWN, peer)

    def _connect_failed(self, peer: Atom) -> None:
        """A connection attempt to ``peer`` failed: ``monitor_node`` watchers get ``nodedown``."""
        for proc in self._registry.all_processes():
            proc._node_unreachable(peer)

    def _notify_subscribers(self, kind: Atom, peer: Atom) -> None:
        for pid in list(self._node_subscribers):
            proc = self._registry.process(pid)
            if proc is None:
                self._node_subscribers.discard(pid)
            else:
                proc.mailbox.put((kind, peer))

    def _ensure_connection(self, peer: Atom) -> None:
        """Start connecting to ``peer`` unless connected; unreachable now means ``nodedown`` now."""
        if self._peers is None:
            self._connect_failed(peer)
        else:
            self._peers.ensure(peer)

    def monitor_nodes(self, pid: Pid, flag: bool = True) -> None:
        """``net_kernel:monitor_nodes(Flag)`` for the local process ``pid``: it receives
        ``{nodeup, Node}`` and ``{nodedown, Node}`` for every connection (hidden ones included)."""
        if flag:
            self._node_subscribers.add(pid)
        else:
            self._node_subscribers.discard(pid)

    # -- services and calls ----------------------------------------------------------------

    def expose(
        self, module: str | Atom, function: str | Atom, fn: ExposedFunction, *, thread: bool = False
    ) -> None:
        """Allow Erlang to call ``module:function(Args...)`` on this node (rpc, erpc, spawn).

        Nothing else is callable: unknown functions (and arities ``fn`` cannot take) fail with
        ``undef`` like Erlang.

        Args:
            module: the Erlang module name the callers use.
            function: the function name.
            fn: the Python callable (plain or ``async``), called with the arguments.
            thread: run a plain (blocking) ``fn`` in a worker thread instead of on the loop.
        """
        if thread:
            blocking = fn

            @functools.wraps(blocking)
            async def in_thread(*args: Any) -> Any:
                return await asyncio.to_thread(blocking, *args)

            fn = in_thread
        self._exposed[(_atom(module), _atom(function))] = fn

    def exposed(self, module: Atom, function: Atom) -> ExposedFunction | None:
        """The Python function exposed as ``module:function``, or None."""
        return self._exposed.get((module, function))

    def start_gen_server(self, server: GenServer, *, name: str | Atom | None = None) -> Process:
        """Run ``server`` as a process (see :class:`~erl_interop.node.gen_server.GenServer`)."""
        return self.spawn(server._loop, name=name, trap_exit=server.trap_exit)

    async def call(self, dest: Dest, request: Term, timeout: float | None = 5.0) -> Term:  # noqa: ASYNC109  (the API takes Erlang-style timeouts)
        """``gen_server:call(Dest, Request, Timeout)`` into an Erlang or Python server.

        Raises:
            NoProc: no such process. NodeDown: its node is unreachable or went down.
            CallTimeout: no reply in time. CallExit: the server exited during the call.
        """
        from erl_interop.node.gen_server import call

        return await call(self, dest, request, timeout)

    def cast(self, dest: Dest, request: Term) -> None:
        """``gen_server:cast(Dest, Request)``: send ``{'$gen_cast', Request}``."""
        self.send(dest, (Atom("$gen_cast"), request))

    async def ping(self, peer: str | Atom, timeout: float = 5.0) -> bool:  # noqa: ASYNC109  (the API takes Erlang-style timeouts)
        """``net_adm:ping(Peer)``: True (pong) if ``peer`` answers ``{is_auth, Us}`` with ``yes``."""
        try:
            reply = await self.call((Atom("net_kernel"), _atom(peer)), (Atom("is_auth"), self.name), timeout)
        except ErlInteropError:
            return False
        return bool(reply == Atom("yes"))

    async def rpc(
        self,
        peer: str | Atom,
        module: str | Atom,
        function: str | Atom,
        args: list[Term],
        timeout: float | None = 5.0,  # noqa: ASYNC109  (Erlang-style timeout argument)
    ) -> Term:
        """``erpc:call(Peer, Module, Function, Args, Timeout)`` on a BEAM (or Python) node.

        Returns:
            The function's return value.

        Raises:
            RpcError: the remote function raised (``error``/``exit``/``throw`` with its reason).
            NodeDown, CallTimeout: as for :meth:`call`.
        """
        from erl_interop.node.rpc import erpc_call

        return await erpc_call(self, _atom(peer), _atom(module), _atom(function), args, timeout)

    async def connect(self, peer: str | Atom) -> bool:
        """Connect to ``peer`` now (``net_kernel:connect_node/1``); True on success."""
        if self._peers is None:
            return False
        return await self._peers.connect(_atom(peer))

    def disconnect(self, peer: str | Atom) -> bool:
        """Drop the connection to ``peer`` (``erlang:disconnect_node/1``); links and monitors
        over it fire ``noconnection``. Returns False if there was no connection."""
        return False if self._peers is None else self._peers.disconnect(_atom(peer))

    def nodes(self) -> list[Atom]:
        """Names of the peers currently connected."""
        return [] if self._peers is None else self._peers.connected()


def _atom(value: str | Atom) -> Atom:
    return value if isinstance(value, Atom) else Atom(value)
