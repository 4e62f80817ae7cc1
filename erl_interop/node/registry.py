"""Identifier allocation and the name tables of one node.

Owns: fresh pids and references stamped with this node's name and EPMD creation, unlink
ids, and the three lookup tables of a node: pid -> process, registered name -> pid,
alias -> pid. Pure and synchronous; one instance per Node (no module-level state).

Must not: deliver signals, start tasks or do I/O.

Identifiers carry the creation the node got from EPMD (ALIVE2_X_RESP), so a pid or ref
minted by a previous incarnation of this node name never matches (erlang-distribution.md
§4.1 "Creation check": the receiver treats stale-creation pids as non-existent).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Generic, TypeVar

from erl_interop.term import Atom, Pid, Reference

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Registry"]

P = TypeVar("P")

# NEW_PID_EXT with V4_NC (mandatory from OTP 26) lets ID and Serial use 32 bits each; we
# stay below 2^28 for the id so the printed form <N.Id.Serial> stays familiar.
_PID_ID_LIMIT = 1 << 28


class Registry(Generic[P]):
    """Pid/ref allocation and the pid, name and alias tables for one node.

    Args:
        node: this node's full name.
        creation: the creation EPMD assigned at registration (32-bit, BIG_CREATION).
    """

    def __init__(self, node: Atom, creation: int) -> None:
        self.node = node
        self.creation = creation
        self._pid_counter = itertools.count(1)
        self._ref_counter = itertools.count(1)
        self._unlink_ids = itertools.count(1)
        self.processes: dict[Pid, P] = {}
        self.names: dict[Atom, Pid] = {}
        self.aliases: dict[Reference, Pid] = {}

    def new_pid(self) -> Pid:
        """A pid never handed out before by this node incarnation."""
        n = next(self._pid_counter)
        return Pid(node=self.node, id=n % _PID_ID_LIMIT, serial=n // _PID_ID_LIMIT, creation=self.creation)

    def make_ref(self) -> Reference:
        """A unique reference (three 32-bit words, like ``make_ref()``; NEWER_REFERENCE_EXT)."""
        n = next(self._ref_counter)
        # The first word of a ref is 18 bits wide on the BEAM; keep to that shape.
        ids = (n & 0x3FFFF, (n >> 18) & 0xFFFFFFFF, (n >> 50) & 0xFFFFFFFF)
        return Reference(node=self.node, creation=self.creation, ids=ids)

    def new_unlink_id(self) -> int:
        """A fresh UNLINK_ID identifier (1 .. 2^64-1, erts "Linking" section)."""
        return next(self._unlink_ids)

    def is_local(self, pid: Pid) -> bool:
        """True if ``pid`` belongs to this node incarnation (name and creation)."""
        return pid.node == self.node and pid.creation == self.creation

    def process(self, pid: Pid) -> P | None:
        """The live process for ``pid``, or None (also for stale creations)."""
        return self.processes.get(pid)

    def whereis(self, name: Atom) -> Pid | None:
        """The pid registered under ``name``, or None."""
        return self.names.get(name)

    def register(self, name: Atom, pid: Pid) -> None:
        """Bind ``name`` to ``pid``.

        Raises:
            ValueError: the name is taken, or the pid already has a name (``badarg`` in Erlang).
        """
        if name in self.names:
            raise ValueError(f"name {name!r} is already registered")
        if pid in self.names.values():
            raise ValueError(f"{pid!r} already has a registered name")
        self.names[name] = pid

    def unregister(self, name: Atom) -> None:
        """Free ``name`` (no error if it is free)."""
        self.names.pop(name, None)

    def name_of(self, pid: Pid) -> Atom | None:
        """The registered name of ``pid``, if any."""
        for name, owner in self.names.items():
            if owner == pid:
                return name
        return None

    def all_processes(self) -> Iterator[P]:
        """A snapshot iterator over live processes (safe to mutate the table meanwhile)."""
        return iter(list(self.processes.values()))
