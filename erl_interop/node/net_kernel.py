"""The ``net_kernel`` registered process of a Python node.

Owns: answering ``gen_server:call({net_kernel, Node}, {is_auth, Peer})`` with ``yes``, which
is all ``net_adm:ping/1`` needs to get ``pong`` (erlang-distribution.md §5: without it ping
returns ``pang`` and disconnects).

Must not: manage connections (``remote.py`` does) or answer anything it does not implement
with a made-up success.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from erl_interop.node.gen_server import From, GenServer
from erl_interop.term import Atom, Term

if TYPE_CHECKING:
    from erl_interop.node.node import Node
    from erl_interop.node.process import Process

__all__ = ["NetKernel", "start_net_kernel"]

IS_AUTH: Final = Atom("is_auth")


class NetKernel(GenServer):
    """Answers ``{is_auth, Node}`` with ``yes``; other calls get ``{error, unsupported}``."""

    async def handle_call(self, request: Any, from_: From) -> Term:
        match request:
            case (Atom() as tag, Atom()) if tag == IS_AUTH:
                return Atom("yes")
            case _:
                return (Atom("error"), Atom("unsupported"))


def start_net_kernel(node: Node) -> Process:
    """Start ``net_kernel`` on ``node`` and return its process."""
    return node.start_gen_server(NetKernel(), name="net_kernel")
