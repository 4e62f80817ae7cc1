"""The effect interpreter: turns the core's ``Effect`` lists into I/O, one ``match`` case per effect.

Owns: executing effects for a ``ServerProcess`` in list order against its log, meta store, the
system's timer service, the transport and the leaderboard; executing machine effects
(``MachineEffect``) that reach the driver.

Must not: decide Raft, reorder effects, or report durability the log did not confirm.

Durability rule (R3, ra-internals §9.2, ``pyra_dist.core.effects`` contract):

* ``PersistMeta`` (term and vote) and ``InstallSnapshot`` are synchronous: ``execute`` awaits them
  and does not run the next effect of the same list before they are durable. A vote reply always
  follows the ``PersistMeta`` that records the vote in the same list, so it can never leave the
  node before the vote is on disk.
* ``AppendToLog``/``TruncateLog``/``WriteSnapshot`` are queued to the log in order and return at
  once; their completion comes back to the core as ``LogWritten``/``SnapshotWritten`` events.
  Replies that depend on those writes (AER success, commit, command replies) are produced by the
  core only after that event, so the interpreter never has to hold anything back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, assert_never

from pyra_dist.core.effects import (
    AppendToLog,
    CancelTimer,
    ClusterChanged,
    DemonitorServer,
    Effect,
    ForwardCommand,
    InstallSnapshot,
    MachineEffect,
    MonitorNode,
    MonitorServer,
    Notify,
    PersistLastApplied,
    PersistMeta,
    Rejected,
    Reply,
    RoleChanged,
    SendRpc,
    StartTimer,
    Stop,
    TruncateLog,
    WrapReply,
    WriteSnapshot,
)
from pyra_dist.core.events import MachineTimer
from pyra_dist.core.machine import (
    Append,
    Aux,
    Checkpoint,
    Demonitor,
    GarbageCollection,
    LogRead,
    MachineEffectT,
    ModCall,
    Monitor,
    ReleaseCursor,
    ReplyTo,
    SendMsg,
    Timer,
)
from pyra_dist.core.messages import AppendEntriesRpc
from pyra_dist.server.transport import PeerTransport, RaEvent
from pyra_dist.types import Entry, Index, Role, ServerId, SnapshotMeta, Term

if TYPE_CHECKING:
    from pyra_dist.server.process import ServerProcess
    from pyra_dist.server.timers import TimerService

_log = logging.getLogger("pyra_dist.server")


class ServerStopped(Exception):
    """Raised inside the task to leave the loop after a ``Stop`` effect."""

    def __init__(self, reason: object, delete_data: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delete_data = delete_data


class LogWriter(Protocol):
    """The write side of a server's log (``pyra_dist.log.ServerLog``)."""

    def append(self, entries: tuple[Entry, ...]) -> None:
        """Queue ``entries`` for the WAL; completion comes back as ``LogWritten``."""

    def truncate(self, last_index: Index) -> None:
        """Drop entries above ``last_index`` (ordered with appends)."""

    def write_snapshot(self, meta: SnapshotMeta, state: object) -> None:
        """Write a snapshot; completion comes back as ``SnapshotWritten``."""

    def install_snapshot(self, meta: SnapshotMeta, state: object) -> None:
        """Replace log and snapshot by a received snapshot, durably, before returning."""


class MetaWriter(Protocol):
    """A server's durable metadata (``current_term``, ``voted_for``, ``last_applied``)."""

    async def persist(self, term: Term, voted_for: ServerId | None) -> None:
        """Durably record term and vote (returns once synced)."""

    def last_applied(self, index: Index) -> None:
        """Record ``last_applied`` (may be lost on a crash)."""


class ServerHooks(Protocol):
    """What the interpreter reports back to the system that owns the process."""

    def log_of(self, process: ServerProcess) -> LogWriter:
        """The log of ``process``."""

    def meta_of(self, process: ServerProcess) -> MetaWriter:
        """The meta store of ``process``."""

    def role_changed(self, process: ServerProcess, role: Role, leader: ServerId | None) -> None:
        """``process`` changed role (leaderboard, tick membership)."""

    def members_changed(self, process: ServerProcess, members: tuple[ServerId, ...]) -> None:
        """``process``'s effective configuration changed."""

    def process_stopped(self, process: ServerProcess, reason: object, delete_data: bool) -> None:
        """``process`` stopped; forget it (and delete its data after ``delete_cluster``)."""


class EffectInterpreter:
    """Executes effects for the servers of one system.

    Args:
        transport: where messages go.
        timers: the system's timer service.
        hooks: the owning system.
        mod_calls: Python callables a machine's ``ModCall`` may name, keyed by ``(module, function)``.
    """

    __slots__ = ("_held", "_hold_s", "_hooks", "_mod_calls", "_scheduled", "_timers", "_transport")

    def __init__(
        self,
        transport: PeerTransport,
        timers: TimerService,
        hooks: ServerHooks,
        mod_calls: dict[tuple[object, object], Callable[..., object]] | None = None,
        commit_only_aer_hold_s: float = 0.0,
    ) -> None:
        self._transport = transport
        # How long a commit-only AER may wait for the next AER to that peer (0: one loop iteration).
        self._hold_s = commit_only_aer_hold_s
        self._timers = timers
        self._hooks = hooks
        self._mod_calls = mod_calls if mod_calls is not None else {}
        # Per process: the AER buffer holding commit-only AERs between executions (see ``execute``).
        # Invariant: every process in ``_held`` is in ``_scheduled`` (a ``_flush_held`` call is pending).
        self._held: dict[ServerProcess, _AerBuffer] = {}
        self._scheduled: set[ServerProcess] = set()

    async def execute(self, process: ServerProcess, effects: list[Effect]) -> None:
        """Execute ``effects`` in order for ``process`` (see the durability rule in the module docstring).

        Consecutive ``AppendEntriesRpc``s to the same peer that continue each other are coalesced into
        one (the follower would apply them back to back anyway; Ra's leader likewise batches the
        entries of a mailbox burst into one pipelined RPC). Pending RPCs are flushed before any other
        message to that peer, before every await, and at the end, so ordering per peer is kept.

        An AER that carries no entries and only tells a peer the new commit index (the leader sends
        one to every follower after each commit) is held past the end of the list: if the process
        has more mail, its next execution usually sends entries to that peer, and the two become
        one AER. Otherwise it goes out one loop iteration later (``_flush_held``), or, when the
        transport's messages are expensive (``PeerTransport.commit_only_aer_hold_s``, over Erlang
        distribution), after that many seconds. With one client doing back-to-back calls this halves
        the messages per command (each commit-only AER costs the follower a wake-up and the leader a
        reply to handle, right when the next command arrives); Raft allows any delay of a message,
        and nothing is held across a vote sync, a stop, or another message to the same peer.

        Raises:
            ServerStopped: a ``Stop`` effect ended the server (the process task catches it).
        """
        done = self.execute_now(process, effects)
        while done < len(effects):
            vote = effects[done]
            assert isinstance(vote, PersistMeta)
            # Synchronous: nothing after this effect may run before the vote is durable.
            await self._hooks.meta_of(process).persist(vote.term, vote.voted_for)
            done = self.execute_now(process, effects, done + 1)

    def execute_now(self, process: ServerProcess, effects: list[Effect], start: int = 0) -> int:
        """Execute ``effects[start:]`` without awaiting, up to the first ``PersistMeta`` (exclusive).

        ``execute`` is this plus the vote syncs; ``ServerProcess.deliver_now`` calls it directly for
        effect lists that hold no ``PersistMeta`` and no ``Stop``.

        Returns:
            The position of the first ``PersistMeta`` at or after ``start`` (all pending sends are
            flushed before it), or ``len(effects)`` when everything was executed.

        Raises:
            ServerStopped: a ``Stop`` effect ended the server (the process task catches it).
        """
        transport = self._transport
        me = process.server_id
        aers = self._held.pop(process, None)
        if aers is None:
            aers = _AerBuffer(transport, me)
        for position in range(start, len(effects)):
            effect = effects[position]
            match effect:
                case SendRpc(to=to, rpc=rpc, reply_to=reply_to):
                    if reply_to is None and type(rpc) is AppendEntriesRpc:
                        aers.add(to, rpc)
                    else:
                        aers.flush_peer(to)
                        transport.send_peer(me, to, rpc, reply_to)
                case Reply(to=to, reply=reply):
                    transport.reply(to, reply)
                case Notify(pid=pid, leader=leader, correlations=correlations):
                    transport.send_event(pid, RaEvent(sender=leader, kind="applied", body=correlations))
                case Rejected(pid=pid, sender=sender, leader=leader, correlation=correlation):
                    body = (leader, correlation)
                    transport.send_event(pid, RaEvent(sender=sender, kind="rejected", body=body))
                case ForwardCommand(to=to, request=request):
                    aers.flush_peer(to)
                    transport.forward_command(me, to, request)
                case AppendToLog(entries=entries):
                    self._hooks.log_of(process).append(entries)
                case TruncateLog(last_index=last_index):
                    self._hooks.log_of(process).truncate(last_index)
                case PersistMeta():
                    # The caller syncs the vote before anything after it runs (see ``execute``).
                    aers.flush()
                    return position
                case PersistLastApplied(index=index):
                    self._hooks.meta_of(process).last_applied(index)
                case WriteSnapshot(meta=meta, state=state):
                    self._hooks.log_of(process).write_snapshot(meta, state)
                case InstallSnapshot(meta=meta, state=state):
                    self._hooks.log_of(process).install_snapshot(meta, state)
                case StartTimer(key=key, after_ms=after_ms):
                    self._timers.start(process, key, after_ms / 1000.0)
                case CancelTimer(key=key):
                    self._timers.cancel(process, key)
                case RoleChanged(new=new, leader_id=leader_id):
                    process.role = new
                    process.leader_id = leader_id
                    self._hooks.role_changed(process, new, leader_id)
                case MonitorServer(server_id=server_id):
                    transport.monitor_server(process, server_id)
                case DemonitorServer(server_id=server_id):
                    transport.demonitor_server(process, server_id)
                case MonitorNode(node=node):
                    transport.monitor_node(process, node)
                case MachineEffect(effect=machine_effect):
                    self._machine_effect(process, machine_effect)
                case ClusterChanged(members=members):
                    process.members = members
                    self._hooks.members_changed(process, members)
                case Stop(reason=reason, delete_data=delete_data):
                    aers.flush()
                    raise ServerStopped(reason, delete_data)
                case _:
                    assert_never(effect)
        if aers.flush_with_entries():
            self._held[process] = aers
            if process not in self._scheduled:
                self._scheduled.add(process)
                if self._hold_s > 0.0:
                    asyncio.get_running_loop().call_later(self._hold_s, self._flush_held, process)
                else:
                    asyncio.get_running_loop().call_soon(self._flush_held, process)
        return len(effects)

    def _flush_held(self, process: ServerProcess) -> None:
        """Send the commit-only AERs ``execute`` held, unless ``process`` is about to run again."""
        aers = self._held.get(process)
        if aers is None:
            self._scheduled.discard(process)
            return
        if process.busy and not process.stopped:
            # It has mail: its next execution takes the buffer over (and coalesces into it); look
            # again afterwards in case that burst produced no effects at all.
            asyncio.get_running_loop().call_soon(self._flush_held, process)
            return
        self._scheduled.discard(process)
        del self._held[process]
        if not process.stopped:
            with process.handling():
                aers.flush()

    def _machine_effect(self, process: ServerProcess, effect: MachineEffectT) -> None:
        """Execute one machine effect that the core handed to the driver (ra-internals §6.4)."""
        me = process.server_id
        match effect:
            case SendMsg(to=to, msg=msg, options=options):
                if "ra_event" in options:
                    self._transport.send_event(to, RaEvent(sender=me, kind="machine", body=msg))
                else:
                    deliver = getattr(to, "deliver", None)
                    if deliver is not None:
                        deliver(msg)
            case ModCall(module=module, function=function, args=args):
                target = self._mod_calls.get((module, function))
                if target is None and callable(function):
                    target = function
                if target is None:
                    _log.warning("%s: mod_call %r:%r has no Python target", me, module, function)
                else:
                    target(*args)
            case Timer(name=name, ms=ms):
                if ms is None:
                    self._timers.cancel(process, MachineTimer(name))
                else:
                    self._timers.start(process, MachineTimer(name), ms / 1000.0)
            case ReplyTo(from_=from_, reply=reply):
                self._transport.reply(from_, WrapReply(reply))
            case Monitor() | Demonitor():
                # Machine monitors of Python processes have no meaning in one interpreter; the
                # distribution edge maps them to MONITOR_P / monitor_node for Erlang pids and nodes.
                _log.debug("%s: machine %r ignored locally", me, effect)
            case Append() | ReleaseCursor() | Checkpoint() | LogRead() | Aux() | GarbageCollection():
                # The core consumes these itself; receiving one here means nothing is left to do.
                _log.debug("%s: machine effect %r needs no I/O", me, effect)
            case _:
                assert_never(effect)

    def server_stopped(self, process: ServerProcess, reason: object, delete_data: bool = False) -> None:
        """Release everything the interpreter holds for ``process`` (timers, monitors)."""
        self._timers.cancel_all(process)
        held = self._held.pop(process, None)
        if held is not None:
            # An orderly stop sends what was held (a killed process loses it, like any unsent message).
            held.flush()
        self._transport.forget(process)
        self._hooks.process_stopped(process, reason, delete_data)


# Effects after which the core may read what they changed: a burst of events must be executed up to
# here before the core handles the next event (see ServerProcess.run).
BARRIERS: tuple[type[Effect], ...] = (PersistMeta, InstallSnapshot, WriteSnapshot, TruncateLog, Stop)

_MAX_COALESCED = 4096
"""Never coalesce more entries than this into one AER."""


class _AerBuffer:
    """Coalesces consecutive AERs per peer (see ``EffectInterpreter.execute``)."""

    __slots__ = ("_me", "_pending", "_transport")

    def __init__(self, transport: PeerTransport, me: ServerId) -> None:
        self._transport = transport
        self._me = me
        # peer -> [first rpc, entries so far, highest leader_commit, next expected prev_log_index]
        self._pending: dict[ServerId, list[Any]] = {}

    def add(self, to: ServerId, rpc: AppendEntriesRpc) -> None:
        held = self._pending.get(to)
        if held is not None:
            first: AppendEntriesRpc = held[0]
            entries: list[Entry] = held[1]
            if (
                rpc.prev_log_index == held[3]
                and rpc.term == first.term
                and rpc.leader_id == first.leader_id
                and len(entries) + len(rpc.entries) <= _MAX_COALESCED
            ):
                entries.extend(rpc.entries)
                held[3] += len(rpc.entries)
                if rpc.leader_commit > held[2]:
                    held[2] = rpc.leader_commit
                return
            self.flush_peer(to)
        self._pending[to] = [rpc, list(rpc.entries), rpc.leader_commit, rpc.prev_log_index + len(rpc.entries)]

    def flush_peer(self, to: ServerId) -> None:
        held = self._pending.pop(to, None)
        if held is not None:
            self._send(to, held)

    def flush(self) -> None:
        if self._pending:
            pending = self._pending
            self._pending = {}
            for to, held in pending.items():
                self._send(to, held)

    def flush_with_entries(self) -> bool:
        """Send every pending AER that carries entries; return True if entry-less ones remain held."""
        pending = self._pending
        if not pending:
            return False
        held = False
        for to in list(pending):
            if pending[to][1]:
                self._send(to, pending.pop(to))
            else:
                held = True
        return held

    def _send(self, to: ServerId, held: list[Any]) -> None:
        first: AppendEntriesRpc = held[0]
        entries: list[Entry] = held[1]
        commit: int = held[2]
        rpc = first
        if len(entries) != len(first.entries) or commit != first.leader_commit:
            rpc = AppendEntriesRpc(
                term=first.term,
                leader_id=first.leader_id,
                leader_commit=commit,
                prev_log_index=first.prev_log_index,
                prev_log_term=first.prev_log_term,
                entries=tuple(entries),
            )
        self._transport.send_peer(self._me, to, rpc, None)
