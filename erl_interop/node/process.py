"""Python processes: a pid, a mailbox, links, monitors, aliases and exit-signal semantics.

Owns: the per-process state a BEAM process has (link table with the new link protocol,
monitors it holds, monitors held on it, aliases, ``trap_exit``) and the reaction of one
process to each incoming signal (erlang-distribution.md §4.1, erts "Processes" reference
manual, sections "Links", "Monitors" and "Receiving Exit Signals").

Must not: route signals (the node does, through ``Node._emit``), own tasks (the node's
TaskGroup does), or touch the network.

A process either runs a body (``Node.spawn``: an asyncio task owned by the node's
TaskGroup, ended by returning, raising, or an exit signal) or is *attached*
(``Node.process()``): any coroutine can use it to send and receive, and closes it when done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, assert_never

from erl_interop.node.signals import (
    AliasMessage,
    Demonitor,
    Down,
    ExitSignal,
    Link,
    Message,
    Monitor,
    NamedMessage,
    Signal,
    SpawnReply,
    SpawnRequest,
    UnlinkId,
    UnlinkIdAck,
)
from erl_interop.term import Atom, Pid, Reference, Term

if TYPE_CHECKING:
    from erl_interop.node.mailbox import Match
    from erl_interop.node.node import Node

__all__ = [
    "DOWN",
    "EXIT",
    "ErlangError",
    "ErlangThrow",
    "Process",
    "ProcessExit",
    "exception_reason",
]

log = logging.getLogger(__name__)

NORMAL = Atom("normal")
KILL = Atom("kill")
KILLED = Atom("killed")
NOPROC = Atom("noproc")
NOCONNECTION = Atom("noconnection")
EXIT = Atom("EXIT")
DOWN = Atom("DOWN")
PROCESS = Atom("process")
PYTHON = Atom("python")
SPAWN_REPLY = Atom("spawn_reply")
NODEDOWN = Atom("nodedown")
NODEUP = Atom("nodeup")
OK = Atom("ok")
ERROR = Atom("error")


class ProcessExit(Exception):
    """The process exits (raise it to exit with ``reason``) or has exited (raised by receive).

    Args:
        reason: the exit reason term (``normal``, ``killed``, ``{python, Class, Message}``...).
    """

    def __init__(self, reason: Term) -> None:
        super().__init__(reason)
        self.reason = reason


class ErlangError(Exception):
    """Raise from an exposed function to fail with Erlang class ``error`` and exactly ``reason``."""

    def __init__(self, reason: Term) -> None:
        super().__init__(reason)
        self.reason = reason


class ErlangThrow(Exception):
    """Raise from an exposed function to ``throw(Value)`` to an Erlang caller."""

    def __init__(self, value: Term) -> None:
        super().__init__(value)
        self.value = value


def exception_reason(exc: BaseException) -> Term:
    """The Erlang term standing for a Python exception: ``{python, <<"Class">>, <<"message">>}``.

    ``ErlangError`` and ``ProcessExit`` keep their own reason term instead.
    """
    if isinstance(exc, ErlangError | ProcessExit):
        return exc.reason
    return (PYTHON, type(exc).__name__.encode(), str(exc).encode("utf-8", "replace"))


@dataclass(slots=True)
class _LinkState:
    # New link protocol (erts "Linking"): a link we unlinked stays, inactive, until the
    # peer acks our UNLINK_ID; exit signals arriving over it meanwhile are ignored.
    active: bool = True
    unlink_id: int | None = None


Dest = Pid | Atom | Reference | tuple[Atom | str, Atom | str]
"""Where a message can go: a pid, a local name, an alias, or ``(name, node)``."""


class Process:
    """One Python process of a :class:`Node`. Created by ``Node.spawn`` / ``Node.process``."""

    def __init__(
        self, node: Node, pid: Pid, *, trap_exit: bool = False, handler: Callable[[Any], None] | None = None
    ) -> None:
        from erl_interop.node.mailbox import Mailbox

        self.node = node
        self.pid = pid
        self.trap_exit = trap_exit
        self.mailbox = Mailbox(handler)
        self.name: Atom | None = None
        self.alive = True
        self.exit_reason: Term | None = None
        self.task: asyncio.Task[None] | None = None
        # peer pid -> link state (both directions of a link are the same entry).
        self._links: dict[Pid, _LinkState] = {}
        # Monitors this process holds: ref -> (target pid or name, target node).
        self._monitors: dict[Reference, tuple[Pid | Atom, Atom]] = {}
        # Monitors held on this process: ref -> (watcher, name used if monitored by name).
        self._monitored_by: dict[Reference, tuple[Pid, Atom | None]] = {}
        self._aliases: set[Reference] = set()
        # monitor_node/2: peer node -> how many {nodedown, Node} messages are owed.
        self._node_monitors: dict[Atom, int] = {}

    def __repr__(self) -> str:
        return f"<Process {self.pid!r} name={self.name!r} alive={self.alive}>"

    # -- user API ------------------------------------------------------------------------

    async def receive(self, match: Match | None = None, timeout: float | None = None) -> Any:  # noqa: ASYNC109  (the API takes Erlang-style timeouts)
        """Take the oldest matching message (Erlang's selective receive).

        Args:
            match: predicate over a message; None takes the oldest message.
            timeout: seconds; ``0`` polls; None waits forever.

        Returns:
            The message term.

        Raises:
            TimeoutError: nothing matched in time.
            ProcessExit: the process has exited (e.g. killed by an exit signal).
        """
        return await self.mailbox.receive(match, timeout)

    def send(self, dest: Dest, message: Term) -> None:
        """Send ``message`` to a pid, a local registered name, an alias, or ``(name, node)``.

        Never blocks and never fails, like ``!``: messages to dead pids, free names, inactive
        aliases and unreachable nodes are dropped. Connects on demand to a remote node.
        """
        self.node._send_from(self.pid, dest, message)

    def link(self, pid: Pid) -> None:
        """Link to ``pid`` (``link/1``). A dead or unreachable peer sends back ``noproc`` /
        ``noconnection`` as an exit signal."""
        self._check_alive()
        if pid == self.pid:
            return
        state = self._links.get(pid)
        if state is None:
            self._links[pid] = _LinkState()
        else:
            state.active, state.unlink_id = True, None
        self.node._emit(Link(sender=self.pid, to=pid))

    def unlink(self, pid: Pid) -> None:
        """Remove the link to ``pid`` (``unlink/1``, UNLINK_ID protocol)."""
        state = self._links.get(pid)
        if state is None or not state.active:
            return
        unlink_id = self.node._registry.new_unlink_id()
        state.active, state.unlink_id = False, unlink_id
        self.node._emit(UnlinkId(id=unlink_id, sender=self.pid, to=pid))

    def links(self) -> list[Pid]:
        """The pids this process is actively linked to."""
        return [pid for pid, state in self._links.items() if state.active]

    def monitor(self, target: Pid | Atom | tuple[Atom | str, Atom | str]) -> Reference:
        """Monitor a pid, a local name, or ``(name, node)`` (``monitor(process, T)``).

        Returns:
            The monitor reference. ``{'DOWN', Ref, process, Obj, Reason}`` arrives in the
            mailbox when the target dies (``noproc`` at once if it does not exist,
            ``noconnection`` if its node is lost). ``Obj`` is the pid, or ``(Name, Node)``.
        """
        self._check_alive()
        ref = self.node._registry.make_ref()
        name_or_pid, node = self.node._resolve_target(target)
        self._monitors[ref] = (name_or_pid, node)
        self.node._emit(Monitor(sender=self.pid, target=name_or_pid, node=node, ref=ref))
        return ref

    def demonitor(self, ref: Reference, *, flush: bool = False) -> None:
        """Drop a monitor (``demonitor/2``); with ``flush`` remove a DOWN already queued."""
        entry = self._monitors.pop(ref, None)
        if entry is not None:
            target, node = entry
            self.node._emit(Demonitor(sender=self.pid, target=target, node=node, ref=ref))
        if flush:
            self.mailbox.remove(lambda m: _is_down(m, ref))

    def monitor_node(self, node: Atom | str, flag: bool = True) -> None:
        """``erlang:monitor_node(Node, Flag)``: get ``{nodedown, Node}`` when the connection
        to ``node`` is lost or cannot be made (connecting now if needed). Each ``True`` call
        adds one message; ``False`` removes every pending one."""
        self._check_alive()
        peer = node if isinstance(node, Atom) else Atom(node)
        if not flag:
            self._node_monitors.pop(peer, None)
            return
        if peer == self.node.name:
            return
        self._node_monitors[peer] = self._node_monitors.get(peer, 0) + 1
        self.node._ensure_connection(peer)

    def exit(self, pid: Pid, reason: Term) -> None:
        """Send an exit signal to ``pid`` (``exit/2``; ``kill`` is untrappable)."""
        self.node._emit(ExitSignal(sender=self.pid, to=pid, reason=reason, link=False))

    def alias(self) -> Reference:
        """Create an alias (``alias/0``): messages sent to it reach this process until unalias."""
        self._check_alive()
        ref = self.node._registry.make_ref()
        self._aliases.add(ref)
        self.node._registry.aliases[ref] = self.pid
        return ref

    def unalias(self, ref: Reference) -> None:
        """Deactivate an alias; later messages to it are dropped."""
        self._aliases.discard(ref)
        self.node._registry.aliases.pop(ref, None)

    def _check_alive(self) -> None:
        # A dead process cannot create links, monitors or aliases: they would never fire.
        if not self.alive:
            raise ProcessExit(self.exit_reason)

    def make_ref(self) -> Reference:
        """A fresh reference of this node."""
        return self.node._registry.make_ref()

    def close(self, reason: Term = NORMAL) -> None:
        """End this process with ``reason`` (links and monitors fire as for any exit)."""
        self._terminate(reason)
        if self.task is not None and self.task is not asyncio.current_task() and not self.task.done():
            self.task.cancel()

    async def __aenter__(self) -> Process:
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.close(NORMAL if exc is None else exception_reason(exc))

    # -- signal handling (called by the node, on the loop) -----------------------------

    def _handle(self, signal: Signal) -> None:
        """React to one signal addressed to this (live) process."""
        match signal:
            case Message(message=message) | NamedMessage(message=message) | AliasMessage(message=message):
                self.mailbox.put(message)
            case Link(sender=sender):
                # A link entry that exists, even inactive, is left alone (erts "Linking").
                self._links.setdefault(sender, _LinkState())
            case UnlinkId(id=unlink_id, sender=sender):
                state = self._links.get(sender)
                if state is not None and state.active:
                    del self._links[sender]
                # The ack must precede any other signal from us to sender: _emit is ordered.
                self.node._emit(UnlinkIdAck(id=unlink_id, sender=self.pid, to=sender))
            case UnlinkIdAck(id=unlink_id, sender=sender):
                state = self._links.get(sender)
                if state is not None and not state.active and state.unlink_id == unlink_id:
                    del self._links[sender]
            case ExitSignal(sender=sender, reason=reason, link=from_link):
                if from_link:
                    state = self._links.get(sender)
                    if state is None or not state.active:
                        return  # arrived over an inactive or unknown link: ignored
                    del self._links[sender]
                self._on_exit_signal(sender, reason, from_link=from_link)
            case Monitor(sender=sender, target=target, ref=ref):
                self._monitored_by[ref] = (sender, target if isinstance(target, Atom) else None)
            case Demonitor(ref=ref):
                self._monitored_by.pop(ref, None)
            case Down(sender=sender, sender_node=sender_node, ref=ref, reason=reason):
                if self._monitors.pop(ref, None) is None:
                    return  # demonitored meanwhile
                obj: Term = (sender, sender_node) if isinstance(sender, Atom) else sender
                self.mailbox.put((DOWN, ref, PROCESS, obj, reason))
            case SpawnReply(req_id=req_id, flags=flags, result=result):
                if isinstance(result, Pid):
                    if flags & 1:
                        self._links.setdefault(result, _LinkState())
                    self.mailbox.put((SPAWN_REPLY, req_id, OK, result))
                else:
                    self._monitors.pop(req_id, None)
                    self.mailbox.put((SPAWN_REPLY, req_id, ERROR, result))
            case SpawnRequest():
                log.warning("%s: spawn request delivered to a process, dropped", self.pid)
            case _:
                assert_never(signal)

    def _on_exit_signal(self, sender: Pid, reason: Term, *, from_link: bool) -> None:
        # erts "Receiving Exit Signals": kill via exit/2 is untrappable and becomes killed.
        if not from_link and reason == KILL:
            self._die(KILLED)
        elif self.trap_exit:
            self.mailbox.put((EXIT, sender, reason))
        elif reason == NORMAL:
            if not from_link and sender == self.pid:
                self._die(NORMAL)
        else:
            self._die(reason)

    def _die(self, reason: Term) -> None:
        """Killed by a signal: terminate now, and stop the body at its next await."""
        self.close(reason)

    def _node_unreachable(self, peer: Atom) -> None:
        """``peer`` is down or cannot be reached: owed ``{nodedown, Node}`` messages are delivered."""
        for _ in range(self._node_monitors.pop(peer, 0)):
            self.mailbox.put((NODEDOWN, peer))

    def _node_down(self, peer: Atom) -> None:
        """The connection to ``peer`` is lost: every link and monitor over it fires ``noconnection``."""
        self._node_unreachable(peer)
        for watcher_ref, (watcher, _name) in list(self._monitored_by.items()):
            if watcher.node == peer:
                del self._monitored_by[watcher_ref]
        for ref, (target, node) in list(self._monitors.items()):
            if node == peer:
                self._handle(Down(sender=target, sender_node=node, to=self.pid, ref=ref, reason=NOCONNECTION))
        for pid in [pid for pid in self._links if pid.node == peer]:
            self._handle(ExitSignal(sender=pid, to=self.pid, reason=NOCONNECTION, link=True))

    def _terminate(self, reason: Term) -> None:
        """Exit with ``reason``: close the mailbox, notify links and monitors, free names."""
        if not self.alive:
            return
        self.alive = False
        self.exit_reason = reason
        self.mailbox.close(ProcessExit(reason))
        node = self.node
        node._forget(self)
        for pid, state in self._links.items():
            if state.active:
                node._emit(ExitSignal(sender=self.pid, to=pid, reason=reason, link=True))
        for ref, (watcher, name) in self._monitored_by.items():
            sender: Pid | Atom = self.pid if name is None else name
            node._emit(Down(sender=sender, sender_node=node.name, to=watcher, ref=ref, reason=reason))
        for ref, (target, target_node) in self._monitors.items():
            node._emit(Demonitor(sender=self.pid, target=target, node=target_node, ref=ref))
        self._links.clear()
        self._monitored_by.clear()
        self._monitors.clear()
        for ref in self._aliases:
            node._registry.aliases.pop(ref, None)
        self._aliases.clear()

    async def _run(self, body: Any, args: tuple[Any, ...]) -> None:
        """Task body for spawned processes: run ``body(self, *args)`` and exit with its outcome."""
        reason: Term = NORMAL
        try:
            await body(self, *args)
        except ProcessExit as exc:
            reason = exc.reason
        except asyncio.CancelledError:
            # Killed by an exit signal (reason already set) or the node is shutting down.
            reason = self.exit_reason if self.exit_reason is not None else Atom("shutdown")
        except Exception as exc:
            reason = exception_reason(exc)
            log.error("process %r crashed: %r", self.pid, exc, exc_info=exc)
        finally:
            self._terminate(reason)


def _is_down(message: Term, ref: Reference) -> bool:
    return isinstance(message, tuple) and len(message) == 5 and message[0] == DOWN and message[1] == ref
