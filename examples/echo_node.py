"""A Python Erlang node with an ``echo`` process and an ``echo`` rpc module.

Run:  python examples/echo_node.py --name echo --cookie secret   (until SIGTERM / SIGINT)

From ``erl -sname e -setcookie secret`` (replace ``vm`` with your host name)::

    {echo, 'echo@vm'} ! {self(), hello}, flush().        %% Shell got {echo,hello}
    gen_server:call({echo, 'echo@vm'}, ping).            %% {echo,ping}
    rpc:call('echo@vm', echo, echo, [42]).               %% 42
    rpc:call('echo@vm', echo, fail, [oops]).             %% {badrpc,{'EXIT',{oops,[{echo,fail,1,[]}]}}}

Owns: only this example's wiring. Must not: rely on anything but the public ``erl_interop`` API.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from erl_interop import Atom, ErlangError, GenServer, Node, Pid, Term
from erl_interop.node import From

ECHO = Atom("echo")


class EchoServer(GenServer):
    """Answers ``{Pid, Msg}`` with ``{echo, Msg}`` to Pid, and every call ``Req`` with ``{echo, Req}``."""

    async def handle_call(self, request: Any, from_: From) -> Term:
        return (ECHO, request)

    async def handle_info(self, message: Any) -> None:
        match message:
            case (Pid() as pid, msg):
                assert self.process is not None
                self.process.send(pid, (ECHO, msg))


class EchoFailure(ErlangError):
    """Raised by ``echo:fail(Reason)``; the caller receives exactly ``Reason``."""


def echo(value: Term) -> Term:
    """``echo:echo(X) -> X``."""
    return value


def fail(reason: Term) -> Term:
    """``echo:fail(Reason)``: raises, and ``Reason`` reaches the Erlang caller."""
    raise EchoFailure(reason)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="node name: alive or alive@host")
    parser.add_argument(
        "--cookie", default=None, help="cookie (default: $ERL_INTEROP_COOKIE or ~/.erlang.cookie)"
    )
    parser.add_argument("--long-names", action="store_true", help="use -name style names (host 127.0.0.1)")
    parser.add_argument("--visible", action="store_true", help="connect as a visible node (default hidden)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with Node(
        args.name, cookie=args.cookie, long_names=args.long_names or None, hidden=not args.visible
    ) as node:
        node.start_gen_server(EchoServer(), name="echo")
        node.expose("echo", "echo", echo)
        node.expose("echo", "fail", fail)
        print(f"echo node {node.name} ready", flush=True)
        await stop.wait()
    print("echo node stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
