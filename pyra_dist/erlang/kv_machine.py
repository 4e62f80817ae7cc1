"""``pyra_kv``: a key/value machine that exists as an Erlang module and as this Python twin.

Owns: the Python side of a machine Erlang and Python members of one cluster both run (issue 6,
point 6): same commands, same replies, same state term (an Erlang map), same effects, so logs and
snapshots interchange. The Erlang side is :data:`ERLANG_SOURCE` (``-module(pyra_kv)``), compiled
by the tests on the Ra nodes; this class is registered under the Erlang module name::

    registry.register_machine("pyra_kv", PyraKv)

Commands (Erlang terms): ``{put, K, V}`` -> ``ok``; ``{get, K}`` -> ``V | undefined``;
``{delete, K}`` -> ``ok``; anything else -> ``{error, unknown_command}``. Every write emits
``{release_cursor, Index, State}``, so a snapshot is taken whenever ``snapshot_interval`` allows.

Must not: depend on anything but the term types and the machine contract (it is deterministic).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from erl_interop.term import Atom, Map
from pyra_dist.core.machine import ApplyMeta, ApplyResult, Machine, MachineConfig, ReleaseCursor
from pyra_dist.erlang.records import opaque

__all__ = ["ERLANG_SOURCE", "PyraKv"]

PUT: Final = Atom("put")
GET: Final = Atom("get")
DELETE: Final = Atom("delete")
OK: Final = Atom("ok")
UNDEFINED: Final = Atom("undefined")
UNKNOWN: Final = (Atom("error"), Atom("unknown_command"))

ERLANG_SOURCE: Final = """
-module(pyra_kv).
-behaviour(ra_machine).
-export([init/1, apply/3]).
init(_Config) -> #{}.
apply(#{index := Idx}, {put, K, V}, S0) -> S = maps:put(K, V, S0), {S, ok, [{release_cursor, Idx, S}]};
apply(_Meta, {get, K}, S) -> {S, maps:get(K, S, undefined)};
apply(#{index := Idx}, {delete, K}, S0) -> S = maps:remove(K, S0), {S, ok, [{release_cursor, Idx, S}]};
apply(_Meta, _Cmd, S) -> {S, {error, unknown_command}}.
"""
"""The Erlang twin, as compiled on Ra nodes (``compile:forms`` or ``erlc``)."""


class PyraKv(Machine):
    """The Python twin of ``pyra_kv`` (state: an Erlang map, never mutated in place).

    Args:
        config: the ``Config`` of ``{module, pyra_kv, Config}`` (unused, as in the Erlang module).
    """

    ERLANG_MODULE: Final = "pyra_kv"
    """The Erlang module this class stands for (``{module, pyra_kv, Config}``)."""

    def __init__(self, config: Mapping[str, object] | None = None) -> None:
        self.config = dict(config or {})

    def init(self, config: MachineConfig) -> object:
        """``#{}``."""
        return Map()

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        """As ``pyra_kv:apply/3``."""
        assert isinstance(state, Map)
        if type(command) is tuple and len(command) == 3 and command[0] == PUT:
            new = Map([*((k, v) for k, v in state.items() if k != command[1]), (command[1], command[2])])
            return new, OK, [ReleaseCursor(meta.index, new)]
        if type(command) is tuple and len(command) == 2 and command[0] == GET:
            return state, opaque(state.get(command[1], UNDEFINED))
        if type(command) is tuple and len(command) == 2 and command[0] == DELETE:
            new = Map((k, v) for k, v in state.items() if k != command[1])
            return new, OK, [ReleaseCursor(meta.index, new)]
        return state, UNKNOWN
