"""How servers reach other servers and clients: the ``PeerTransport`` boundary and its in-process form.

Owns: the ``PeerTransport`` Protocol (everything a server process sends that leaves it: peer records,
gen-call replies, forwarded commands, ``ra_event`` notifications, client calls, process and node
monitors) and ``LocalTransport`` over a ``LocalNetwork`` (every ``System`` of this interpreter that
joined the network, addressed by node name).

Must not: convert anything to Erlang terms. Peer messages are the core's dataclasses
(``pyra_dist.core.messages``); a distribution transport added at the edge maps them to Ra 2.2.0's
records and envelopes (ra-internals §1.2-§1.3) and routes ids whose node is local back to
``LocalTransport``. Keep this module free of ``erl_interop`` imports.

Delivery semantics mirror Ra's raw sends (``noconnect, nosuspend``): a message to a server that is
not running, or to a node that is not connected, is dropped silently; Raft retries (ra-internals
§1.2). Gen calls between local servers (pre-vote, vote, install-snapshot) are delivered as casts
carrying a ``LocalCall`` token; the callee's reply comes back to the caller as
``PeerMessage(sender=callee, msg=result)``, exactly what the core expects from a gen call result.
"""

# Ra's client API takes an explicit per-call timeout (Ra: Timeout argument, default 5000 ms).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from pyra_dist.core.events import (
    CommandRequest,
    Event,
    NodeDown,
    NodeUp,
    PeerCallFailed,
    PeerDown,
    PeerMessage,
)
from pyra_dist.core.messages import InstallSnapshotRpc, PeerRpc, PreVoteRpc, RequestVoteRpc
from pyra_dist.server import errors
from pyra_dist.types import From, ServerId

if TYPE_CHECKING:
    from pyra_dist.core.machine import Machine
    from pyra_dist.server.codec import EncodedCommands
    from pyra_dist.server.process import ServerProcess
    from pyra_dist.server.system import ServerConfig, System


@dataclass(frozen=True, slots=True)
class LocalCall:
    """The ``From`` of a gen call between two servers of this interpreter (pre-vote, vote, snapshot)."""

    caller: ServerId


@dataclass(frozen=True, slots=True)
class ClientCall:
    """The ``From`` of a client call made from Python on ``node``: ``{Pid, Tag}``'s stand-in.

    A plain value (it is stored in log entries, like Ra's ``from`` in ``'$usr'`` meta); the caller's
    system maps ``ref`` back to the waiting future.
    """

    node: str
    ref: int


@dataclass(frozen=True, slots=True)
class LocalPid:
    """A Python subscriber on ``node`` (the ``Pid`` of ``{notify, Corr, Pid}``): an ``EventSink``
    registered with that node's system under ``number``. A plain value, like an Erlang pid."""

    node: str
    number: int


@dataclass(frozen=True, slots=True)
class RaEvent:
    """Ra's ``{ra_event, From, Body}`` as delivered to a Python subscriber (ra-internals §4.4).

    ``kind`` is ``"applied"`` (``body``: tuple of ``(correlation, reply)``), ``"rejected"`` (``body``:
    ``(leader_or_None, correlation)``) or ``"machine"`` (``body``: the machine's message).
    """

    sender: ServerId
    kind: str
    body: object


EventSink: TypeAlias = Callable[[RaEvent], None]
"""Receives ``RaEvent``s for a ``LocalPid`` (e.g. ``asyncio.Queue.put_nowait``); must not block."""


class NodeOps(Protocol):
    """Server lifecycle on one node (Ra's ``ra_server_sup_sup`` RPCs); a local ``System`` is one, and
    the distribution edge provides proxies that make these calls on remote nodes."""

    async def start_server(self, config: ServerConfig) -> None:
        """``start_server_rpc``."""

    async def restart_server(self, name: str, machine: Machine | None = None, **mutable: Any) -> None:
        """``restart_server_rpc``."""

    async def stop_server(self, name: str) -> None:
        """``prepare_server_stop_rpc`` + terminate."""

    async def force_delete_server(self, name: str) -> None:
        """``delete_server_rpc``."""


class PeerTransport(Protocol):
    """What the servers of one system need to talk to the rest of the world.

    ``commit_only_aer_hold_s``: how long a leader may hold an AER that only carries a new commit
    index, waiting for the next AER with entries to that peer to carry it instead (Raft allows any
    delay; followers learn the commit index that much later). 0 means one loop iteration.
    """

    commit_only_aer_hold_s: float

    def send_peer(self, sender: ServerId, to: ServerId, rpc: PeerRpc, reply_to: From | None) -> None:
        """Send a peer record (raw cast, gen call, or the reply ``reply_to`` of a gen call)."""

    def forward_command(self, sender: ServerId, to: ServerId, request: CommandRequest) -> None:
        """Cast a follower's ``noreply`` command to the leader ``to``."""

    def send_event(self, pid: object, event: RaEvent) -> None:
        """Deliver ``{ra_event, ...}`` to ``pid`` (a ``LocalPid`` here; an Erlang pid at the edge)."""

    def reply(self, to: From, reply: object) -> None:
        """Answer a client's gen call ``to``."""

    def monitor_server(self, watcher: ServerProcess, target: ServerId) -> None:
        """Deliver ``PeerDown(target, reason)`` to ``watcher`` when ``target`` stops (now, if not running)."""

    def demonitor_server(self, watcher: ServerProcess, target: ServerId) -> None:
        """Cancel a ``monitor_server``."""

    def monitor_node(self, watcher: ServerProcess, node: str) -> None:
        """Deliver ``NodeUp``/``NodeDown`` for ``node`` to ``watcher`` (aten registration)."""

    def forget(self, watcher: ServerProcess) -> None:
        """Drop every monitor ``watcher`` holds (it stopped)."""

    def server_down(self, server_id: ServerId, reason: object) -> None:
        """A server of this system stopped with ``reason``: fire every monitor on it, wherever it is."""

    def server_started(self, server: ServerProcess) -> None:
        """A server of this system started: make it reachable from every peer at once."""

    async def call(self, to: ServerId, make_event: Callable[[From], Event], timeout: float) -> object:
        """Make a client gen call to server ``to``; returns the raw reply (a core ``ClientReply``).

        Raises:
            TimeoutError: no reply within ``timeout`` seconds.
            NoProc: ``to`` is not running.
            NodeDown: ``to``'s node is not reachable.
        """

    def cast(self, to: ServerId, event: Event) -> bool:
        """Cast a client event to ``to``; returns False if it was dropped (not running / node down)."""

    def register_sink(self, sink: EventSink) -> LocalPid:
        """Give ``sink`` a pid on this node so servers can send it ``ra_event``s."""

    def node_ops(self, node: str) -> NodeOps | None:
        """Server lifecycle operations on ``node``, or None if it is not reachable."""

    def unregister_sink(self, pid: LocalPid) -> None:
        """Forget a pid from ``register_sink``."""


class LocalNetwork:
    """The systems of this interpreter that can reach each other, by node name.

    Not a global: a caller creates one and hands it to each ``System`` it starts ("three nodes in one
    process"). A system that is not on the network cannot be reached (its node is "down").
    """

    __slots__ = ("_systems", "encoded")

    def __init__(self) -> None:
        self._systems: dict[str, System] = {}
        # Stored bytes of recent commands, reused by in-process replicas (set by the first System).
        self.encoded: EncodedCommands | None = None

    def join(self, system: System) -> None:
        """Make ``system`` reachable under its node name; other systems' node watchers see it up."""
        if system.node in self._systems:
            raise ValueError(f"node {system.node!r} is already on this network")
        self._systems[system.node] = system
        for other in list(self._systems.values()):
            if other is not system:
                other.local.node_event(system.node, up=True)

    def leave(self, system: System) -> None:
        """Make ``system`` unreachable; other systems see its node go down."""
        if self._systems.get(system.node) is system:
            del self._systems[system.node]
            for other in list(self._systems.values()):
                other.local.node_event(system.node, up=False)

    def system(self, node: str) -> System | None:
        """The system running ``node``, if it is on the network."""
        return self._systems.get(node)

    def nodes(self) -> list[str]:
        """Node names currently on the network."""
        return list(self._systems)

    def transports(self) -> list[LocalTransport]:
        """The transports of every system on the network."""
        return [s.local for s in self._systems.values()]


class LocalTransport:
    """``PeerTransport`` of one system whose peers are systems on the same ``LocalNetwork``.

    Args:
        node: the node name of the owning system.
        network: where to look other nodes up.
    """

    __slots__ = (
        "_closed",
        "_network",
        "_next_number",
        "_node",
        "_node_watchers",
        "_pending",
        "_sinks",
        "_watchers",
        "_watching",
        "node_down_delay_s",
    )

    # In-process messages are cheap: a held commit-only AER waits one loop iteration only.
    commit_only_aer_hold_s: float = 0.0

    def __init__(self, node: str, network: LocalNetwork) -> None:
        self._node = node
        self._network = network
        # target -> processes of this system monitoring it (ra-internals §8.2 point 1: a follower
        # monitors its leader).
        self._watchers: dict[ServerId, set[ServerProcess]] = {}
        # watcher -> targets, so a stopping watcher can be forgotten quickly.
        self._watching: dict[ServerProcess, set[ServerId]] = {}
        self._node_watchers: dict[str, set[ServerProcess]] = {}
        # Client calls made from this node that wait for an answer, by ClientCall.ref.
        self._pending: dict[int, asyncio.Future[object]] = {}
        self._sinks: dict[int, EventSink] = {}
        # Refs and pid numbers are unique across incarnations of a node name (an Erlang node's
        # "creation"): commands in the log carry ClientCall/LocalPid values of callers that may belong
        # to a previous incarnation, and their late replies must not reach a new caller.
        self._next_number = secrets.randbits(31) << 32
        # aten's poll interval (ra-internals §8.1 P = 1000 ms): how late ``nodedown`` follows a disconnect.
        self.node_down_delay_s = 1.0
        self._closed = False

    @property
    def network(self) -> LocalNetwork:
        """The network this transport routes on."""
        return self._network

    def _process(self, to: ServerId) -> ServerProcess | None:
        # Hot path (every message): plain dict lookups instead of the public accessors.
        system = self._network._systems.get(to.node)
        return None if system is None else system._processes.get(to.name)

    def send_peer(self, sender: ServerId, to: ServerId, rpc: PeerRpc, reply_to: From | None) -> None:
        """See ``PeerTransport.send_peer``: a local reply arrives as a plain ``PeerMessage``."""
        is_call = reply_to is None and isinstance(rpc, _CALLS)
        target = self._process(to)
        if target is None:
            if is_call:
                # A gen call to a dead process fails at once (noproc / nodedown), as Ra's caller sees it.
                caller = self._process(sender)
                if caller is not None:
                    reason = "noproc" if self._network.system(to.node) is not None else "nodedown"
                    caller.deliver(PeerCallFailed(peer=to, rpc=rpc, reason=reason))
            return
        # Requests Ra makes as gen calls carry a token so the callee answers with SendRpc(reply_to=…).
        call = LocalCall(sender) if is_call else None
        target.deliver_now(PeerMessage(sender=sender, msg=rpc, call=call))

    def forward_command(self, sender: ServerId, to: ServerId, request: CommandRequest) -> None:
        """See ``PeerTransport.forward_command``."""
        target = self._process(to)
        if target is not None:
            target.deliver(request)

    def send_event(self, pid: object, event: RaEvent) -> None:
        """See ``PeerTransport.send_event``; unknown pids are dropped (Ra's noconnect send)."""
        if isinstance(pid, LocalPid):
            system = self._network.system(pid.node)
            if system is not None:
                sink = system.local._sinks.get(pid.number)
                if sink is not None:
                    sink(event)

    def reply(self, to: From, reply: object) -> None:
        """See ``PeerTransport.reply``."""
        if isinstance(to, ClientCall):
            system = self._network.system(to.node)
            if system is not None:
                future = system.local._pending.pop(to.ref, None)
                if future is not None and not future.done():
                    future.set_result(reply)

    def register_sink(self, sink: EventSink) -> LocalPid:
        """See ``PeerTransport.register_sink``."""
        self._next_number += 1
        self._sinks[self._next_number] = sink
        return LocalPid(self._node, self._next_number)

    def unregister_sink(self, pid: LocalPid) -> None:
        """See ``PeerTransport.unregister_sink``."""
        self._sinks.pop(pid.number, None)

    def node_ops(self, node: str) -> NodeOps | None:
        """See ``PeerTransport.node_ops``: the system of ``node`` on this network."""
        return self._network.system(node)

    def monitor_server(self, watcher: ServerProcess, target: ServerId) -> None:
        """See ``PeerTransport.monitor_server``."""
        if self._process(target) is None:
            reason = "noproc" if self._network.system(target.node) is not None else "noconnection"
            watcher.deliver(PeerDown(server_id=target, reason=reason))
            return
        self._watchers.setdefault(target, set()).add(watcher)
        self._watching.setdefault(watcher, set()).add(target)

    def demonitor_server(self, watcher: ServerProcess, target: ServerId) -> None:
        """See ``PeerTransport.demonitor_server``."""
        watchers = self._watchers.get(target)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[target]
        targets = self._watching.get(watcher)
        if targets is not None:
            targets.discard(target)

    def monitor_node(self, watcher: ServerProcess, node: str) -> None:
        """See ``PeerTransport.monitor_node``: like aten, answer with the current status at once."""
        self._node_watchers.setdefault(node, set()).add(watcher)
        up = self._network.system(node) is not None
        watcher.deliver(NodeUp(node=node) if up else NodeDown(node=node))

    def forget(self, watcher: ServerProcess) -> None:
        """See ``PeerTransport.forget``."""
        for target in self._watching.pop(watcher, ()):
            watchers = self._watchers.get(target)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[target]
        for watchers in self._node_watchers.values():
            watchers.discard(watcher)

    def server_down(self, server_id: ServerId, reason: object) -> None:
        """See ``PeerTransport.server_down``."""
        for transport in self._network.transports():
            transport.fire_monitors(server_id, reason)

    def server_started(self, server: ServerProcess) -> None:
        """See ``PeerTransport.server_started``: local servers are reachable through the network map."""

    def fire_monitors(self, server_id: ServerId, reason: object) -> None:
        """Deliver ``PeerDown`` to this system's processes that monitor ``server_id``."""
        for watcher in self._watchers.pop(server_id, ()):
            targets = self._watching.get(watcher)
            if targets is not None:
                targets.discard(server_id)
            watcher.deliver(PeerDown(server_id=server_id, reason=reason))

    def node_event(self, node: str, up: bool) -> None:
        """Tell this system's servers that ``node`` went up or down.

        As on a real node (ra-internals §8.2): a lost connection fires process monitors on that node's
        servers with ``noconnection`` at once, while the failure detector (aten) reports ``nodedown`` at
        its next poll, ``node_down_delay_s`` later. Ra's followers therefore start an election on the
        short timer armed by the monitor rather than the long one armed by the nodedown.
        """
        if up:
            for watcher in list(self._node_watchers.get(node, ())):
                watcher.deliver(NodeUp(node=node))
            return
        for target in [t for t in self._watchers if t.node == node]:
            self.fire_monitors(target, "noconnection")
        if self.node_down_delay_s <= 0:
            self._node_down(node)
        else:
            asyncio.get_running_loop().call_later(self.node_down_delay_s, self._node_down, node)

    def _node_down(self, node: str) -> None:
        if self._network.system(node) is not None:
            return  # back up before the detector noticed
        for watcher in list(self._node_watchers.get(node, ())):
            watcher.deliver(NodeDown(node=node))

    def close(self) -> None:
        """This node is going away: fail the client calls still waiting here with ``nodedown``."""
        self._closed = True
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(errors.NodeDown(f"node {self._node} stopped"))

    async def call(self, to: ServerId, make_event: Callable[[From], Event], timeout: float) -> object:
        """See ``PeerTransport.call``."""
        if self._closed:
            raise errors.NodeDown(f"node {self._node} stopped", server_id=to)
        system = self._network.system(to.node)
        if system is None:
            raise errors.NodeDown(f"node {to.node} is not connected", server_id=to)
        target = system.process(to.name)
        if target is None:
            raise errors.NoProc(f"{to} is not running", server_id=to)
        self._next_number += 1
        ref = self._next_number
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            target.deliver(make_event(ClientCall(self._node, ref)))
            # Like the monitor of a gen call: the server stopping fails the call with noproc.
            target.track_call(future)
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._pending.pop(ref, None)

    def cast(self, to: ServerId, event: Event) -> bool:
        """See ``PeerTransport.cast``."""
        target = self._process(to)
        if target is None:
            return False
        target.deliver(event)
        return True


# Ra makes these as gen calls (ra-internals §1.3); everything else is a cast.
_CALLS = (PreVoteRpc, RequestVoteRpc, InstallSnapshotRpc)
