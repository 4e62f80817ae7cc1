"""One Ra server as one asyncio task: mailbox -> ``core.handle`` -> effects, in order.

Owns: ``ServerProcess``: the server's mailbox (a deque drained in batches), its task's loop, the
bookkeeping the API reads without asking the core (role, leader, members), pending client calls
(failed with ``NoProc`` when the server stops, like a gen call's monitor firing), and the two
ways to stop: orderly (``stop``) and abrupt (``kill``: the task is cancelled, in-memory state is
dropped, only what reached the disk survives).

Must not: decide Raft (the core does), touch files (the log and meta objects do, through the effect
interpreter), or create its own timers (the system's ``TimerService`` holds them).

Batching: the task wakes once per burst of messages and handles everything queued, so a leader
receiving 500 pipelined commands runs one loop iteration, and the WAL coalesces all appends made in
that iteration into one write and one fsync (group commit). Consecutive commands in a burst are handed
to the core as one ``CommandBatch`` (one append, one AER per peer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Hashable, Iterator
from typing import Protocol

from pyra_dist.core.effects import Effect, PersistMeta, Stop
from pyra_dist.core.events import CommandBatch, CommandRequest, Event, TimerFired
from pyra_dist.server.effects import BARRIERS, EffectInterpreter, ServerStopped
from pyra_dist.server.errors import NoProc
from pyra_dist.types import Role, ServerId

_log = logging.getLogger("pyra_dist.server")

# Effects deliver_now leaves to the task: the vote sync must be awaited, a stop ends the task.
_TASK_ONLY = (PersistMeta, Stop)


class Core(Protocol):
    """What a server process needs from the Raft core (``pyra_dist.core.RaftCore``)."""

    def handle(self, event: Event) -> list[Effect]:
        """Advance the core by one input."""
        ...


class ServerProcess:
    """The running form of one Ra server.

    Args:
        server_id: ``{Name, Node}``.
        uid: the server's unique id (directory name, WAL writer key).
        cluster_name: informational (leaderboard).
        core: the Raft core, already recovered from disk.
        interpreter: executes the core's effects for this process.
    """

    __slots__ = (
        "_calls",
        "_crash",
        "_inline",
        "_interpreter",
        "_mailbox",
        "_ready",
        "_stopped",
        "_waiter",
        "cluster_name",
        "core",
        "leader_id",
        "members",
        "role",
        "server_id",
        "stop_reason",
        "task",
        "uid",
    )

    def __init__(
        self, server_id: ServerId, uid: str, cluster_name: str, core: Core, interpreter: EffectInterpreter
    ) -> None:
        self.server_id = server_id
        self.uid = uid
        self.cluster_name = cluster_name
        self.core = core
        self._interpreter = interpreter
        self._mailbox: deque[Event] = deque()
        # Effects of an event handled by handle_now, to execute before the next burst.
        self._ready: list[Effect] = []
        self._waiter: asyncio.Future[None] | None = None
        self._calls: set[asyncio.Future[object]] = set()
        self._stopped = False
        # True while deliver_now runs the core outside the task; an exception it raised, for the task.
        self._inline = False
        self._crash: Exception | None = None
        self.task: asyncio.Task[None] | None = None
        self.role = Role.FOLLOWER
        self.leader_id: ServerId | None = None
        self.members: tuple[ServerId, ...] = ()
        self.stop_reason: object = None

    def __repr__(self) -> str:
        return f"<ServerProcess {self.server_id} {self.role.value}>"

    @property
    def busy(self) -> bool:
        """Whether the task has events or effects queued (it will run again without new mail)."""
        return bool(self._mailbox) or bool(self._ready) or self._inline

    @property
    def stopped(self) -> bool:
        """Whether the process has stopped (messages to it are dropped)."""
        return self._stopped

    # -- inputs --------------------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Queue ``event`` (never blocks; dropped once stopped, like a send to a dead pid)."""
        if self._stopped:
            return
        self._mailbox.append(event)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def deliver_now(self, event: Event) -> None:
        """Like ``deliver``, but a parked server handles ``event`` at once, in the caller's stack.

        For peer messages and log notifications: each saves a task wake-up (a future, a loop
        iteration and a task step) and, more importantly, the wait behind everything else queued on
        the loop, which lies on the critical path of every replicated command (leader -> follower
        append -> WAL; WAL -> follower -> leader commit -> client reply). Safe for the same reason as
        ``handle_now``: a parked task is between bursts and the mailbox is empty, so nothing is
        reordered. The effects are executed at once unless they must be awaited or end the server
        (``PersistMeta``, ``Stop``): those go to the task. Commands always go through the mailbox so
        that a burst of them still becomes one ``CommandBatch``. A nested delivery to a server that
        is already handling something (this one, or a caller up the stack) is queued as usual, so
        the nesting depth is bounded by the number of servers.
        """
        if (
            self._stopped
            or self._inline
            or self._waiter is None
            or self._mailbox
            or self._ready
            or type(event) is CommandRequest
        ):
            self.deliver(event)
            return
        self._inline = True
        try:
            effects = self.core.handle(event)
            if effects:
                if any(isinstance(effect, _TASK_ONLY) for effect in effects):
                    self._ready = effects
                    self._wake()
                else:
                    self._interpreter.execute_now(self, effects)
        except Exception as exc:
            # The server crashes exactly as if its task had raised this (see run).
            self._crash = exc
            self._wake()
        finally:
            self._inline = False

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """Treat the server as busy for the duration: ``deliver_now`` queues instead of nesting.

        For code that acts on the server's behalf outside its task and ``deliver_now`` (the
        interpreter sending held AERs): a peer's immediate answer must wait in the mailbox, or a
        nested execution could send to that peer ahead of what is still being sent.
        """
        previous = self._inline
        self._inline = True
        try:
            yield
        finally:
            self._inline = previous

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def handle_now(self, event: Event) -> None:
        """Handle ``event`` at once if the task is parked, else queue it like ``deliver``.

        Used for the node tick: an idle leader's tick usually produces no effect, and handling it here
        spares waking the task (thousands of idle leaders tick every second). Safe because a parked
        task is between bursts: the core is not in the middle of anything. Effects, if any, are handed
        to the task, which executes them before its next burst.
        """
        waiter = self._waiter
        if self._stopped or self._inline or waiter is None or self._mailbox or self._ready:
            self.deliver(event)
            return
        effects = self.core.handle(event)
        if effects:
            self._ready = effects
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def timer_fired(self, kind: Hashable) -> None:
        """``TimerOwner`` callback: the system's timer service says ``kind`` expired."""
        self.deliver(TimerFired(key=kind))  # type: ignore[arg-type]

    def track_call(self, future: asyncio.Future[object]) -> None:
        """Fail ``future`` with ``NoProc`` if this server stops before answering it."""
        if self._stopped:
            if not future.done():
                future.set_exception(NoProc(f"{self.server_id} stopped", server_id=self.server_id))
            return
        self._calls.add(future)
        future.add_done_callback(self._calls.discard)

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, initial: list[Effect]) -> None:
        """The task body: execute ``initial`` (recovery effects), then handle mail until stopped.

        Returns when a ``Stop`` effect ends the server; cancellation (``kill``) propagates.
        """
        handle = self.core.handle
        execute = self._interpreter.execute
        try:
            if initial:
                await execute(self, initial)
            while True:
                if self._crash is not None:
                    crash, self._crash = self._crash, None
                    raise crash
                if self._ready:
                    ready, self._ready = self._ready, []
                    await execute(self, ready)
                mailbox = self._mailbox
                if not mailbox:
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiter = waiter
                    await waiter
                    continue
                # Handle the whole burst: one wake-up, many events, one execution of their effects
                # (see the module docstring). Effects the core may depend on before its next event
                # (BARRIERS: votes, snapshots, truncation, stop) are executed right away.
                # Consecutive commands become one CommandBatch (Ra's {commands, Cmds}): a leader appends
                # them with one AppendToLog and sends one AER per peer for the whole run.
                batch: list[Effect] = []
                remaining = len(mailbox)
                while remaining:
                    event = mailbox.popleft()
                    remaining -= 1
                    if remaining and type(event) is CommandRequest and type(mailbox[0]) is CommandRequest:
                        commands = [event]
                        newest = event.system_time
                        while remaining and type(mailbox[0]) is CommandRequest:
                            command = mailbox.popleft()
                            remaining -= 1
                            commands.append(command)  # type: ignore[arg-type]
                            newest = max(newest, command.system_time)  # type: ignore[union-attr]
                        event = CommandBatch(commands=tuple(commands), system_time=newest)
                    effects = handle(event)
                    if effects:
                        batch.extend(effects)
                        for effect in effects:
                            if isinstance(effect, BARRIERS):
                                await execute(self, batch)
                                batch = []
                                break
                if batch:
                    await execute(self, batch)
        except ServerStopped as stop:
            self.stop_reason = stop.reason
            self._finish(stop.reason, delete_data=stop.delete_data)
        except asyncio.CancelledError:
            self._finish("killed")
            raise
        except Exception as exc:
            # Ra's supervisor would restart it; here the server stops and the system lives on (a crash
            # must not tear down the TaskGroup that owns every other server).
            _log.exception("%s: server crashed", self.server_id)
            self._finish(("crashed", repr(exc)))

    def _finish(self, reason: object, delete_data: bool = False) -> None:
        self._stopped = True
        self._mailbox.clear()
        for future in list(self._calls):
            if not future.done():
                future.set_exception(NoProc(f"{self.server_id} stopped", server_id=self.server_id))
        self._calls.clear()
        self._interpreter.server_stopped(self, reason, delete_data)
