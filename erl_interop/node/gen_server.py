"""gen_server both ways: a GenServer base class for Python servers, and ``call`` into any server.

Owns: the ``'$gen_call'``/``'$gen_cast'`` message shapes, the reply rules for ``From`` tags
(``[alias|Ref]`` via ALIAS_SEND, anything else to the caller pid; erlang-distribution.md
§6.1) and the caller side of ``gen:call`` (monitor + ``'$gen_call'`` + demonitor, §6.2).

Must not: touch the wire; it uses processes, monitors and aliases only, so local and remote
targets behave the same.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from erl_interop.errors import CallTimeout, ErlInteropError, NodeDown, NoProc
from erl_interop.node.process import DOWN, NOCONNECTION, NOPROC, Dest, Process
from erl_interop.term import Atom, ImproperList, Pid, Reference, Term

if TYPE_CHECKING:
    from erl_interop.node.node import Node

__all__ = ["NO_REPLY", "CallExit", "From", "GenServer", "call", "reply"]

log = logging.getLogger(__name__)

GEN_CALL: Final = Atom("$gen_call")
GEN_CAST: Final = Atom("$gen_cast")
ALIAS: Final = Atom("alias")

From = tuple[Pid, Term]
"""A caller as ``gen_server`` passes it: ``(CallerPid, Tag)``."""


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_REPLY"


NO_REPLY: Final = _NoReply()
"""Return this from ``handle_call`` to reply later with :func:`reply` (``{noreply, State}``)."""


class CallExit(ErlInteropError):
    """The called server exited before replying; ``reason`` is its exit reason."""

    def __init__(self, reason: Term) -> None:
        super().__init__(f"server exited: {reason!r}")
        self.reason = reason


def _alias_of(tag: Term) -> Reference | None:
    # [alias|Ref], or OTP 25's [[alias|Ref]|_] (gen:reply accepts both, reference §6.1).
    if isinstance(tag, ImproperList):
        head = tag.items[0] if len(tag.items) == 1 else None
        if head == ALIAS and isinstance(tag.tail, Reference):
            return tag.tail
        if isinstance(head, ImproperList):
            return _alias_of(head)
    if isinstance(tag, list) and tag and isinstance(tag[0], ImproperList):
        return _alias_of(tag[0])
    return None


def reply(proc: Process, from_: From, value: Term) -> None:
    """Answer a ``gen_server:call`` (``gen_server:reply/2``).

    Args:
        proc: the replying process (the sender of the reply).
        from_: the ``(Pid, Tag)`` the request carried; ``Tag`` is echoed back unchanged.
        value: the reply.
    """
    pid, tag = from_
    alias = _alias_of(tag)
    if alias is not None:
        proc.send(alias, (tag, value))
    else:
        proc.send(pid, (tag, value))


class GenServer:
    """Base class for Python gen_servers callable by ``gen_server:call/cast``, ``gen_statem:call``
    and :meth:`Node.call`. Override the ``handle_*`` coroutines; start with ``node.start_gen_server``.

    ``handle_call`` returns the reply (or :data:`NO_REPLY` to answer later with :func:`reply`).
    An exception in a handler stops the server with ``{python, Class, Message}``, as a crash
    stops an Erlang gen_server; callers then get the DOWN of that exit.
    """

    trap_exit: bool = False

    def __init__(self) -> None:
        self.process: Process | None = None

    async def init(self) -> None:
        """Called in the server process before the first message."""

    # Requests and messages are typed Any: they are decoded wire data that handlers match
    # structurally (a Term-typed value makes mypy reject most tuple patterns).
    async def handle_call(self, request: Any, from_: From) -> Any:
        """Answer a call; the default fails like an Erlang server without the clause."""
        raise NotImplementedError(f"{type(self).__name__} has no handle_call for {request!r}")

    async def handle_cast(self, request: Any) -> None:
        """Handle a cast; the default ignores it."""

    async def handle_info(self, message: Any) -> None:
        """Handle any other message; the default ignores it."""

    def reply(self, from_: From, value: Term) -> None:
        """Reply to a call later (after returning :data:`NO_REPLY`)."""
        assert self.process is not None
        reply(self.process, from_, value)

    async def _loop(self, proc: Process) -> None:
        self.process = proc
        await self.init()
        while True:
            message: Any = await proc.receive()
            match message:
                case (Atom() as kind, (Pid() as pid, tag), request) if kind == GEN_CALL:
                    answer = await self.handle_call(request, (pid, tag))
                    if answer is not NO_REPLY:
                        reply(proc, (pid, tag), answer)
                case (Atom() as kind, request) if kind == GEN_CAST:
                    await self.handle_cast(request)
                case _:
                    await self.handle_info(message)


async def call(node: Node, dest: Dest, request: Term, timeout: float | None) -> Term:  # noqa: ASYNC109  (the API takes Erlang-style timeouts)
    """The caller side of ``gen:call`` (erlang-distribution.md §6.2) from a temporary process.

    A temporary process makes late replies harmless: once it is closed its pid is dead and a
    reply after a timeout is dropped, as an Erlang alias reply would be.

    Raises:
        NoProc, NodeDown, CallTimeout, CallExit: see :meth:`Node.call`.
    """
    target: Pid | Atom | tuple[Atom | str, Atom | str]
    if isinstance(dest, Reference):
        raise TypeError("call an alias by its process, not the alias")
    target = dest
    async with node.process() as proc:
        mref = proc.monitor(target)
        proc.send(dest, (GEN_CALL, (proc.pid, mref), request))

        def match(message: Any) -> bool:
            return isinstance(message, tuple) and (
                (len(message) == 2 and message[0] == mref)
                or (len(message) == 5 and message[0] == DOWN and message[1] == mref)
            )

        try:
            answer = await proc.receive(match, timeout)
        except TimeoutError:
            proc.demonitor(mref, flush=True)
            raise CallTimeout(f"call to {dest!r} timed out after {timeout}s") from None
        if len(answer) == 2:
            proc.demonitor(mref, flush=True)
            value: Term = answer[1]
            return value
        reason = answer[4]
        if reason == NOPROC:
            raise NoProc(f"no process {dest!r}")
        if reason == NOCONNECTION:
            raise NodeDown(f"node of {dest!r} is down")
        raise CallExit(reason)
