"""A minimal ``global_name_server`` for visible Python nodes.

Owns: what a visible node must answer so that ``global`` on Erlang peers neither hangs nor
treats the Python node as a full member (erlang-distribution.md §5 lists the options).

Theory of operation: on ``nodeup`` an Erlang node's ``global`` casts ``{init_connect,
{Vsn, Tag}, Node, InitMsg}`` to our ``global_name_server`` and starts a locker/resolver
for us; ``global:sync()`` then waits until we are in its ``synced`` list. We answer every
``init_connect`` with the cast ``{in_sync, OurNode, true}``, which the v8 protocol (OTP
25-28, kernel ``global.erl`` ``handle_cast({in_sync, ...})``) takes as "this node has synced
with you": the peer cancels the locker and resolver it started for us, adds us to
``synced`` and wakes waiting syncers, so ``global:sync()`` returns at once. We never send
``init_connect`` ourselves, so the peer never adds us to its *known* nodes: global name
registration, ``whereis_name`` and the "prevent overlapping partitions" logic keep working
among the Erlang nodes and never target us. ``{set_lock, Id}`` / ``{del_lock, Id}``
multi-calls (``global:set_lock(Id)`` defaults to ``[node() | nodes()]``, which includes
visible Python nodes) are granted, since a Python node holds no global resources.

Must not: register global names or take part in name resolution (we are not a ``known``
node), or create atoms from peer data.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from erl_interop.node.gen_server import From, GenServer
from erl_interop.term import Atom, Term

if TYPE_CHECKING:
    from erl_interop.node.node import Node

__all__ = ["GlobalNameServer", "start_global_name_server"]

log = logging.getLogger(__name__)

GLOBAL_NAME_SERVER: Final = Atom("global_name_server")
INIT_CONNECT: Final = Atom("init_connect")
IN_SYNC: Final = Atom("in_sync")
GEN_CAST: Final = Atom("$gen_cast")


class GlobalNameServer(GenServer):
    """Answers ``init_connect`` with ``in_sync`` and grants lock requests (see module doc)."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    def announce(self, peer: Atom) -> None:
        """Tell ``peer``'s global that we are in sync with it (sent on every visible nodeup).

        Sent unprompted as well as in answer to ``init_connect``: an ``init_connect`` that races
        the handshake can be lost, and ``in_sync`` is idempotent on the receiving side.
        """
        if self.process is not None and self.process.alive:
            log.debug("%s: telling global at %s we are in sync", self.node.name, peer)
            self.process.send((GLOBAL_NAME_SERVER, peer), (GEN_CAST, (IN_SYNC, self.node.name, True)))

    async def handle_cast(self, request: Any) -> None:
        match request:
            case (Atom() as tag, _vsn, Atom() as peer, _init_msg) if tag == INIT_CONNECT:
                self.announce(peer)
            case _:
                pass  # lock_set and other locker traffic: we never lock partitions with peers

    async def handle_call(self, request: Any, from_: From) -> Term:
        match request:
            case (Atom(name="set_lock" | "del_lock"), _lock):
                return True
            case Atom(name="get_known"):
                return []
            case Atom(name="get_synced"):
                return []
            case _:
                return (Atom("error"), Atom("unsupported"))


def start_global_name_server(node: Node) -> GlobalNameServer:
    """Start ``global_name_server`` on a visible ``node`` and return the server."""
    server = GlobalNameServer(node)
    node.start_gen_server(server, name=GLOBAL_NAME_SERVER)
    return server
