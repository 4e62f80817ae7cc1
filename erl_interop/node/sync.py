"""A thin synchronous facade over :class:`Node` for plain scripts.

Owns: one background thread running a private event loop that hosts one Node, and blocking
wrappers that hand each operation to that loop (``run_coroutine_threadsafe``) and wait.

Must not: duplicate node logic (every method delegates to the asyncio Node), share a loop
or thread between SyncNodes (two SyncNodes in one process are independent), or touch the
Node from the calling thread directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from erl_interop.node.gen_server import GenServer
from erl_interop.node.mailbox import Match
from erl_interop.node.node import ExposedFunction, Node
from erl_interop.node.process import NORMAL, Dest, Process
from erl_interop.term import Atom, Pid, Reference, Term

__all__ = ["SyncNode", "SyncProcess"]

T = TypeVar("T")


class SyncProcess:
    """Blocking handle on an attached :class:`Process` of a :class:`SyncNode`."""

    def __init__(self, owner: SyncNode, process: Process) -> None:
        self._owner = owner
        self.process = process

    @property
    def pid(self) -> Pid:
        """The process id."""
        return self.process.pid

    def send(self, dest: Dest, message: Term) -> None:
        """Send ``message`` from this process (see :meth:`Process.send`)."""
        self._owner._call_soon(self.process.send, dest, message)

    def receive(self, match: Match | None = None, timeout: float | None = None) -> Any:
        """Block until a matching message arrives (see :meth:`Process.receive`).

        Raises:
            TimeoutError: nothing matched in time. ProcessExit: the process exited.
        """
        return self._owner.run(self.process.receive(match, timeout))

    def monitor(self, target: Pid | Atom | tuple[Atom | str, Atom | str]) -> Reference:
        """Monitor ``target`` (see :meth:`Process.monitor`)."""
        return self._owner._run_sync(self.process.monitor, target)

    def monitor_node(self, node: Atom | str, flag: bool = True) -> None:
        """``erlang:monitor_node/2`` (see :meth:`Process.monitor_node`)."""
        self._owner._run_sync(self.process.monitor_node, node, flag)

    def link(self, pid: Pid) -> None:
        """Link to ``pid``."""
        self._owner._run_sync(self.process.link, pid)

    def unlink(self, pid: Pid) -> None:
        """Unlink from ``pid`` (UNLINK_ID protocol)."""
        self._owner._run_sync(self.process.unlink, pid)

    def demonitor(self, ref: Reference, *, flush: bool = False) -> None:
        """Drop a monitor (see :meth:`Process.demonitor`)."""
        self._owner._run_sync(lambda: self.process.demonitor(ref, flush=flush))

    def exit(self, pid: Pid, reason: Term) -> None:
        """Send an exit signal (``exit/2``)."""
        self._owner._run_sync(self.process.exit, pid, reason)

    def alias(self) -> Reference:
        """Create an alias for this process."""
        return self._owner._run_sync(self.process.alias)

    def unalias(self, ref: Reference) -> None:
        """Deactivate an alias."""
        self._owner._run_sync(self.process.unalias, ref)

    def close(self, reason: Term = NORMAL) -> None:
        """End the process with ``reason`` (links and monitors fire as for any exit)."""
        self._owner._run_sync(self.process.close, reason)


class SyncNode:
    """A :class:`Node` running in a background thread, driven with blocking calls.

    Args:
        name, **options: as for :class:`Node`.

    Use as a context manager (``with SyncNode("py", cookie=...) as node:``) or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(self, name: str, **options: Any) -> None:
        self._name = name
        self._options = options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._node: Node | None = None
        self._stop: asyncio.Event | None = None
        self._ready: concurrent.futures.Future[Node] = concurrent.futures.Future()

    @property
    def node(self) -> Node:
        """The underlying asyncio Node (use only from its own loop)."""
        if self._node is None:
            raise RuntimeError("SyncNode not started")
        return self._node

    @property
    def name(self) -> Atom:
        """The full node name."""
        return self.node.name

    def start(self, timeout: float = 30.0) -> SyncNode:
        """Start the loop thread and the node; returns once it is registered and listening.

        Raises:
            ErlInteropError (or OSError): the node could not start.
        """
        if self._thread is not None:
            return self  # already started (e.g. by Node.start_sync, then used in a with block)
        self._thread = threading.Thread(target=self._thread_main, name=f"SyncNode {self._name}", daemon=True)
        self._thread.start()
        self._node = self._ready.result(timeout)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node (all processes exit ``shutdown``) and join the thread."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> SyncNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with Node(self._name, **self._options) as node:
                self._ready.set_result(node)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            else:
                raise

    # -- bridging ----------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the node's loop and block for its result."""
        assert self._loop is not None, "SyncNode not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        async def call() -> T:
            return fn(*args)

        return self.run(call())

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._run_sync(fn, *args)

    # -- API ---------------------------------------------------------------------------

    def send(self, dest: Dest, message: Term) -> None:
        """Send from the node's system process (see :meth:`Node.send`)."""
        self._call_soon(self.node.send, dest, message)

    def call(self, dest: Dest, request: Term, timeout: float | None = 5.0) -> Term:
        """Blocking :meth:`Node.call`."""
        return self.run(self.node.call(dest, request, timeout))

    def cast(self, dest: Dest, request: Term) -> None:
        """:meth:`Node.cast`."""
        self._call_soon(self.node.cast, dest, request)

    def ping(self, peer: str | Atom, timeout: float = 5.0) -> bool:
        """Blocking :meth:`Node.ping`."""
        return self.run(self.node.ping(peer, timeout))

    def rpc(
        self,
        peer: str | Atom,
        module: str | Atom,
        function: str | Atom,
        args: list[Term],
        timeout: float | None = 5.0,
    ) -> Term:
        """Blocking :meth:`Node.rpc`."""
        return self.run(self.node.rpc(peer, module, function, args, timeout))

    def connect(self, peer: str | Atom) -> bool:
        """Blocking :meth:`Node.connect`."""
        return self.run(self.node.connect(peer))

    def disconnect(self, peer: str | Atom) -> bool:
        """:meth:`Node.disconnect`."""
        return self._run_sync(self.node.disconnect, peer)

    def nodes(self) -> list[Atom]:
        """:meth:`Node.nodes`."""
        return self._run_sync(self.node.nodes)

    def whereis(self, name: str | Atom) -> Pid | None:
        """:meth:`Node.whereis`."""
        return self._run_sync(self.node.whereis, name)

    def expose(self, module: str | Atom, function: str | Atom, fn: ExposedFunction) -> None:
        """:meth:`Node.expose` (``fn`` runs on the node's thread)."""
        self._run_sync(self.node.expose, module, function, fn)

    def start_gen_server(self, server: GenServer, *, name: str | Atom | None = None) -> Pid:
        """:meth:`Node.start_gen_server`; returns the server's pid."""
        return self._run_sync(lambda: self.node.start_gen_server(server, name=name).pid)

    def process(self, *, name: str | Atom | None = None, trap_exit: bool = False) -> SyncProcess:
        """An attached process driven from this thread (see :meth:`Node.process`)."""
        proc = self._run_sync(lambda: self.node.process(name=name, trap_exit=trap_exit))
        return SyncProcess(self, proc)
