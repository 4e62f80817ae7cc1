"""``DistTransport``: a system's ``PeerTransport`` over Erlang distribution, in Ra 2.2.0's envelopes.

Owns: (1) one Erlang process per local Ra server, registered on the node under the server's name
(ra-internals §1.1: "everything addressed to a server goes to the registered name"), which turns
what Erlang sends it into the core's events: peer records (raw ``'$gen_cast'``, or gen calls for
pre-vote, vote and snapshot chunks, answered with gen replies), client calls and casts
(``client.py``), and the DOWN of the monitors its server holds; (2) the outgoing side: peer
records as ``{'$gen_cast', Rpc}`` / ``{'$gen_cast', {SelfId, Reply}}`` raw sends, gen calls made from
short-lived processes like Ra's spawned callers (§1.3), gen replies to ``{Pid, [alias|Ref]}``
callers, ``{ra_event, ...}`` notifications, forwarded commands, process monitors on remote servers.

Must not: decide Raft, or carry traffic between systems of the same interpreter (those go through
the wrapped ``LocalTransport``: ids whose node is on the local network are delivered in-process).
Everything else (sinks, pending Python calls, node events) is the ``LocalTransport``'s too.

Delivery keeps Ra's semantics: sends never block and are dropped when the target is gone; a gen
call that times out or finds no process produces nothing (the core never waits on it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from erl_interop.errors import CallTimeout, EncodeError, ErlInteropError
from erl_interop.errors import NodeDown as ErlNodeDown
from erl_interop.errors import NoProc as ErlNoProc
from erl_interop.node.gen_server import reply as gen_reply
from erl_interop.node.process import Process, exception_reason
from erl_interop.term import Atom, Encoded, Map, Pid, Reference, Term, decode, encode
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
    CommandRequest,
    Event,
    NodeDown,
    NodeUp,
    PeerCallFailed,
    PeerDown,
    PeerMessage,
)
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    HeartbeatReply,
    HeartbeatRpc,
    InstallSnapshotRpc,
    PeerRpc,
    PreVoteRpc,
    RequestVoteRpc,
    TryBecomeLeader,
)
from pyra_dist.erlang.client import (
    ErlangQuery,
    QueryResolver,
    RemoteQuery,
    applied_event_term,
    machine_event_term,
    parse_call,
    parse_cast,
    rejected_event_term,
    reply_term,
    resolve_reply,
)
from pyra_dist.erlang.machines import ErlangRegistry, ErlangSimpleMachine
from pyra_dist.erlang.records import (
    AFTER_LOG_APPEND_ATOM,
    APPEND_ENTRIES_RPC,
    AWAIT_CONSENSUS_ATOM,
    FROM,
    NOREPLY_ATOM,
    NOTIFY,
    TS,
    USR,
    RecordError,
    entry_to_term,
    opaque,
    reply_mode_from_term,
    reply_mode_to_term,
    rpc_from_term,
    rpc_to_term,
    server_id_from_term,
    server_id_to_term,
)
from pyra_dist.server.transport import EventSink, LocalPid, LocalTransport, NodeOps, RaEvent
from pyra_dist.types import Command, Entry, From, Noop, NotifyReply, ReplyMode, ServerId, UsrCommand

if TYPE_CHECKING:
    from erl_interop.node.node import Node
    from pyra_dist.server.process import ServerProcess
    from pyra_dist.server.system import System

__all__ = ["DistTransport"]

_log = logging.getLogger("pyra_dist.erlang")

GEN_CAST: Final = Atom("$gen_cast")
GEN_CALL: Final = Atom("$gen_call")
DOWN: Final = Atom("DOWN")
COMMAND: Final = Atom("command")
NOCONNECTION: Final = Atom("noconnection")
NOPROC: Final = Atom("noproc")

# Ra's gen call timeouts (ra-internals §1.3): votes {dirty_timeout, aten poll_interval = 1000 ms},
# snapshot chunks install_snap_rpc_timeout = 120000 ms.
VOTE_CALL_TIMEOUT_S: Final = 1.0
SNAPSHOT_CALL_TIMEOUT_S: Final = 120.0
SNAPSHOT_FAILURE_PAUSE_S: Final = 5.0

# Records that arrive (and leave) as gen calls; everything else between servers is a cast.
_CALLED: Final = (PreVoteRpc, RequestVoteRpc, InstallSnapshotRpc)

# Encoded entries kept per leader: more than the entries in flight to any follower (Ra's pipeline
# window, 4096), so each entry is encoded once however many followers it goes to.
ENTRY_CACHE_SIZE: Final = 8192
_PLAIN_MODES: Final = (NOREPLY_ATOM, AWAIT_CONSENSUS_ATOM, AFTER_LOG_APPEND_ATOM)
_LIST_EXT: Final = 108
_NIL_EXT: Final = b"j"


def fun_home_node(fun: object) -> Atom | None:
    """The node that created a local fun (``NEW_FUN_EXT``'s creator pid), where it can run.

    Layout (erts external format, NEW_FUN_EXT): tag 112, Size:32, Arity:8, Uniq:128, Index:32,
    NumFree:32, then the terms Module, OldIndex, OldUniq, Pid.
    """
    from erl_interop.term import OpaqueFun

    if not isinstance(fun, OpaqueFun) or len(fun.data) < 31 or fun.data[0] != 112:
        return None
    try:
        offset = 30
        for _ in range(3):  # Module, OldIndex, OldUniq
            _, offset = decode(fun.data, offset)
        pid, _ = decode(fun.data, offset)
    except ErlInteropError:
        return None
    return pid.node if isinstance(pid, Pid) else None


@dataclass(slots=True)
class _ServerPort:
    """The Erlang face of one local server: its registered process and the monitors it holds."""

    server: ServerProcess
    proc: Process
    # monitor ref -> the remote server it watches (a follower watching its leader, §8.2).
    monitors: dict[Reference, ServerId]
    # (index, term) -> the encoded {Index, Term, Command} of an entry this server sent as leader.
    # (index, term) names one entry for good (Raft's Log Matching property, §5.3).
    wire_entries: dict[tuple[int, int], bytes]


class DistTransport:
    """``PeerTransport`` of a system whose peers are reached through an ``erl_interop`` node.

    Args:
        system: the owning system (its processes, clock, name).
        node: the started distribution node; its name must be the system's node name.
        registry: functions and machines Erlang may name on this node (queries use it).
        local: the system's ``LocalTransport`` (in-process peers, Python clients and sinks).
    """

    # A message over distribution costs each side a socket write or read, an ETF encode or decode
    # and a loop wake-up (about 0.5 ms of CPU per AER and its reply on the 2-core bench VM). A leader
    # therefore holds a commit-only AER up to 3 ms, long enough for a blocking client's next command
    # (whose AER then carries the commit index) to arrive; see ``EffectInterpreter.execute``.
    commit_only_aer_hold_s: float = 0.003

    def __init__(self, system: System, node: Node, registry: ErlangRegistry, local: LocalTransport) -> None:
        self._system = system
        self._node = node
        self._registry = registry
        self._local = local
        self._ports: dict[str, _ServerPort] = {}
        self._edge = node.process()  # sender of replies and events not tied to one server
        self._resolver = QueryResolver(node.rpc)
        self._sinks: dict[object, Process] = {}  # Python subscriber pid -> its relay process

    def __getattr__(self, name: str) -> Any:
        # LocalNetwork and LocalTransport reach into a system's transport for sinks, pending
        # calls and monitors; those stay the wrapped LocalTransport's.
        return getattr(self._local, name)

    # -- routing ----------------------------------------------------------------------------------

    def _is_local(self, server_id: ServerId) -> bool:
        return self._local.network.system(server_id.node) is not None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        # A task of the node's TaskGroup that raised would stop the whole node: log and drop.
        self._node.task_group.create_task(_guarded(coro))

    # -- the per-server processes -------------------------------------------------------------------

    def attach(self, server: ServerProcess) -> Pid:
        """Make ``server`` reachable from Erlang under its name (idempotent); returns its pid."""
        name = server.server_id.name
        port = self._ports.get(name)
        if port is not None and port.server is server and port.proc.alive:
            return port.proc.pid
        if port is not None and port.proc.alive:
            port.proc.close(Atom("normal"))
        holder: list[Process] = []
        proc = self._node.process(name=name, handler=lambda message: self._serve(holder[0], server, message))
        holder.append(proc)
        self._ports[name] = _ServerPort(server, proc, {}, {})
        return proc.pid

    def server_started(self, server: ServerProcess) -> None:
        """A server of this system started: register it for Erlang at once (``System._launch``
        calls this, so servers started from Python are reachable before their first send)."""
        self.attach(server)

    def pid_of(self, name: str) -> Pid | None:
        """The Erlang pid standing for the local server ``name``, if attached and alive."""
        port = self._ports.get(name)
        return port.proc.pid if port is not None and port.proc.alive else None

    def server_of_pid(self, pid: object) -> ServerProcess | None:
        """The local server whose Erlang pid is ``pid``."""
        for port in self._ports.values():
            if port.proc.pid == pid and port.proc.alive:
                return port.server
        return None

    def _port_for(self, server_id: ServerId) -> _ServerPort | None:
        port = self._ports.get(server_id.name)
        if port is None or not port.proc.alive:
            server = self._system.process(server_id.name)
            if server is None or server.stopped:
                return None
            self.attach(server)
            port = self._ports[server_id.name]
        return port

    def _serve(self, proc: Process, server: ServerProcess, message: Term) -> None:
        # The handler of the server's process: runs as each message arrives (no task, no queue).
        if server.stopped:
            # Ra's process is gone with its server; what still arrives is dropped.
            proc.close(Atom("normal"))
            return
        try:
            self._inbound(proc, server, message)
        except RecordError as exc:
            # Ra 2.2.0 has no clause for it either; the sender gets nothing (calls time out).
            _log.warning("%s: dropped a message Ra 2.2.0 would not handle: %s", server.server_id, exc)
        except Exception as exc:
            # A bug must not reach the connection that delivered the message: the process dies
            # with the error (as a crashed receive loop would) and the server is unreachable.
            _log.exception("%s: failed on a message", server.server_id)
            proc.close(exception_reason(exc))

    def _inbound(self, proc: Process, server: ServerProcess, message: Term) -> None:
        # Everything goes through the mailbox (``deliver``), peer casts included: handling AERs and
        # their replies at once (``deliver_now``, as LocalTransport does) was measured over
        # distribution and gained nothing for a blocking client, while pipelined followers lost the
        # batching of the AERs that one socket read carries (more CPU per command; server.md).
        now = self._system.now_ms()
        if type(message) is not tuple or not message:
            raise RecordError("server message", message)
        tag = message[0]
        if tag == GEN_CAST and len(message) == 2:
            body = message[1]
            if type(body) is tuple and len(body) == 2 and type(body[0]) is tuple:
                # {FollowerId, #append_entries_reply{}} / {FollowerId, #heartbeat_reply{}} (§1.3)
                server.deliver(PeerMessage(sender=server_id_from_term(body[0]), msg=rpc_from_term(body[1])))
                return
            if type(body) is tuple and body and body[0] == COMMAND:
                server.deliver(parse_cast(body, now_ms=now))
                return
            if type(body) is tuple and body and body[0] == Atom("aux_command"):
                server.deliver(parse_cast(body, now_ms=now))
                return
            rpc = aer_from_term(body) if _is_aer(body) else rpc_from_term(body)
            server.deliver(PeerMessage(sender=_sender_of(rpc, server.server_id), msg=rpc))
            return
        if tag == GEN_CALL and len(message) == 3:
            from_, request = message[1], message[2]
            if _is_record(request):
                rpc = rpc_from_term(request)
                server.deliver(PeerMessage(sender=_sender_of(rpc, server.server_id), msg=rpc, call=from_))
                return
            server.deliver(parse_call(request, from_, now_ms=now, query=self._query_for(server)))
            return
        if tag == DOWN and len(message) == 5:
            port = self._ports.get(server.server_id.name)
            ref = message[1]
            target = port.monitors.pop(ref, None) if port is not None and isinstance(ref, Reference) else None
            if target is not None:
                reason = message[4]
                server.deliver(
                    PeerDown(server_id=target, reason=reason.name if type(reason) is Atom else reason)
                )
            return
        raise RecordError("server message", message)

    def _query_for(self, server: ServerProcess) -> Callable[[Term, Pid], ErlangQuery]:
        simple = isinstance(
            getattr(getattr(server.core, "config", None), "machine", None), ErlangSimpleMachine
        )

        def build(q: Term, caller: Pid) -> ErlangQuery:
            # A closure runs where it was created (its code is there); MFAs on the caller's node.
            home = fun_home_node(q) or caller.node
            return ErlangQuery(q, home, self._registry.function, simple=simple)

        return build

    # -- PeerTransport: servers ---------------------------------------------------------------------

    def send_peer(self, sender: ServerId, to: ServerId, rpc: PeerRpc, reply_to: From | None) -> None:
        """See ``PeerTransport.send_peer``; Ra's envelopes (ra-internals §1.3)."""
        if reply_to is not None and not _is_erlang_from(reply_to):
            self._local.send_peer(sender, to, rpc, reply_to)
            return
        if reply_to is None and self._is_local(to):
            self._local.send_peer(sender, to, rpc, reply_to)
            return
        port = self._port_for(sender)
        proc = port.proc if port is not None else self._edge
        if reply_to is not None:
            gen_reply(proc, _erlang_from(reply_to), rpc_to_term(rpc))
            return
        dest = (Atom(to.name), Atom(to.node))
        match rpc:
            case PreVoteRpc() | RequestVoteRpc():
                self._spawn(self._peer_call(sender, to, rpc, VOTE_CALL_TIMEOUT_S))
            case InstallSnapshotRpc():
                self._spawn(self._peer_call(sender, to, rpc, SNAPSHOT_CALL_TIMEOUT_S))
            case AppendEntriesReply() | HeartbeatReply():
                self._send(proc, dest, (GEN_CAST, (server_id_to_term(sender), rpc_to_term(rpc))))
            case AppendEntriesRpc():
                try:
                    term = self.aer_term(rpc, port.wire_entries if port is not None else None)
                except EncodeError as exc:
                    _log.error("%s: dropped an AER to %s, an entry is no Erlang term: %s", sender, to, exc)
                    return
                self._send(proc, dest, (GEN_CAST, term))
            case _:
                self._send(proc, dest, (GEN_CAST, rpc_to_term(rpc)))

    def _send(self, proc: Process, dest: tuple[Atom, Atom], message: Term) -> None:
        # A value that is not an Erlang term must not take the server down: drop it, as a send
        # that cannot be delivered (Raft resends what matters).
        try:
            proc.send(dest, message)
        except EncodeError as exc:
            _log.error("%s: dropped a message to %s that is not an Erlang term: %s", proc.pid, dest, exc)

    def aer_term(self, rpc: AppendEntriesRpc, cache: dict[tuple[int, int], bytes] | None) -> Term:
        """``rpc_to_term(rpc)`` with the entries list pre-encoded (``Encoded``), each entry once.

        A leader sends every entry to each follower: its ``{Index, Term, Command}`` is encoded the
        first time and the bytes are reused from ``cache`` (bounded, oldest dropped first). Entries
        written for Python callers carry Python tokens and get Erlang terms instead (see
        ``_wire_command``); those are not cached (their relay pid can change).

        Raises:
            EncodeError: an entry holds a value that has no external format.
        """
        head = (
            APPEND_ENTRIES_RPC,
            rpc.term,
            server_id_to_term(rpc.leader_id),
            rpc.leader_commit,
            rpc.prev_log_index,
            rpc.prev_log_term,
        )
        if not rpc.entries:
            return (*head, [])
        out = bytearray((_LIST_EXT,))
        out += len(rpc.entries).to_bytes(4, "big")
        for entry in rpc.entries:
            key = (entry.index, entry.term)
            data = cache.get(key) if cache is not None else None
            if data is None:
                data, reusable = self._entry_bytes(entry)
                if cache is not None and reusable:
                    cache[key] = data
                    if len(cache) > ENTRY_CACHE_SIZE:
                        del cache[next(iter(cache))]
            out += data
        out += _NIL_EXT
        return (*head, Encoded(bytes(out)))

    def _entry_bytes(self, entry: Entry) -> tuple[bytes, bool]:
        # The encoding of entry_to_term(entry) (records.py), built without the intermediate Map for
        # the common '$usr' entry: a dict with the keys in term order encodes to the same bytes.
        command = entry.command
        out = bytearray()
        if not _wire_ready(command):
            encode(entry_to_term(Entry(entry.index, entry.term, self._wire_command(command))), out)
            return bytes(out), False
        if type(command) is UsrCommand:
            ts, from_ = command.ts, command.from_
            meta: dict[Any, Term] = {TS: ts} if from_ is None else {FROM: opaque(from_), TS: ts}
            mode = reply_mode_to_term(command.reply_mode)
            encode((entry.index, entry.term, (USR, meta, opaque(command.data), mode)), out)
        else:
            encode(entry_to_term(entry), out)
        return bytes(out), True

    def _wire_command(self, command: Command) -> Command:
        if _wire_ready(command) or isinstance(command, Noop):
            return command
        from_ = command.from_ if _is_erlang_from(command.from_) else None
        if isinstance(command, UsrCommand) and isinstance(command.reply_mode, NotifyReply):
            mode = command.reply_mode
            notify = NotifyReply(mode.correlation, self._sink_pid(mode.pid))
            return replace(command, from_=from_, reply_mode=notify)
        return replace(command, from_=from_)

    async def _peer_call(self, sender: ServerId, to: ServerId, rpc: PeerRpc, timeout: float) -> None:  # noqa: ASYNC109
        # Ra spawns a caller per peer (§1.3). A vote call without an answer produces nothing; a
        # snapshot sender that fails exits and the leader sees it go down, after a 5 s pause
        # unless it timed out (ra_server_proc's "primitive throttling"): PeerCallFailed.
        event: Event
        try:
            answer = await self._node.call((Atom(to.name), Atom(to.node)), rpc_to_term(rpc), timeout)
            event = PeerMessage(sender=to, msg=rpc_from_term(answer))
        except (ErlInteropError, RecordError) as exc:
            _log.debug("%s: %s to %s got no result: %r", sender, type(rpc).__name__, to, exc)
            if not isinstance(rpc, InstallSnapshotRpc):
                return
            if not isinstance(exc, CallTimeout):
                await asyncio.sleep(SNAPSHOT_FAILURE_PAUSE_S)
            event = PeerCallFailed(peer=to, rpc=rpc, reason=type(exc).__name__)
        server = self._system.process(sender.name)
        if server is not None:
            server.deliver(event)

    def forward_command(self, sender: ServerId, to: ServerId, request: CommandRequest) -> None:
        """See ``PeerTransport.forward_command``: ``{'$gen_cast', {command, Prio, {'$usr', C, Mode}}}``."""
        if self._is_local(to):
            self._local.forward_command(sender, to, request)
            return
        port = self._port_for(sender)
        proc = port.proc if port is not None else self._edge
        command = (USR, opaque(request.data), reply_mode_to_term(request.reply_mode))
        proc.send((Atom(to.name), Atom(to.node)), (GEN_CAST, (COMMAND, Atom(request.priority), command)))

    def send_event(self, pid: object, event: RaEvent) -> None:
        """See ``PeerTransport.send_event``: ``{ra_event, Id, Body}`` to an Erlang pid (§4.4)."""
        if not isinstance(pid, Pid):
            self._local.send_event(pid, event)
            return
        body = event.body
        term: Term
        if event.kind == "applied" and isinstance(body, tuple | list):
            term = applied_event_term(event.sender, list(body))
        elif event.kind == "rejected" and isinstance(body, tuple) and len(body) == 2:
            leader = body[0] if isinstance(body[0], ServerId) else None
            term = rejected_event_term(event.sender, leader, body[1])
        else:
            term = machine_event_term(event.sender, body)
        self._edge.send(pid, term)

    def reply(self, to: From, reply: object) -> None:
        """See ``PeerTransport.reply``: a gen reply to an Erlang caller, queries finished first."""
        if not _is_erlang_from(to):
            self._local.reply(to, reply)
            return
        if _needs_resolving(reply):
            self._spawn(self._reply(_erlang_from(to), _client_reply(reply)))
            return
        # Sent before any later effect of the same list (a Stop must not overtake the reply:
        # delete_cluster answers {ok, Leader} and then the leader exits, ra-internals §3.5).
        gen_reply(self._edge, _erlang_from(to), reply_term(_client_reply(reply)))

    async def _reply(self, to: tuple[Pid, Term], reply: ClientReply) -> None:
        final = await resolve_reply(reply, self._resolver)
        gen_reply(self._edge, to, reply_term(final))

    # -- PeerTransport: monitors ----------------------------------------------------------------------

    def monitor_server(self, watcher: ServerProcess, target: ServerId) -> None:
        """See ``PeerTransport.monitor_server``: MONITOR_P by name on the remote server (§8.2)."""
        if self._is_local(target):
            self._local.monitor_server(watcher, target)
            return
        port = self._port_for(watcher.server_id)
        if port is None:
            return
        ref = port.proc.monitor((Atom(target.name), Atom(target.node)))
        port.monitors[ref] = target

    def demonitor_server(self, watcher: ServerProcess, target: ServerId) -> None:
        """See ``PeerTransport.demonitor_server``."""
        if self._is_local(target):
            self._local.demonitor_server(watcher, target)
            return
        port = self._ports.get(watcher.server_id.name)
        if port is None:
            return
        for ref, watched in list(port.monitors.items()):
            if watched == target:
                del port.monitors[ref]
                port.proc.demonitor(ref, flush=True)

    def monitor_node(self, watcher: ServerProcess, node: str) -> None:
        """See ``PeerTransport.monitor_node``: the node's status now (connecting if needed).

        Later transitions reach followers through their process monitor on the leader
        (``noconnection``), which is how Ra followers notice a dead leader first (§8.2).
        """
        if self._local.network.system(node) is not None:
            self._local.monitor_node(watcher, node)
            return
        self._spawn(self._node_status(watcher, node))

    async def _node_status(self, watcher: ServerProcess, node: str) -> None:
        up = await self._node.connect(node)
        watcher.deliver(NodeUp(node=node) if up else NodeDown(node=node))

    def forget(self, watcher: ServerProcess) -> None:
        """See ``PeerTransport.forget``."""
        self._local.forget(watcher)
        port = self._ports.get(watcher.server_id.name)
        if port is not None:
            for ref in list(port.monitors):
                port.proc.demonitor(ref, flush=True)
            port.monitors.clear()

    def server_down(self, server_id: ServerId, reason: object) -> None:
        """See ``PeerTransport.server_down``: the registered process exits with Ra's reason, so
        Erlang monitors (followers, callers) see it go."""
        self._local.server_down(server_id, reason)
        port = self._ports.get(server_id.name)
        if port is not None and port.server.server_id == server_id and port.proc.alive:
            port.proc.close(_exit_reason(reason))

    # -- PeerTransport: client calls from Python --------------------------------------------------------

    async def call(self, to: ServerId, make_event: Callable[[From], Event], timeout: float) -> object:  # noqa: ASYNC109
        """See ``PeerTransport.call``: a gen call with the request ``ra`` would send (§4).

        Raises:
            TimeoutError: no reply in time. NoProc, NodeDown: as Ra's ``{error, noproc | nodedown}``.
            RaError: the request cannot travel (a Python query callable).
        """
        if self._is_local(to):
            return await self._local.call(to, make_event, timeout)
        from pyra_dist.erlang.remote import reply_from_term, request_term
        from pyra_dist.server import errors

        event = make_event(None)
        request, _ = request_term(event, self._sink_pid)
        try:
            answer = await self._node.call((Atom(to.name), Atom(to.node)), request, timeout)
        except CallTimeout:
            raise TimeoutError(f"{to} did not answer within {timeout} s") from None
        except ErlNoProc:
            raise errors.NoProc(f"{to} is not running", server_id=to) from None
        except ErlNodeDown:
            raise errors.NodeDown(f"node {to.node} is not reachable", server_id=to) from None
        return reply_from_term(event, answer)

    def cast(self, to: ServerId, event: Event) -> bool:
        """See ``PeerTransport.cast``: ``{'$gen_cast', {command, Prio, ...}}`` for remote servers."""
        if self._is_local(to):
            return self._local.cast(to, event)
        if isinstance(event, CommandRequest):
            from pyra_dist.erlang.remote import cast_term

            self._edge.send((Atom(to.name), Atom(to.node)), cast_term(event, self._sink_pid))
            return True
        return False

    def node_ops(self, node: str) -> NodeOps | None:
        """See ``PeerTransport.node_ops``: Ra's lifecycle rpcs for nodes reached over distribution."""
        ops = self._local.node_ops(node)
        if ops is not None:
            return ops
        from pyra_dist.erlang.remote import RemoteNodeOps

        return RemoteNodeOps(self._node, node, self._system.name)

    def _sink_pid(self, pid: object) -> Pid:
        # {notify, Corr, Pid} for a Python subscriber: an Erlang process that turns the
        # {ra_event, ...} it receives back into RaEvent for the subscriber's sink.
        if isinstance(pid, Pid):
            return pid
        proc = self._sinks.get(pid)
        if proc is None or not proc.alive:
            proc = self._node.spawn(self._relay, pid)
            self._sinks[pid] = proc
        return proc.pid

    async def _relay(self, proc: Process, sink: object) -> None:
        while True:
            message: Term = await proc.receive()
            event = _ra_event_from_term(message)
            if event is not None:
                self._local.send_event(sink, event)

    def register_sink(self, sink: EventSink) -> LocalPid:
        """See ``PeerTransport.register_sink``."""
        return self._local.register_sink(sink)

    def unregister_sink(self, pid: LocalPid) -> None:
        """See ``PeerTransport.unregister_sink``."""
        self._local.unregister_sink(pid)

    def close(self) -> None:
        """Unregister every server process (the node stays up)."""
        for port in self._ports.values():
            if port.proc.alive:
                port.proc.close(Atom("shutdown"))
        self._ports.clear()
        if self._edge.alive:
            self._edge.close()


def _is_aer(term: Term) -> bool:
    return type(term) is tuple and len(term) == 7 and term[0] == APPEND_ENTRIES_RPC


def aer_from_term(term: Term) -> AppendEntriesRpc:
    """``rpc_from_term`` for an ``#append_entries_rpc{}``, with a fast path for plain entries.

    An entry ``{I, T, {'$usr', #{ts => Ts}, C, Mode}}`` (every entry of a pipelined command looks
    like that) is read here; the header, and the whole record as soon as one entry is anything
    else, go through ``records.rpc_from_term``, so the result (or the error) is exactly its.

    Raises:
        RecordError: not a Ra 2.2.0 append_entries_rpc (``UnsupportedRaVersion`` for Ra main's).
    """
    assert type(term) is tuple
    entries = term[6]
    if type(entries) is not list or not entries:
        rpc = rpc_from_term(term)
        assert isinstance(rpc, AppendEntriesRpc)
        return rpc
    fast = [_plain_entry(e) for e in entries]
    if None in fast:
        rpc = rpc_from_term(term)
    else:
        head = rpc_from_term((*term[:6], []))
        assert isinstance(head, AppendEntriesRpc)
        rpc = AppendEntriesRpc(
            term=head.term,
            leader_id=head.leader_id,
            leader_commit=head.leader_commit,
            prev_log_index=head.prev_log_index,
            prev_log_term=head.prev_log_term,
            entries=tuple(fast),  # type: ignore[arg-type]  # None was excluded above
        )
    assert isinstance(rpc, AppendEntriesRpc)
    return rpc


def _plain_entry(term: Term) -> Entry | None:
    # {Index, Term, {'$usr', #{ts => Ts}, Data, Mode}} with a 2.2.0 reply mode, else None.
    if type(term) is tuple and len(term) == 3:
        index, entry_term, command = term
        if (
            type(index) is int
            and type(entry_term) is int
            and type(command) is tuple
            and len(command) == 4
            and command[0] == USR
        ):
            meta = command[1]
            if type(meta) is Map and len(meta) == 1:
                ts = meta.get(TS)
                mode = command[3]
                if type(ts) is int:
                    if type(mode) is tuple and len(mode) == 3 and mode[0] == NOTIFY:
                        reply_mode: ReplyMode = NotifyReply(mode[1], mode[2])
                    elif type(mode) is Atom and mode in _PLAIN_MODES:
                        reply_mode = reply_mode_from_term(mode)
                    else:
                        return None
                    return Entry(index, entry_term, UsrCommand(data=command[2], reply_mode=reply_mode, ts=ts))
    return None


def _ra_event_from_term(term: Term) -> RaEvent | None:
    """``{ra_event, Id, Body}`` -> ``RaEvent`` (the inverse of ``client``'s event terms)."""
    if type(term) is not tuple or len(term) != 3 or term[0] != Atom("ra_event"):
        return None
    try:
        sender = server_id_from_term(term[1])
    except RecordError:
        return None
    body = term[2]
    if type(body) is tuple and len(body) == 2 and body[0] == Atom("applied") and type(body[1]) is list:
        pairs = tuple((p[0], p[1]) for p in body[1] if type(p) is tuple and len(p) == 2)
        return RaEvent(sender, "applied", pairs)
    if type(body) is tuple and len(body) == 2 and body[0] == Atom("rejected"):
        reason = body[1]
        if type(reason) is tuple and len(reason) == 3:
            leader = None if reason[1] == Atom("undefined") else server_id_from_term(reason[1])
            return RaEvent(sender, "rejected", (leader, reason[2]))
    if type(body) is tuple and len(body) == 2 and body[0] == Atom("machine"):
        return RaEvent(sender, "machine", body[1])
    return None


async def _guarded(coro: Coroutine[Any, Any, None]) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        _log.exception("erlang edge task failed")


def _wire_ready(command: Command) -> bool:
    # Every opaque value in the command is an Erlang term already (always true for entries that
    # came from Erlang callers or Erlang leaders).
    if isinstance(command, Noop):
        return True
    if command.from_ is not None and not _is_erlang_from(command.from_):
        return False
    mode = getattr(command, "reply_mode", None)
    return not (isinstance(mode, NotifyReply) and not isinstance(mode.pid, Pid))


def _needs_resolving(reply: object) -> bool:
    # Only query replies can hold a RemoteQuery (an Erlang closure to run on its BEAM).
    match reply:
        case LocalQueryReply(result=RemoteQuery()) | OkReply(value=RemoteQuery()):
            return True
        case _:
            return False


def _is_record(term: Term) -> bool:
    return type(term) is tuple and bool(term) and type(term[0]) is Atom and term[0].name.endswith("_rpc")


def _erlang_from(from_: object) -> tuple[Pid, Term]:
    # The {Pid, Tag} of an Erlang gen call (callers check _is_erlang_from first).
    assert type(from_) is tuple and len(from_) == 2 and isinstance(from_[0], Pid)
    return (from_[0], from_[1])


def _client_reply(reply: object) -> ClientReply:
    # PeerTransport.reply is typed ``object``; the core only ever passes its ClientReply values.
    assert isinstance(
        reply, AtomReply | AuxReply | ErrorReply | LocalQueryReply | OkReply | Pong | Redirect | WrapReply
    )
    return reply


def _is_erlang_from(from_: object) -> bool:
    return type(from_) is tuple and len(from_) == 2 and isinstance(from_[0], Pid)


def _sender_of(rpc: PeerRpc, receiver: ServerId) -> ServerId:
    # Requests name their sender in the record; try_become_leader names nobody (the old leader
    # casts it, 2.2.0), so the receiver stands in.
    match rpc:
        case (
            AppendEntriesRpc(leader_id=leader)
            | HeartbeatRpc(leader_id=leader)
            | InstallSnapshotRpc(leader_id=leader)
        ):
            return leader
        case PreVoteRpc(candidate_id=candidate) | RequestVoteRpc(candidate_id=candidate):
            return candidate
        case TryBecomeLeader():
            return receiver
        case _:
            return receiver


def _exit_reason(reason: object) -> Term:
    # Ra's exit reasons: normal (left the cluster), {shutdown, delete} (delete_cluster), crashes.
    if reason == "delete":
        return (Atom("shutdown"), Atom("delete"))
    if reason in ("normal", "killed", "shutdown"):
        return Atom(str(reason))
    if isinstance(reason, str):
        return Atom(reason)
    return (Atom("python"), repr(reason).encode())
