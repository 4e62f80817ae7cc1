"""Machines given from Erlang, run by Python servers.

Owns: turning the ``machine`` of a Ra server config (ra-internals §6.1) into a
``pyra_dist.core.machine.Machine``:

* ``{simple, Fun, InitialState}`` -> :class:`ErlangSimpleMachine`, Ra's ``ra_machine_simple``
  with the same state term ``{simple, Fun, S}`` (so snapshots interchange with Erlang members)
  and the same reply (the new ``S``). ``Fun`` must be an export fun whose Python equivalent is
  known: the common ``erlang`` BIFs of arity 2 (:data:`BIFS`, Erlang semantics including
  ``badarith``/``badarg``) or a Python callable registered for ``{Module, Function, 2}``.
* ``{module, Mod, Config}`` -> the Python machine registered under the Erlang module name ``Mod``,
  built from ``Config`` (atom keys become ``str``).

and the :class:`ErlangRegistry` that holds those registrations per node (never module-level).

Must not: evaluate Erlang closures (a ``fun(C, S) -> ... end`` typed in a shell is an opaque
``NEW_FUN_EXT``; it is refused with :class:`UnsupportedMachine` naming what to do instead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from erl_interop.node.process import ErlangError
from erl_interop.term import Atom, ExportFun, Map, OpaqueFun, Term
from pyra_dist.core.machine import ApplyMeta, ApplyResult, Machine, MachineConfig
from pyra_dist.erlang.records import opaque

__all__ = [
    "BIFS",
    "ErlangRegistry",
    "ErlangSimpleMachine",
    "MachineFactory",
    "UnsupportedMachine",
]

SIMPLE: Final = Atom("simple")
MODULE: Final = Atom("module")
BADARITH: Final = Atom("badarith")
BADARG: Final = Atom("badarg")

MachineFactory = Callable[[Mapping[str, object]], Machine]
"""Builds a Python machine from the ``Config`` map of ``{module, Mod, Config}`` (keys as text)."""


class UnsupportedMachine(ValueError):
    """A machine spec a Python node cannot run; ``reason`` is the Erlang term reported to Ra."""

    def __init__(self, reason: Term, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# The erlang BIFs a simple machine (or an {erlang, F, A} query) may name, with Erlang semantics
# ---------------------------------------------------------------------------------------------


def _num(x: object) -> int | float:
    # Erlang numbers: integers and floats; the atoms true/false (Python bools) are not numbers.
    if type(x) is int or type(x) is float:
        return x
    raise ErlangError(BADARITH)


def _int(x: object) -> int:
    if type(x) is int:
        return x
    raise ErlangError(BADARITH)


def erl_plus(a: object, b: object) -> object:
    """``erlang:'+'/2``."""
    return _num(a) + _num(b)


def erl_minus(a: object, b: object) -> object:
    """``erlang:'-'/2``."""
    return _num(a) - _num(b)


def erl_times(a: object, b: object) -> object:
    """``erlang:'*'/2``."""
    return _num(a) * _num(b)


def erl_divide(a: object, b: object) -> object:
    """``erlang:'/'/2``: always a float."""
    x, y = float(_num(a)), float(_num(b))
    if y == 0.0:
        raise ErlangError(BADARITH)
    return x / y


def erl_div(a: object, b: object) -> object:
    """``erlang:'div'/2``: integer division truncating toward zero."""
    x, y = _int(a), _int(b)
    if y == 0:
        raise ErlangError(BADARITH)
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def erl_rem(a: object, b: object) -> object:
    """``erlang:'rem'/2``: the remainder has the sign of the dividend."""
    x, y = _int(a), _int(b)
    q = erl_div(x, y)
    assert type(q) is int
    return x - y * q


def erl_band(a: object, b: object) -> object:
    """``erlang:'band'/2``."""
    return _int(a) & _int(b)


def erl_bor(a: object, b: object) -> object:
    """``erlang:'bor'/2``."""
    return _int(a) | _int(b)


def erl_bxor(a: object, b: object) -> object:
    """``erlang:'bxor'/2``."""
    return _int(a) ^ _int(b)


def erl_max(a: object, b: object) -> object:
    """``erlang:max/2`` over numbers (``a`` when equal, as Erlang)."""
    return a if _num(a) >= _num(b) else b


def erl_min(a: object, b: object) -> object:
    """``erlang:min/2`` over numbers (``a`` when equal, as Erlang)."""
    return a if _num(a) <= _num(b) else b


def erl_append(a: object, b: object) -> object:
    """``erlang:'++'/2`` (also ``lists:append/2``): ``[] ++ B`` is ``B`` whatever ``B`` is."""
    if type(a) is not list:
        raise ErlangError(BADARG)
    if not a:
        return b
    if type(b) is list:
        return [*a, *b]
    from erl_interop.term import ImproperList

    return ImproperList(tuple(opaque(x) for x in a), opaque(b))


def erl_element(n: object, t: object) -> object:
    """``erlang:element/2``."""
    if type(n) is not int or type(t) is not tuple or not 1 <= n <= len(t):
        raise ErlangError(BADARG)
    return t[n - 1]


def maps_merge(a: object, b: object) -> object:
    """``maps:merge/2``: keys of ``b`` win."""
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        raise ErlangError((Atom("badmap"), opaque(a if not isinstance(a, Mapping) else b)))
    return Map([*a.items(), *b.items()])


def maps_get(key: object, m: object) -> object:
    """``maps:get/2``: ``{badkey, K}`` when absent, ``{badmap, M}`` for a non-map."""
    if not isinstance(m, Mapping):
        raise ErlangError((Atom("badmap"), opaque(m)))
    if key not in m:
        raise ErlangError((Atom("badkey"), opaque(key)))
    return m[key]


BIFS: Final[Mapping[tuple[str, str, int], Callable[[object, object], object]]] = {
    ("erlang", "+", 2): erl_plus,
    ("erlang", "-", 2): erl_minus,
    ("erlang", "*", 2): erl_times,
    ("erlang", "/", 2): erl_divide,
    ("erlang", "div", 2): erl_div,
    ("erlang", "rem", 2): erl_rem,
    ("erlang", "band", 2): erl_band,
    ("erlang", "bor", 2): erl_bor,
    ("erlang", "bxor", 2): erl_bxor,
    ("erlang", "max", 2): erl_max,
    ("erlang", "min", 2): erl_min,
    ("erlang", "++", 2): erl_append,
    ("lists", "append", 2): erl_append,
    ("erlang", "element", 2): erl_element,
    ("maps", "merge", 2): maps_merge,
    ("maps", "get", 2): maps_get,
}
"""Python twins of ``erlang``/``lists``/``maps`` functions of arity 2 (as ``{M, F, A}`` text keys)."""


# ---------------------------------------------------------------------------------------------
# ra_machine_simple
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErlangSimpleMachine(Machine):
    """Ra's ``{simple, Fun, Initial}`` machine (``ra_machine_simple``, 2.2.0).

    State ``{simple, Fun, S}``; ``apply`` computes ``S2 = Fun(Cmd, S)`` and replies ``S2``.

    Args:
        fun: the export fun as given (kept in the state, as Ra does).
        initial: the initial ``S``.
        step: the Python function computing ``Fun(Cmd, S)``.
    """

    fun: ExportFun
    initial: object
    step: Callable[[object, object], object] = field(compare=False)

    def init(self, config: MachineConfig) -> object:
        """``{simple, Fun, Initial}``."""
        return (SIMPLE, self.fun, opaque(self.initial))

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        """``{{simple, Fun, Next}, Next}`` with ``Next = Fun(Command, S)``."""
        if type(state) is not tuple or len(state) != 3 or state[0] != SIMPLE:
            raise ErlangError((Atom("function_clause"), opaque(state)))
        nxt = self.step(command, state[2])
        return (SIMPLE, state[1], opaque(nxt)), nxt


# ---------------------------------------------------------------------------------------------
# The per-node registry
# ---------------------------------------------------------------------------------------------


@dataclass
class ErlangRegistry:
    """What Erlang may name on this Python node: machine modules and ``{M, F, Arity}`` functions.

    One per node (owned by the node's Erlang edge); never a module-level table.
    """

    modules: dict[str, MachineFactory] = field(default_factory=dict)
    functions: dict[tuple[str, str, int], Callable[..., object]] = field(default_factory=dict)

    def register_machine(self, module: str, factory: MachineFactory) -> None:
        """Run ``{module, Module, Config}`` servers with ``factory(Config)``.

        Args:
            module: the Erlang module name Erlang callers use.
            factory: builds the Python machine (a ``Machine`` subclass taking the config works).
        """
        self.modules[module] = factory

    def register_function(self, module: str, function: str, arity: int, fn: Callable[..., object]) -> None:
        """Run Erlang's ``Module:Function/Arity`` (simple-machine funs, MFA queries) as ``fn``.

        ``fn`` takes the Erlang arguments; raise ``erl_interop.node.process.ErlangError(Reason)``
        for an Erlang ``error(Reason)``.
        """
        self.functions[(module, function, arity)] = fn

    def function(self, module: str, function: str, arity: int) -> Callable[..., object] | None:
        """The registered function, else the built-in twin from :data:`BIFS`, else None."""
        key = (module, function, arity)
        return self.functions.get(key) or BIFS.get(key)

    def machine(self, spec: Term) -> Machine:
        """The Python machine for a Ra machine spec.

        Args:
            spec: ``{simple, Fun, Initial}`` or ``{module, Mod, Config}`` (Ra's user form), or the
                internal ``{machine, Mod, Args}`` form.

        Raises:
            UnsupportedMachine: the spec names something this node cannot run.
        """
        if type(spec) is tuple and len(spec) == 3 and spec[0] == SIMPLE:
            return self._simple(spec[1], spec[2])
        if type(spec) is tuple and len(spec) == 3 and spec[0] in (MODULE, Atom("machine")):
            mod, config = spec[1], spec[2]
            if type(mod) is not Atom or not isinstance(config, Mapping):
                raise UnsupportedMachine((Atom("bad_machine"), spec), f"bad machine spec {spec!r}")
            if mod == Atom("ra_machine_simple"):
                return self._simple(config.get(Atom("simple_fun")), config.get(Atom("initial_state")))
            factory = self.modules.get(mod.name)
            if factory is None:
                # A Ra server whose machine module is missing fails to start with undef.
                raise UnsupportedMachine(
                    Atom("undef"),
                    f"no Python machine is registered for the Erlang module {mod.name!r} "
                    "(ErlangRegistry.register_machine)",
                )
            return factory({_key_text(k): v for k, v in config.items()})
        raise UnsupportedMachine((Atom("bad_machine"), spec), f"not a Ra machine spec: {spec!r}")

    def _simple(self, fun: object, initial: object) -> Machine:
        if isinstance(fun, OpaqueFun):
            raise UnsupportedMachine(
                (Atom("unsupported_machine_fun"), fun),
                "an Erlang closure cannot run on a Python node; use an export fun such as "
                "fun erlang:'+'/2, or register a Python function for {Module, Function, 2}",
            )
        if not isinstance(fun, ExportFun) or fun.arity != 2:
            raise UnsupportedMachine(
                (Atom("badarity"), opaque(fun)), f"simple machine fun must be arity 2: {fun!r}"
            )
        step = self.function(fun.module.name, fun.function.name, 2)
        if step is None:
            raise UnsupportedMachine(
                (Atom("undef"), [(fun.module, fun.function, 2, [])]),
                f"no Python function for {fun.module.name}:{fun.function.name}/2 "
                "(ErlangRegistry.register_function)",
            )
        return ErlangSimpleMachine(fun=fun, initial=initial, step=step)

    def version(self, spec: Term) -> int:
        """``ra_machine:version/1`` for a spec (0 for ``simple``).

        Raises:
            UnsupportedMachine: as :meth:`machine`.
        """
        return self.machine(spec).version()


def _key_text(key: object) -> str:
    if isinstance(key, Atom):
        return key.name
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return str(key)
