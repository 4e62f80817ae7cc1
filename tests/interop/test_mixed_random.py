"""Randomized mixed-cluster run: clients on both sides while leaders' nodes are SIGKILLed, then a
linearizability check of everything they saw (issue 6, "Tests").

Five members of one Raft group, ``{simple, fun erlang:'+'/2, 0}`` (a counter whose reply is the new
sum), on two real Ra 2.2.0 nodes and three ``python -m pyra_dist.erlang`` nodes. Every ``add`` adds a
power of two no other operation uses, so a sum names exactly the adds applied before it. Erlang
clients (processes in a real ``erl`` with Ra's client code calling ``ra:process_command`` /
``ra:consistent_query``) and Python clients (``pyra_dist.ra`` from this process, a node of its own)
pick a random member per operation. A nemesis moves leadership to the side whose turn it is, SIGKILLs
the leader's node and starts it again on its data dir (``ra:restart_server``), a few rounds.

Every operation is recorded with its invoke and completion times (both sides read the same OS
clock). An ``add`` that timed out (or failed otherwise) may or may not have been applied: it is
indeterminate, and its bit in the final sum tells whether it took effect (if not, it never happened
and leaves the history). Two answers prove it earlier: ``noproc`` (the server did not exist when
the call was made, so the request was dropped) and ``nodedown`` for a call made entirely while a
killed node was down (the call went, directly or by redirect, to the dead node; Ra reports a
connection lost mid-call with the same answer, so ``nodedown`` of a call in flight at the kill
stays indeterminate). A read that failed has no effect and is dropped. The history must be
linearizable for a counter (``pyra_dist.testing.linearizability``), and the final state must hold
every acknowledged ``add`` and nothing but acknowledged or indeterminate ones.

Leadership is steered best effort. Towards a Python member: ``ra:transfer_leadership`` (a pyra target
starts an election at once, which the old leader cannot ignore). Towards an Erlang member:
``ra:trigger_election`` (a pre-vote), because a transfer from a Python leader to a Ra 2.2.0 target
(which starts with a pre-vote) can stall: when the target cannot win (its log behind under load), the
pyra old leader stays in ``await_condition`` for the whole 30 s ``await_condition_timeout`` with every
command parked, as it ignores the election timer there (Ra 2.2.0's
``handle_await_condition(election_timeout)`` calls a pre-vote); seen here as 30 s of timeouts.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from ra_differential import UNTIL_FUN, MixedTopology, client_shells, mixed_topology

from erl_interop.node.node import Node
from erl_interop.term import Atom, binary_to_term
from erl_interop.testing import ErlPeer
from pyra_dist import ra
from pyra_dist.erlang.client import ErlangQuery
from pyra_dist.erlang.machines import ErlangRegistry
from pyra_dist.erlang.services import attach_erlang_edge
from pyra_dist.erlang.snapshots import RaSnapshotCodec
from pyra_dist.server.errors import NodeDown, NoProc, RaError
from pyra_dist.server.system import System
from pyra_dist.testing import (
    UNKNOWN,
    CheckOutcome,
    CheckResult,
    Model,
    Operation,
    Unknown,
    check_linearizability,
)
from pyra_dist.types import ServerId

pytestmark = pytest.mark.erlang

A = Atom
CLUSTER = "mr"
CALL_TIMEOUT_MS = 2000

CLIENTS = 3
"""Clients per side; client ``c`` (Erlang 0..2, Python 3..5) adds ``1 bsl (c + 6 * k)`` as its k-th add."""
STRIDE = 2 * CLIENTS

# Steer(Ids, Target, How): move leadership to Target, retrying (at most 25 tries); ra:members's answer.
# How = transfer: ra:transfer_leadership from the leader; How = elect: ra:trigger_election on Target.
STEER = (
    "Steer = fun(Ids, Target, How) -> Until(fun() -> case ra:members(Ids, 1000) of "
    "{ok, _, Target} = Got -> Got; {ok, _, Leader} = Other when How == transfer -> "
    "_ = (catch ra:transfer_leadership(Leader, Target)), timer:sleep(200), Other; "
    "Other -> _ = (catch ra:trigger_election(Target)), timer:sleep(200), Other end end, "
    "fun(Res) -> element(1, Res) == ok andalso element(3, Res) == Target end, 25) end."
)

# MixClient(Servers, Seed, Slot, Parent): one Erlang client process. Until it gets `stop` it waits
# 0-20 ms, picks a member and either adds its next bit (process_command) or reads (consistent_query of
# an MFA, which runs on either kind of node); then it sends Parent {mixres, self(), Ops}, Ops =
# [{Op, Bit, T0, Result, T1}] in order.
ERLANG_CLIENT = (
    "MixClient = fun(Servers, Seed, Slot, Parent) -> "
    "rand:seed(exsss, {Seed, Seed + 1, Seed + 2}), "
    "Loop = fun Lp(K, Acc) -> receive stop -> Parent ! {mixres, self(), lists:reverse(Acc)} "
    "after rand:uniform(21) - 1 -> "
    "Srv = lists:nth(rand:uniform(length(Servers)), Servers), "
    "case rand:uniform(3) of "
    "1 -> T0 = os:system_time(microsecond), "
    f"Res = (catch ra:consistent_query(Srv, {{erlang, '+', [0]}}, {CALL_TIMEOUT_MS})), "
    "Lp(K, [{read, -1, T0, Res, os:system_time(microsecond)} | Acc]); "
    f"_ -> Bit = Slot + {STRIDE} * K, T0 = os:system_time(microsecond), "
    f"Res = (catch ra:process_command(Srv, 1 bsl Bit, {CALL_TIMEOUT_MS})), "
    "Lp(K + 1, [{add, Bit, T0, Res, os:system_time(microsecond)} | Acc]) "
    "end end end, Loop(0, []) end."
)


@dataclass(frozen=True, slots=True)
class CounterOp:
    """``add`` of ``1 << bit`` (output: the new sum) or ``read`` (output: the sum)."""

    kind: Literal["add", "read"]
    bit: int = -1


class CounterModel(Model[int, CounterOp, int]):
    """``ra_machine_simple`` with ``erlang:'+'/2`` from 0: ``add`` returns the new state."""

    def init(self) -> int:
        """Returns: 0."""
        return 0

    def step(self, state: int, op_input: CounterOp, output: int | Unknown) -> tuple[bool, int]:
        """An add moves the sum and must answer it; a read must answer the sum."""
        if op_input.kind == "add":
            new = state + (1 << op_input.bit)
            return (output is UNKNOWN or output == new), new
        return (output is UNKNOWN or output == state), state

    def describe(self, op: Operation[CounterOp, int]) -> str:
        """The operation with its output as the list of bits set (the adds it reflects)."""
        out = op.output if isinstance(op.output, Unknown) else bits(op.output)
        end = "?" if op.ret is None else str(op.ret)
        return f"c{op.client} [{op.call},{end}] {op.input.kind} {op.input.bit} -> {out}"


def bits(value: int) -> list[int]:
    """The positions of the bits set in ``value``, ascending."""
    return [i for i in range(value.bit_length()) if value >> i & 1]


NOT_APPLIED = "noproc"
"""Outcome of a call that certainly never reached a server (Ra's ``{error, noproc}``)."""
NODEDOWN = "nodedown"
"""Outcome ``{error, nodedown}``: not applied if the call ran entirely while a killed node was down."""

Raw = tuple[str, int, int, object, int, str]
"""One finished operation as a client saw it: (kind, bit, invoke µs, outcome, complete µs, answered by);
the outcome is the answer (an int), ``NOT_APPLIED``, ``NODEDOWN`` or ``UNKNOWN``."""


@dataclass
class Run:
    """What the nemesis did and what the clients saw."""

    killed: list[str] = field(default_factory=list)
    down: list[tuple[int, int]] = field(default_factory=list)
    """(after the SIGKILL, once the node runs again without its server) in µs, per round."""
    erlang_ops: list[list[Raw]] = field(default_factory=list)
    python_ops: list[list[Raw]] = field(default_factory=list)


def now_us() -> int:
    """OS wall-clock time in µs: the clock Erlang's ``os:system_time(microsecond)`` reads."""
    return time.time_ns() // 1000


def shell_term(shell: ErlPeer, top: MixedTopology, expr: str) -> object:
    """Evaluate ``expr`` in the shell and decode its value."""
    return binary_to_term(shell.eval_result(top.substitute(expr), timeout=60).etf)


def erlang_raw(op: object) -> Raw:
    """``{Kind, Bit, T0, Result, T1}`` -> ``Raw`` (``{ok, V, _}`` is the answer ``V``)."""
    assert isinstance(op, tuple) and len(op) == 5
    kind, n, t0, res, t1 = op
    out: object = UNKNOWN
    by = ""
    if isinstance(res, tuple) and len(res) == 3 and res[0] == A("ok"):
        out, by = res[1], str(res[2])
    elif res == (A("error"), A("noproc")):
        out = NOT_APPLIED
    elif res == (A("error"), A("nodedown")):
        out = NODEDOWN
    return (str(kind), int(n), int(t0), out, int(t1), by)


async def python_client(
    system: System, servers: Sequence[ServerId], query: ErlangQuery, seed: int, slot: int, stop: asyncio.Event
) -> list[Raw]:
    """The Python twin of ``MixClient`` (``pyra_dist.ra`` calls through this process's node)."""
    rng = random.Random(seed)
    ops: list[Raw] = []
    k = 0
    while not stop.is_set():
        await asyncio.sleep(rng.randint(0, 20) / 1000)
        server = rng.choice(servers)
        out: object = UNKNOWN
        by: object = ""
        if rng.randint(1, 3) == 1:
            t0 = now_us()
            try:
                out, by = await ra.consistent_query(system, server, query, timeout=CALL_TIMEOUT_MS / 1000)
            except (RaError, TimeoutError):
                pass  # a read that did not answer is left out of the history
            ops.append(("read", -1, t0, out, now_us(), str(by)))
        else:
            bit = slot + STRIDE * k
            k += 1
            t0 = now_us()
            try:
                out, by = await ra.process_command(system, server, 1 << bit, timeout=CALL_TIMEOUT_MS / 1000)
            except NoProc:
                out = NOT_APPLIED
            except NodeDown:
                out = NODEDOWN
            except (RaError, TimeoutError):
                pass
            ops.append(("add", bit, t0, out, now_us(), str(by)))
    return ops


def nemesis(shell: ErlPeer, top: MixedTopology, ids: str, rounds: int, rng: random.Random, run: Run) -> None:
    """Per round: steer leadership to this round's side (alternating), let the clients run, SIGKILL
    the leader's node, let them run without it, start it again and restart its server. Rounds go on
    (at most four more) until a leader was killed on each side."""
    while len(run.killed) < rounds or (len(set(run.killed)) < 2 and len(run.killed) < rounds + 4):
        side = top.ra.nodes if len(run.killed) % 2 == 0 else top.pyra.nodes
        leader = shell_term(shell, top, f"element(3, ra:members({ids}, 5000)).")
        assert isinstance(leader, tuple)
        if str(leader[1]) not in side:
            # Best effort, by the means the module docstring explains.
            how = "elect" if side is top.ra.nodes else "transfer"
            shell.eval(f"Steer({ids}, {{{CLUSTER}, '{rng.choice(side)}'}}, {how}).", timeout=120)
        time.sleep(rng.uniform(0.5, 1.5))
        leader = shell_term(shell, top, f"element(3, ra:members({ids}, 5000)).")
        assert isinstance(leader, tuple)
        node = str(leader[1])
        if node in top.ra.nodes:
            k = top.ra.nodes.index(node) + 1
            top.sync_ra_directory(shell, k)
            top.ra.kill(k)
            run.killed.append("erlang")
        else:
            k = top.pyra.nodes.index(node) + 1
            top.pyra.kill(k)
            run.killed.append("python")
        down_from = now_us()
        time.sleep(rng.uniform(1.0, 2.0))
        if node in top.ra.nodes:
            top.ra.restart(k)
        else:
            top.pyra.restart(k)
        # Until here the node had no server: calls that reached it were dropped.
        run.down.append((down_from, now_us()))
        assert shell.eval(f"ra:restart_server(default, {{{CLUSTER}, '{node}'}}).", timeout=60) == "ok"


def not_applied(run: Run, out: object, t0: int, t1: int) -> bool:
    """True if an add with this outcome, invoked at ``t0`` and done at ``t1``, certainly had no effect."""
    return out == NOT_APPLIED or (out == NODEDOWN and any(a <= t0 and t1 <= b for a, b in run.down))


def first_seen(answers: list[tuple[int, int]]) -> dict[int, int]:
    """For each bit, the earliest completion time of an answer ``(sum, ret)`` whose sum has it set."""
    seen = 0
    when: dict[int, int] = {}
    for value, ret in sorted(answers, key=lambda a: a[1]):
        for bit in bits(value & ~seen):
            when[bit] = ret
        seen |= value
    return when


def history(
    run: Run, final: int, final_call: int, final_ret: int, erlang_nodes: Sequence[str]
) -> tuple[list[Operation[CounterOp, int]], list[int]]:
    """Every client's operations as one history, plus the final read; and the values of the
    consistent reads that Erlang leaders answered, which are left out of the history.

    Ra 2.2.0 answers a consistent query on a new leader before it has applied the entries its
    predecessor committed (``cluster_change_permitted`` is not reset when a follower becomes leader;
    fixed in Ra 2.4.6, commit cc797663 "Reset cluster_change_permitted when becoming leader ... could
    result in occasional stale consistent read results"); this run sees it. Those reads are only
    checked to show a state of the history (:func:`check_states`).

    Left out: failed reads, and adds that certainly never took effect (``noproc``, ``nodedown``
    while the killed node was down, or an indeterminate add whose bit is not in the final sum).
    An indeterminate add whose bit is in the final sum took effect before the first answer that
    shows its bit: it keeps an unknown output but gets that answer's completion time as its own, which
    is sound and spares the checker from trying it at every later point of the history.
    """
    raws = [(client, raw) for client, ops in enumerate([*run.erlang_ops, *run.python_ops]) for raw in ops]
    answers = [(out, t1) for _, (_, _, _, out, t1, _) in raws if isinstance(out, int)]
    applied_by = first_seen([*answers, (final, final_ret)])
    ops: list[Operation[CounterOp, int]] = []
    erlang_reads: list[int] = []
    for client, (kind, bit, t0, out, t1, by) in raws:
        ret: int | None = t1
        if kind == "read" and isinstance(out, int) and any(node in by for node in erlang_nodes):
            erlang_reads.append(out)
            continue
        if not isinstance(out, int):
            if kind == "read" or not_applied(run, out, t0, t1) or bit not in applied_by:
                continue
            ret = applied_by[bit]
            assert ret >= t0, f"add of bit {bit} was seen applied before it was invoked"
        ops.append(
            Operation(
                op_id=len(ops),
                client=client,
                input=CounterOp("add" if kind == "add" else "read", bit),
                call=t0,
                output=out if isinstance(out, int) else UNKNOWN,
                ret=ret,
            )
        )
    ops.append(
        Operation(
            op_id=len(ops), client=-1, input=CounterOp("read"), call=final_call, output=final, ret=final_ret
        )
    )
    return ops, erlang_reads


def check_states(hist: Sequence[Operation[CounterOp, int]], values: Sequence[int]) -> list[int]:
    """The ``values`` that are not a state of ``hist``'s order (the answers' sums form a chain under
    inclusion: each value must be comparable with all of them). Returns the offenders."""
    chain = sorted({op.output for op in hist if isinstance(op.output, int)}, key=int.bit_count)
    counts = [v.bit_count() for v in chain]
    bad = []
    for value in values:
        i = bisect.bisect_left(counts, value.bit_count())
        below = chain[i - 1] if i > 0 else 0
        above = chain[i] if i < len(chain) else chain[-1]
        if below & ~value or value & ~above:
            bad.append(value)
    return bad


async def mixed_random_run(tmp_path: Path, rounds: int) -> None:
    """Start the topology, run the workload with ``rounds`` nemesis rounds, check the history."""
    cookie = "c" + secrets.token_hex(8)
    prefix = "mr" + secrets.token_hex(3)
    seed = secrets.randbelow(1 << 30)
    print(f"mixed random run: seed {seed}, {rounds} rounds")
    rng = random.Random(seed)
    run = Run()
    with (
        mixed_topology(prefix, cookie, tmp_path / "nodes", erlang=2, python=3) as top,
        client_shells(prefix, cookie, kinds=("ra_client",)) as shells,
    ):
        shell = shells.ra_client
        shell.eval(UNTIL_FUN)
        shell.eval(ERLANG_CLIENT)
        shell.eval(STEER)
        members = [*top.ra.nodes, *top.pyra.nodes]
        erlang_nodes = list(top.ra.nodes)
        ids = "[" + ", ".join(f"{{{CLUSTER}, '{n}'}}" for n in members) + "]"
        started = shell_term(
            shell, top, f"ra:start_cluster(default, {CLUSTER}, {{simple, fun erlang:'+'/2, 0}}, {ids})."
        )
        assert isinstance(started, tuple) and (started[0], sorted(started[1]), started[2]) == (
            A("ok"),
            sorted((A(CLUSTER), A(n)) for n in members),
            [],
        )
        async with Node(f"{prefix}cl@127.0.0.1", cookie=cookie) as node:
            system = await System.start(
                "default", tmp_path / "client", str(node.name), snapshot_codec=RaSnapshotCodec()
            )
            registry = ErlangRegistry()
            edge = attach_erlang_edge(system, node, registry)
            async with system:
                edge.install()
                servers = [ServerId(CLUSTER, n) for n in members]
                query = ErlangQuery((A("erlang"), A("+"), [0]), node.name, registry.function)
                slots = ", ".join(f"{{{seed + 10 * c}, {c}}}" for c in range(CLIENTS))
                shell.eval(
                    f"MixMe = self(), MixPids = [spawn(fun() -> MixClient({ids}, S, C, MixMe) end) "
                    f"|| {{S, C}} <- [{slots}]]."
                )
                stop = asyncio.Event()
                clients = [
                    asyncio.create_task(python_client(system, servers, query, seed + 10 * c, c, stop))
                    for c in range(CLIENTS, 2 * CLIENTS)
                ]
                try:
                    await asyncio.to_thread(nemesis, shell, top, ids, rounds, rng, run)
                    await asyncio.to_thread(
                        shell.eval, top.substitute(f"{{ok, _, _}} = ra:members({ids}, 30000)."), 60
                    )
                finally:
                    stop.set()
                    run.python_ops = list(await asyncio.gather(*clients))
                # Through a file: the shell would also print the (large) value as text.
                dump = tmp_path / "erlang_ops.etf"
                shell.eval(
                    "[P ! stop || P <- MixPids], "
                    "ok = file:write_file(" + f'"{dump}"' + ", term_to_binary("
                    "[receive {mixres, P, Ops} -> Ops after 30000 -> timeout end || P <- MixPids]))."
                )
                collected = binary_to_term(dump.read_bytes())
                assert isinstance(collected, list)
                run.erlang_ops = [[erlang_raw(op) for op in ops] for ops in collected]
                # The final read goes through the log (adding 0 answers the sum), so it is linearizable
                # whoever leads (see history() for consistent queries answered by Ra 2.2.0 leaders).
                final_call = now_us()
                final, _ = await ra.process_command(system, servers, 0, timeout=30)
                final_ret = now_us()
                assert isinstance(final, int)
                # Every member catches up with the final state (the killed ones included).
                for server in servers:
                    for _ in range(300):
                        local = await ra.local_query(system, server, query, timeout=10)
                        if local.result == final:
                            break
                        await asyncio.sleep(0.1)
                    assert (server, local.result) == (server, final)
                await ra.delete_cluster(system, servers, timeout=30)
            edge.close()

    hist, erlang_reads = history(run, final, final_call, final_ret, erlang_nodes)
    raws = [r for side in (run.erlang_ops, run.python_ops) for ops in side for r in ops]
    acked = {bit for kind, bit, _, out, _, _ in raws if kind == "add" and isinstance(out, int)}
    unsure = {
        bit
        for kind, bit, t0, out, t1, _ in raws
        if kind == "add" and not isinstance(out, int) and not not_applied(run, out, t0, t1)
    }
    erlang_done = sum(1 for ops in run.erlang_ops for o in ops if isinstance(o[3], int))
    python_done = sum(1 for ops in run.python_ops for o in ops if isinstance(o[3], int))
    applied = set(bits(final))
    print(
        f"killed {run.killed}; {len(hist)} operations checked ({erlang_done} answered to Erlang clients, "
        f"{python_done} to Python clients), {len(acked)} acknowledged adds, {len(unsure)} indeterminate "
        f"of which {len(unsure & applied)} applied; {len(erlang_reads)} consistent reads answered by "
        "Ra 2.2.0 leaders checked as states only"
    )
    # The nemesis killed a leader on each side, and both kinds of client got answers.
    assert {"erlang", "python"} <= set(run.killed)
    assert erlang_done > 0 and python_done > 0
    # Nothing acknowledged was lost, nothing applied that was not asked for.
    assert (acked - applied, applied - acked - unsure) == (set(), set())
    assert check_states(hist, erlang_reads) == []
    result = check_linearizability(CounterModel(), hist, max_steps=5_000_000, timeout=120)
    if not result.ok:
        dump = tmp_path / "history.json"
        raws_json = [
            [
                client,
                kind,
                bit,
                t0,
                out if isinstance(out, str) else hex(out) if isinstance(out, int) else None,
                t1,
                by,
            ]
            for client, ops in enumerate([*run.erlang_ops, *run.python_ops])
            for kind, bit, t0, out, t1, by in ops
        ]
        dump.write_text(
            json.dumps({"down": run.down, "killed": run.killed, "final": hex(final), "raw": raws_json})
        )
        raise AssertionError(f"{explain(result)}\nhistory: {dump}")


def explain(result: CheckResult[CounterOp, int]) -> str:
    """The checker's verdict, with the operations that cannot follow the longest linearizable prefix
    shown against the prefix's sum (which adds their output lacks or has in excess)."""
    if result.outcome is not CheckOutcome.ILLEGAL:
        return f"linearizability: {result.outcome.value} after {result.steps} steps"
    state = 0
    for op in result.longest:
        if op.input.kind == "add":
            state += 1 << op.input.bit
    tail = [op for op in result.failing if op not in result.longest][:12]
    lines = [f"linearizability: ILLEGAL; the longest prefix has {len(result.longest)} operations, then:"]
    for op in tail:
        after = state + (1 << op.input.bit) if op.input.kind == "add" else state
        seen = (
            "?"
            if isinstance(op.output, Unknown)
            else f"lacks {bits(after & ~op.output)} has {bits(op.output & ~after)}"
        )
        lines.append(f"  c{op.client} [{op.call},{op.ret}] {op.input.kind} {op.input.bit}: {seen}")
    return "\n".join(lines)


async def test_random_mixed_run_with_leader_kills_on_both_sides_is_linearizable(tmp_path: Path) -> None:
    await mixed_random_run(tmp_path, rounds=4)


@pytest.mark.slow
async def test_long_random_mixed_run_with_leader_kills_on_both_sides_is_linearizable(tmp_path: Path) -> None:
    await mixed_random_run(tmp_path, rounds=25)
