"""RPC both ways: serving spawn requests and ``rex`` calls, and erpc calls into other nodes.

Owns: the allowlist dispatch of ``Module:Function(Args)`` to Python functions exposed with
``Node.expose`` (nothing else is callable; unknown functions fail with ``undef`` as on the
BEAM), ``erpc:execute_call/4`` and ``execute_cast/3`` semantics for SPAWN_REQUEST
(erlang-distribution.md §7.2), the ``rex`` registered server for ``rpc:block_call`` and
old-style callers (§7.2, end), a group-leader process answering ``io_request``s of remote
calls we make (§7.3), and the Python side of ``erpc:call`` (§7.3).

Must not: run anything that was not exposed explicitly, or create atoms from caller data
beyond the names the caller already sent us.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, Final

from erl_interop.errors import CallTimeout, ErlInteropError, NodeDown
from erl_interop.node import signals as s
from erl_interop.node.gen_server import NO_REPLY, From, GenServer, reply
from erl_interop.node.process import (
    DOWN,
    NOCONNECTION,
    SPAWN_REPLY,
    ErlangError,
    ErlangThrow,
    ProcessExit,
    _LinkState,
    exception_reason,
)
from erl_interop.term import Atom, Pid, Reference, Term

if TYPE_CHECKING:
    from erl_interop.node.node import Node
    from erl_interop.node.process import Process

__all__ = ["RpcError", "RpcService", "apply_exposed", "erpc_call"]

log = logging.getLogger(__name__)

ERPC: Final = Atom("erpc")
EXECUTE_CALL: Final = Atom("execute_call")
EXECUTE_CAST: Final = Atom("execute_cast")
RETURN: Final = Atom("return")
ERROR: Final = Atom("error")
EXIT_CLASS: Final = Atom("exit")
THROW: Final = Atom("throw")
UNDEF: Final = Atom("undef")
BADRPC: Final = Atom("badrpc")
EXIT_TAG: Final = Atom("EXIT")
LINK: Final = Atom("link")
MONITOR: Final = Atom("monitor")
REX: Final = Atom("rex")


class RpcError(ErlInteropError):
    """A remote function failed. ``kind`` is ``error``, ``exit`` or ``throw`` (Erlang's class).

    Attributes:
        kind: the Erlang exception class as an Atom.
        reason: the error reason, exit reason or thrown value.
        stack: the remote stack trace (a list) for ``error``, else ``[]``.
    """

    def __init__(self, kind: Atom, reason: Term, stack: Term = None) -> None:
        super().__init__(f"{kind!r}: {reason!r}")
        self.kind = kind
        self.reason = reason
        self.stack = [] if stack is None else stack


def _args_list(args: Any) -> list[Term] | None:
    # Argument lists of small integers arrive as STRING_EXT (reference §12): accept any
    # list-like of terms except binaries, and hand the function a plain list.
    if isinstance(args, list):
        return args
    if isinstance(args, bytes | bytearray | str | tuple | dict):
        return None
    try:
        return list(args)
    except TypeError:
        return None


async def apply_exposed(
    node: Node, module: Atom, function: Atom, args: list[Term]
) -> tuple[Atom, Term, list[Term]]:
    """Run an exposed function the way ``erpc:execute_call`` would.

    Args:
        node: the node whose allowlist is used.
        module, function: what the caller asked for.
        args: the argument list.

    Returns:
        ``(Class, Value, Stack)`` with Class ``return``, ``throw``, ``exit`` or ``error``; an
        unexposed function gives ``(error, undef, [{M, F, Args, []}])`` as on the BEAM.
    """
    fn = node.exposed(module, function)
    if fn is None or not _accepts(fn, len(args)):
        # Erlang functions are Name/Arity: calling an exposed name with an arity the
        # Python function cannot take is undef too, as on the BEAM.
        return ERROR, UNDEF, [(module, function, args, [])]
    stack: list[Term] = [(module, function, len(args), [])]
    try:
        value = fn(*args)
        if inspect.isawaitable(value):
            value = await value
    except ErlangThrow as exc:
        return THROW, exc.value, []
    except ProcessExit as exc:
        return EXIT_CLASS, exc.reason, []
    except ErlangError as exc:
        return ERROR, exc.reason, stack
    except Exception as exc:
        log.info("%s: exposed %s:%s raised %r", node.name, module, function, exc)
        return ERROR, exception_reason(exc), stack
    return RETURN, value, []


def _accepts(fn: Any, arity: int) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return True  # no introspectable signature (some builtins): let the call decide
    try:
        signature.bind(*range(arity))
    except TypeError:
        return False
    return True


class _Rex(GenServer):
    """``rex``: ``{call|block_call, M, F, A, GL}`` calls, ``{From, {call, ...}}`` and features_request."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    async def handle_call(self, request: Any, from_: From) -> Any:
        match request:
            case (Atom() as kind, Atom() as m, Atom() as f, a, _gl) if kind in (
                Atom("call"),
                Atom("block_call"),
            ):
                self.node.spawn(self._worker, m, f, a, from_, None)
                return NO_REPLY
            case _:
                return (BADRPC, (Atom("unsupported"), request))

    async def handle_cast(self, request: Any) -> None:
        match request:
            case (Atom() as kind, Atom() as m, Atom() as f, a, _gl) if kind == Atom("cast"):
                self.node.spawn(self._worker, m, f, a, None, None)

    async def handle_info(self, message: Any) -> None:
        match message:
            case (Pid() as sender, feat) if feat == Atom("features_request"):
                assert self.process is not None
                self.process.send(sender, (Atom("features_reply"), self.node.name, [ERPC]))
            case (Pid() as sender, (Atom() as kind, Atom() as m, Atom() as f, a, _gl)) if kind == Atom(
                "call"
            ):
                self.node.spawn(self._worker, m, f, a, None, sender)

    async def _worker(
        self, proc: Process, m: Atom, f: Atom, a: Term, from_: From | None, to: Pid | None
    ) -> None:
        args = _args_list(a)
        if args is None:
            result: Term = (BADRPC, (EXIT_TAG, (Atom("badarg"), [])))
        else:
            kind, value, stack = await apply_exposed(self.node, m, f, args)
            if kind in (RETURN, THROW):
                result = value
            elif kind == EXIT_CLASS:
                result = (BADRPC, (EXIT_TAG, value))
            else:
                result = (BADRPC, (EXIT_TAG, (value, stack)))
        if from_ is not None:
            reply(proc, from_, result)
        elif to is not None:
            proc.send(to, (REX, result))


class RpcService:
    """Serves SPAWN_REQUESTs and ``rex`` for one node, and provides its group-leader process."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.group_leader: Pid | None = None

    def start(self) -> None:
        """Start ``rex`` and the io group leader used for our own remote calls."""
        self.node.start_gen_server(_Rex(self.node), name=REX)
        self.group_leader = self.node.spawn(_io_server).pid

    def handle_spawn_request(self, req: s.SpawnRequest) -> None:
        """Spawn a process for ``req`` and reply SPAWN_REPLY before it sends anything (§7.2)."""
        node = self.node
        link = LINK in req.options
        monitor = any(o == MONITOR or (isinstance(o, tuple) and o and o[0] == MONITOR) for o in req.options)
        proc = node.process()
        flags = 0
        if link:
            proc._links[req.sender] = _LinkState()
            flags |= 1
        if monitor:
            # The spawner's monitor reference is the request id itself (erts spawn_request).
            proc._monitored_by[req.req_id] = (req.sender, None)
            flags |= 2
        node._emit(s.SpawnReply(req_id=req.req_id, to=req.sender, flags=flags, result=proc.pid))
        proc.task = node.task_group.create_task(proc._run(self._spawned_body, (req,)))

    async def _spawned_body(self, proc: Process, req: s.SpawnRequest) -> None:
        node = self.node
        mfa = (req.module, req.function, req.arity)
        args = req.args
        if mfa == (ERPC, EXECUTE_CALL, 4) and len(args) == 4:
            res, m, f, a = args
            call_args = _args_list(a)
            if not (isinstance(m, Atom) and isinstance(f, Atom)) or call_args is None:
                raise ProcessExit((res, ERROR, (ERPC, Atom("badarg"))))
            kind, value, stack = await apply_exposed(node, m, f, call_args)
            raise ProcessExit((res, kind, value, stack) if kind == ERROR else (res, kind, value))
        if mfa == (ERPC, EXECUTE_CAST, 3) and len(args) == 3:
            m, f, a = args
            call_args = _args_list(a)
            if isinstance(m, Atom) and isinstance(f, Atom) and call_args is not None:
                kind, value, stack = await apply_exposed(node, m, f, call_args)
                if kind == ERROR:
                    raise ProcessExit((value, stack))
            return
        kind, value, stack = await apply_exposed(node, req.module, req.function, list(args))
        if kind == ERROR:
            raise ProcessExit((value, stack))
        if kind == EXIT_CLASS:
            raise ProcessExit(value)


async def _io_server(proc: Process) -> None:
    """A minimal group leader: acknowledges every ``io_request`` so remote output never blocks."""
    while True:
        message: Any = await proc.receive()
        match message:
            case (Atom() as tag, Pid() as sender, reply_as, request) if tag == Atom("io_request"):
                log.info("%s: io_request from %r: %r", proc.node.name, sender, request)
                proc.send(sender, (Atom("io_reply"), reply_as, Atom("ok")))
            case _:
                pass


async def erpc_call(
    node: Node,
    peer: Atom,
    module: Atom,
    function: Atom,
    args: list[Term],
    timeout: float | None,  # noqa: ASYNC109  (Erlang-style timeout argument)
) -> Term:
    """``erpc:call`` from Python: SPAWN_REQUEST of ``erpc:execute_call/4`` with a monitor (§7.3).

    Raises:
        RpcError: the function raised, or the spawn was refused (kind ``error``, reason ``{erpc, R}``).
        NodeDown: ``peer`` is unreachable or went down. CallTimeout: no result in time.
    """
    rpc = node._rpc
    assert rpc is not None and rpc.group_leader is not None, "node not started"
    async with node.process() as proc:
        req_id = proc.make_ref()
        res = proc.make_ref()
        # The monitor created by the spawn is keyed by the request id (erts spawn_request).
        proc._monitors[req_id] = (ERPC, peer)
        node._emit(
            s.SpawnRequest(
                req_id=req_id,
                sender=proc.pid,
                group_leader=rpc.group_leader,
                node=peer,
                module=ERPC,
                function=EXECUTE_CALL,
                arity=4,
                options=[MONITOR],
                args=[res, module, function, list(args)],
            )
        )

        def is_spawn_reply(m: Any) -> bool:
            return isinstance(m, tuple) and len(m) == 4 and m[0] == SPAWN_REPLY and m[1] == req_id

        def is_down(m: Any) -> bool:
            return isinstance(m, tuple) and len(m) == 5 and m[0] == DOWN and m[1] == req_id

        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            # The connection can also drop before the reply: then the DOWN comes first.
            first = await proc.receive(lambda m: is_spawn_reply(m) or is_down(m), timeout)
            if is_down(first):
                down = first
            else:
                _, _, status, result = first
                if status == ERROR:
                    if result == NOCONNECTION:
                        raise NodeDown(f"node {peer} is unreachable")
                    raise RpcError(ERROR, (ERPC, result))
                assert isinstance(result, Pid)
                proc._monitors[req_id] = (result, peer)
                left = None if deadline is None else max(0.0, deadline - loop.time())
                down = await proc.receive(is_down, left)
        except TimeoutError:
            proc.demonitor(req_id, flush=True)
            raise CallTimeout(f"erpc:call({peer}, {module}, {function}) timed out") from None
        return _erpc_result(peer, res, down[4])


def _erpc_result(peer: Atom, res: Reference, reason: Term) -> Term:
    # erpc.erl result/4: how the exit reason of execute_call maps to a value or an exception.
    match reason:
        case (r, kind, value) if r == res and kind == RETURN:
            return value
        case (r, kind, value) if r == res and kind == THROW:
            raise RpcError(THROW, value)
        case (r, kind, value) if r == res and kind == EXIT_CLASS:
            raise RpcError(EXIT_CLASS, value)
        case (r, kind, value, stack) if r == res and kind == ERROR:
            raise RpcError(ERROR, value, stack)
        case (r, kind, value) if r == res and kind == ERROR:
            raise RpcError(ERROR, value)
        case _:
            if reason == NOCONNECTION:
                raise NodeDown(f"node {peer} went down during the call")
            raise RpcError(EXIT_CLASS, (Atom("signal"), reason))
