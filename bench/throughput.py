"""Throughput and latency of a 3-member pyra cluster (ra_bench's workload), fsync on.

Three in-process nodes (one ``System`` each, each with its own WAL, fsync = datasync) host one
3-member cluster. Phase 1: 5 clients pipeline 256-byte commands with at most 500 in flight each
for ``--seconds`` (default 10 s) -> ops/s. Phase 2: one client runs ``process_command`` back to back
-> p50/p99 latency.

Then, in the same run (unless ``--skip-ra``), the same workload on real Ra 2.2.0: three ``erl`` nodes
(three OS processes, OTP 25, each with its own Ra data dir and WAL, fsync on), one 3-member cluster of a
``{simple, fun pyra_ra_bench:apply/2, 0}`` machine (``S + 1``). The load generator runs inside the first
node: 5 client processes keep 500 ``ra:pipeline_command``s of a 256-byte binary in flight each, then one
process times ``ra:process_command`` back to back. Machine and clients are a small module compiled from
source in each node (``compile:forms``, nothing written to disk); ``--ra-eval`` runs the same load
generator interpreted by erl_eval with an erl_eval closure as the machine instead. The pyra cluster
runs first and is stopped before the Erlang nodes start, so the two never compete for the CPU.

The last line is ``throughput: pyra ops/s=... p50_ms=... p99_ms=... ra ops/s=... p50_ms=... p99_ms=...``
(pyra: three members in ONE Python process; ra: three members in three BEAM processes).

With ``--pyra-nodes`` a third configuration follows: the three pyra members in three ``pyra node``
OS processes joined by Erlang distribution, formed and driven from an Erlang node (``pyra_nodes`` in
the last line; see ``bench_pyra_nodes``).

Run: ``python bench/throughput.py [--seconds 10] [--profile] [--skip-ra] [--ra-eval] [--pyra-nodes]
[--nodes-only] [--profile-nodes DIR] [--tune-gc]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from erl_interop.testing import ErlPeer, ra_ebin_dirs
from pyra_dist import ra
from pyra_dist.core.machine import ApplyMeta, ApplyResult, Machine, MachineConfig
from pyra_dist.server import LocalNetwork, System
from pyra_dist.types import ServerId

NODES = ("b1@localhost", "b2@localhost", "b3@localhost")


class BenchMachine(Machine):
    """ra_bench's machine in spirit: count the commands, keep nothing else."""

    def init(self, config: MachineConfig) -> object:
        return 0

    def apply(self, meta: ApplyMeta, command: object, state: object) -> ApplyResult:
        assert isinstance(state, int)
        return state + 1, "ok"


async def _client(system: System, leader: ServerId, payload: bytes, in_flight: int, deadline: float) -> int:
    """Keep ``in_flight`` commands outstanding until ``deadline``; return how many were applied."""
    applied = 0
    async with ra.EventQueue(system) as events:
        corr = 0
        target = leader
        for _ in range(in_flight):
            corr += 1
            await ra.pipeline_command(system, target, payload, corr, "normal", notify=events.pid)
        outstanding = in_flight
        while outstanding:
            event = await events.get()
            if event.kind == "applied":
                assert isinstance(event.body, tuple)
                n = len(event.body)
                applied += n
                outstanding -= n
                if time.monotonic() < deadline:
                    for _ in range(n):
                        corr += 1
                        await ra.pipeline_command(system, target, payload, corr, "normal", notify=events.pid)
                    outstanding += n
            elif event.kind == "rejected":
                new_leader, rejected_corr = event.body  # type: ignore[misc]
                if new_leader is not None:
                    target = new_leader
                await ra.pipeline_command(system, target, payload, rejected_corr, "normal", notify=events.pid)
    return applied


async def bench_pyra(seconds: float, profile: bool) -> tuple[float, float, float]:
    """The pyra cluster (three nodes in this process); returns (ops/s, p50 ms, p99 ms)."""
    with tempfile.TemporaryDirectory(prefix="pyra-bench-", dir=os.environ.get("PYRA_BENCH_DIR")) as data_dir:
        network = LocalNetwork()
        systems = [await System.start("default", data_dir, node, network=network) for node in NODES]
        for system in systems:
            await system.__aenter__()
        try:
            ids = [ServerId("bench", node) for node in NODES]
            await ra.start_cluster(systems[0], "bench", BenchMachine(), ids)
            _, leader = await ra.members(systems[0], ids[0])
            caller = systems[0]
            payload = os.urandom(256)

            profiler = cProfile.Profile() if profile else None
            if profiler:
                profiler.enable()
            started = time.monotonic()
            cpu0 = time.process_time()
            deadline = started + seconds
            clients = [_client(caller, leader, payload, 500, deadline) for _ in range(5)]
            counts = await asyncio.gather(*clients)
            elapsed = time.monotonic() - started
            cpu = time.process_time() - cpu0
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            ops = sum(counts) / elapsed
            print(
                f"pipelined: 5 clients x 500 in flight, {sum(counts)} commands in {elapsed:.2f} s, "
                f"{cpu / max(1, sum(counts)) * 1e6:.0f} us of CPU per command (all threads, 3 nodes)"
            )

            latencies: list[float] = []
            end = time.monotonic() + min(seconds, 5.0)
            while time.monotonic() < end:
                t0 = time.perf_counter()
                await ra.process_command(caller, leader, payload)
                latencies.append((time.perf_counter() - t0) * 1000)
            latencies.sort()
            p50 = statistics.median(latencies)
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(f"blocking client: {len(latencies)} process_command calls")
            wal = systems[0]._storage
            if wal is not None:
                metrics = getattr(wal.logs.wal, "metrics", None)
                if metrics is not None:
                    print(f"node 1 WAL: {metrics}")
        finally:
            for system in reversed(systems):
                await system.__aexit__(None, None, None)
    return ops, p50, p99


# The Erlang-side load generator (one erl_eval expression; no comments, it is sent as one line).
# Client(Out, Applied): Out commands in flight; each `applied` event of N correlations sends N more
# until the deadline, then waits for the rest. Rejections (not_leader) are resent to the new leader.
_RA_LOAD = """
Leader = {bench, node()},
Payload = binary:copy(<<7>>, 256),
Parent = self(),
Deadline = erlang:monotonic_time(millisecond) + __MS__,
Send = fun(L, C) -> ok = ra:pipeline_command(L, Payload, C, normal) end,
Client = fun Client(L, Out, Applied) ->
    receive
        {ra_event, _, {applied, Replies}} ->
            N = length(Replies),
            case erlang:monotonic_time(millisecond) < Deadline of
                true -> [Send(L, C) || {C, _} <- Replies], Client(L, Out, Applied + N);
                false when Out =:= N -> Applied + N;
                false -> Client(L, Out - N, Applied + N)
            end;
        {ra_event, _, {rejected, {not_leader, NewL, C}}} ->
            L2 = case NewL of undefined -> L; _ -> NewL end,
            Send(L2, C),
            Client(L2, Out, Applied)
    after 30000 -> {stuck, Out, Applied}
    end
end,
T0 = erlang:monotonic_time(microsecond),
Pids = [spawn(fun() ->
            [Send(Leader, {K, C}) || C <- lists:seq(1, 500)],
            Parent ! {done, self(), Client(Leader, 500, 0)}
        end) || K <- lists:seq(1, 5)],
Counts = [receive {done, P, Cnt} -> Cnt end || P <- Pids],
T1 = erlang:monotonic_time(microsecond),
Lat = fun Lat(Acc, End) ->
    case erlang:monotonic_time(microsecond) < End of
        true ->
            S = erlang:monotonic_time(microsecond),
            {ok, _, _} = ra:process_command(Leader, Payload),
            Lat([erlang:monotonic_time(microsecond) - S | Acc], End);
        false -> lists:sort(Acc)
    end
end,
Lats = Lat([], erlang:monotonic_time(microsecond) + __LAT_MS__ * 1000),
{Counts, T1 - T0, length(Lats), lists:nth(length(Lats) div 2 + 1, Lats),
 lists:nth(min(length(Lats), length(Lats) * 99 div 100 + 1), Lats)}.
"""


# ra_bench's client and machine as a compiled module (loaded on every Erlang node from source with
# compile:forms, so no .beam file is written): `apply/2` is the machine of `{simple, Fun, 0}`, `run/4`
# spawns the pipelining clients, `latency/3` times back-to-back process_command calls. No `%` comments
# and no double quotes: the source travels as one line inside an Erlang string.
_RA_BENCH_MODULE = """
-module(pyra_ra_bench).
-export([apply/2, run/4, latency/3]).
apply(_Cmd, S) -> S + 1.
run(Leader, Payload, Ms, NClients) ->
    Parent = self(),
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    T0 = erlang:monotonic_time(microsecond),
    Pids = [spawn_link(fun() -> start(Parent, Leader, Payload, Deadline, K) end)
            || K <- lists:seq(1, NClients)],
    Counts = [receive {done, P, N} -> N end || P <- Pids],
    {Counts, erlang:monotonic_time(microsecond) - T0}.
start(Parent, Leader, Payload, Deadline, K) ->
    [ok = ra:pipeline_command(Leader, Payload, {K, C}, normal) || C <- lists:seq(1, 500)],
    Parent ! {done, self(), client(Leader, Payload, Deadline, 500, 0)}.
client(L, Payload, Deadline, Out, Applied) ->
    receive
        {ra_event, _, {applied, Replies}} ->
            N = length(Replies),
            case erlang:monotonic_time(millisecond) < Deadline of
                true ->
                    [ok = ra:pipeline_command(L, Payload, C, normal) || {C, _} <- Replies],
                    client(L, Payload, Deadline, Out, Applied + N);
                false when Out =:= N -> Applied + N;
                false -> client(L, Payload, Deadline, Out - N, Applied + N)
            end;
        {ra_event, _, {rejected, {not_leader, NewL, C}}} ->
            L2 = case NewL of undefined -> L; _ -> NewL end,
            ok = ra:pipeline_command(L2, Payload, C, normal),
            client(L2, Payload, Deadline, Out, Applied)
    after 30000 -> exit({stuck, Out, Applied})
    end.
latency(Leader, Payload, Ms) ->
    Lats = lists:sort(lat(Leader, Payload, erlang:monotonic_time(microsecond) + Ms * 1000, [])),
    Len = length(Lats),
    {Len, lists:nth(Len div 2 + 1, Lats), lists:nth(min(Len, Len * 99 div 100 + 1), Lats)}.
lat(Leader, Payload, End, Acc) ->
    S = erlang:monotonic_time(microsecond),
    case S < End of
        true ->
            {ok, _, _} = ra:process_command(Leader, Payload),
            lat(Leader, Payload, End, [erlang:monotonic_time(microsecond) - S | Acc]);
        false -> Acc
    end.
"""

_COMPILE = (
    '{ok, Toks, _} = erl_scan:string("__SRC__"), '
    "Split = fun Sp([], _, Out) -> lists:reverse(Out); "
    "Sp([{dot, _} = D | T], Acc, Out) -> Sp(T, [], [lists:reverse([D | Acc]) | Out]); "
    "Sp([H | T], Acc, Out) -> Sp(T, [H | Acc], Out) end, "
    "Forms = [begin {ok, F} = erl_parse:parse_form(Ts), F end || Ts <- Split(Toks, [], [])], "
    "{ok, Mod, Bin} = compile:forms(Forms), "
    '{module, Mod} = code:load_binary(Mod, "pyra_ra_bench.erl", Bin).'
)


def bench_ra(seconds: float, eval_client: bool = False) -> tuple[float, float, float]:
    """The same workload on a real Ra 2.2.0 cluster of three erl nodes; returns (ops/s, p50 ms, p99 ms).

    Args:
        seconds: length of the pipelined phase (the latency phase lasts ``min(seconds, 5)``).
        eval_client: drive Ra with the erl_eval load generator and an erl_eval closure as the machine
            instead of the compiled ``pyra_ra_bench`` module (interpreted: slower for Ra).
    """
    cookie = uuid.uuid4().hex
    tag = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="ra-bench-", dir=os.environ.get("PYRA_BENCH_DIR")) as data_dir:
        peers = [
            ErlPeer(
                f"rabench{k}_{tag}",
                cookie,
                code_path=ra_ebin_dirs(),
                extra_args=["-ra", "data_dir", f'"{data_dir}/n{k}"'],
            )
            for k in (1, 2, 3)
        ]
        try:
            for peer in peers:
                peer.start()
                peer.eval("{ok, _} = application:ensure_all_started(ra).")
                peer.eval("{ok, _} = ra_system:start_default().")
                if not eval_client:
                    src = " ".join(_RA_BENCH_MODULE.split())
                    peer.eval(_COMPILE.replace("__SRC__", src), timeout=60)
            first = peers[0]
            for peer in peers[1:]:
                first.eval(f"pong = net_adm:ping('{peer.node}').")
            ids = ", ".join(f"{{bench, '{peer.node}'}}" for peer in peers)
            machine = (
                "{simple, fun(_C, S) -> S + 1 end, 0}"
                if eval_client
                else "{simple, fun pyra_ra_bench:apply/2, 0}"
            )
            first.eval(f"{{ok, _, []}} = ra:start_cluster(default, bench, {machine}, [{ids}]).", timeout=60)
            # Make the first node's server the leader, so the load generator talks to a local leader
            # (as the pyra bench's client does).
            first.eval("{ok, _, _} = ra:process_command({bench, node()}, <<>>).", timeout=60)
            first.eval(
                "Me = {bench, node()}, _ = ra:transfer_leadership(Me, Me), "
                "WaitLeader = fun W(0) -> not_leader; W(K) -> case ra:members(Me) of "
                "{ok, _, Me} -> ok; _ -> timer:sleep(100), W(K - 1) end end, ok = WaitLeader(100).",
                timeout=60,
            )
            ms = int(seconds * 1000)
            lat_ms = int(min(seconds, 5.0) * 1000)
            if eval_client:
                expr = _RA_LOAD.replace("__MS__", str(ms)).replace("__LAT_MS__", str(lat_ms))
                text = first.eval(expr, timeout=seconds * 3 + 120)
            else:
                payload = "binary:copy(<<7>>, 256)"
                text = first.eval(
                    f"pyra_ra_bench:run({{bench, node()}}, {payload}, {ms}, 5).", seconds * 3 + 60
                )
                text += first.eval(f"pyra_ra_bench:latency({{bench, node()}}, {payload}, {lat_ms}).", 120)
        finally:
            for peer in peers:
                peer.stop()
    # Both forms read {[C1, ..., C5], ElapsedUs, ...} then {NLat, P50Us, P99Us}: take the integers in order.
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    counts = numbers[:5]
    elapsed_us, n_lat, p50_us, p99_us = numbers[5:9]
    ops = sum(counts) / (elapsed_us / 1e6)
    print(
        f"ra 2.2.0 pipelined: {sum(counts)} commands in {elapsed_us / 1e6:.2f} s; "
        f"blocking client: {n_lat} process_command calls"
    )
    return ops, p50_us / 1000, p99_us / 1000


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a child process has used so far (Linux ``/proc/PID/stat``)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# `python -m pyra_dist` with the cyclic GC's thresholds set first (what --tune-gc does in-process).
_GC_NODE_MAIN = (
    "import gc, sys; gc.set_threshold(*{threshold}); from pyra_dist.cli import main; sys.exit(main())"
)


def _wait_ready(proc: subprocess.Popen[bytes], out_path: str, timeout: float = 60.0) -> None:
    """Wait until a ``pyra node`` printed its ``ready`` line into ``out_path``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(out_path, errors="replace") as f:
            text = f.read()
        if any(line.startswith("ready") for line in text.splitlines()):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"pyra node did not start: {text[-2000:]!r}")


def bench_pyra_nodes(
    seconds: float,
    profile_dir: str | None = None,
    *,
    node_script: str | None = None,
    show_output: bool = False,
    gc_threshold: tuple[int, int, int] | None = None,
    latency_only: bool = False,
) -> tuple[float, float, float]:
    """Three ``pyra node`` OS processes joined by Erlang distribution, driven by an Erlang client node.

    The cluster is formed with ``ra:start_cluster`` from a real OTP node (Ra 2.2.0 loaded) on the three
    Python nodes, with ``{simple, fun maps:merge/2, #{}}`` as the machine (a Python twin exists) and
    ``#{a => <<256 bytes>>}`` as the command; the same compiled ``pyra_ra_bench`` clients drive it. Every
    command crosses distribution (ETF) from the client to the leader and from the leader to both followers.

    Args:
        seconds: length of the pipelined phase (the latency phase lasts ``min(seconds, 5)``).
        profile_dir: run each node under cProfile and write ``node1.prof``... there (read them with
            ``python -m pstats``); the nodes stop cleanly on SIGTERM, which writes the files.
        node_script: run the nodes with this script (same arguments as ``python -m pyra_dist``)
            instead of ``-m pyra_dist``, e.g. a wrapper that instruments the node.
        show_output: print the last lines each node wrote (stdout and stderr) after it stopped.
        gc_threshold: ``gc.set_threshold`` arguments for the node processes (``--tune-gc``).
        latency_only: skip the pipelined phase (ops/s is then 0): the blocking client alone, e.g. to
            attach a sampling profiler to the nodes while only it runs.

    Returns:
        (ops/s, p50 ms, p99 ms).
    """
    cookie = uuid.uuid4().hex
    tag = uuid.uuid4().hex[:6]
    names = [f"pyrabench{k}_{tag}@127.0.0.1" for k in (1, 2, 3)]
    with tempfile.TemporaryDirectory(prefix="pyra-nodes-", dir=os.environ.get("PYRA_BENCH_DIR")) as data_dir:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for k, name in enumerate(names):
                args = [
                    "node",
                    "--name",
                    name,
                    "--cookie",
                    cookie,
                    "--data-dir",
                    f"{data_dir}/{k}",
                    "--visible",
                ]
                runner = [sys.executable]
                if profile_dir is not None:
                    runner += ["-m", "cProfile", "-o", f"{profile_dir}/node{k + 1}.prof"]
                if node_script is not None:
                    runner.append(node_script)
                elif gc_threshold is not None:
                    # The same application-level GC setting as the in-process run (--tune-gc).
                    runner += ["-c", _GC_NODE_MAIN.format(threshold=gc_threshold)]
                else:
                    runner += ["-m", "pyra_dist"]
                # Output goes to a file: a pipe nobody reads would block a node that logs a lot.
                with open(f"{data_dir}/node{k + 1}.out", "wb") as out:
                    procs.append(subprocess.Popen([*runner, *args], stdout=out, stderr=subprocess.STDOUT))
            for k, proc in enumerate(procs):
                _wait_ready(proc, f"{data_dir}/node{k + 1}.out")
            with ErlPeer(
                f"pyrabenchdrv_{tag}",
                cookie,
                long_names=True,
                code_path=ra_ebin_dirs(),
                extra_args=["-ra", "data_dir", f'"{data_dir}/driver"'],
            ) as driver:
                driver.eval("{ok, _} = application:ensure_all_started(ra).")
                driver.eval(_COMPILE.replace("__SRC__", " ".join(_RA_BENCH_MODULE.split())), timeout=60)
                for name in names:
                    driver.eval(f"pong = net_adm:ping('{name}').")
                ids = ", ".join(f"{{bench, '{name}'}}" for name in names)
                machine = "{simple, fun maps:merge/2, #{}}"
                driver.eval(
                    f"{{ok, _, []}} = ra:start_cluster(default, bench, {machine}, [{ids}]).", timeout=60
                )
                driver.eval(f"{{ok, _, L}} = ra:process_command({{bench, '{names[0]}'}}, #{{}}).", timeout=60)
                payload = "#{a => binary:copy(<<7>>, 256)}"
                ms = int(seconds * 1000)
                pids = [proc.pid for proc in procs] + ([driver.proc.pid] if driver.proc is not None else [])
                cpu0 = [_cpu_seconds(pid) for pid in pids]
                if not latency_only:
                    text = driver.eval(f"pyra_ra_bench:run(L, {payload}, {ms}, 5).", seconds * 3 + 60)
                else:
                    text = "{[0,0,0,0,0],1000000}"
                cpu = [_cpu_seconds(pid) - c0 for pid, c0 in zip(pids, cpu0, strict=True)]
                lat_ms = int(min(seconds, 5.0) * 1000)
                cpu0 = [_cpu_seconds(pid) for pid in pids]
                text += driver.eval(f"pyra_ra_bench:latency(L, {payload}, {lat_ms}).", 120)
                lat_cpu = [_cpu_seconds(pid) - c0 for pid, c0 in zip(pids, cpu0, strict=True)]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if show_output:
                for k in range(len(procs)):
                    with open(f"{data_dir}/node{k + 1}.out", errors="replace") as f:
                        tail = f.read().splitlines()[-20:]
                    print(f"--- node{k + 1} output (last {len(tail)} lines)", *tail, sep="\n")
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    elapsed_us, n_lat, p50_us, p99_us = numbers[5:9]
    done = max(1, sum(numbers[:5]))
    print(
        f"pyra nodes pipelined: {sum(numbers[:5])} commands in {elapsed_us / 1e6:.2f} s; "
        f"blocking: {n_lat} calls"
    )
    # CPU per command of each OS process during the pipelined phase (the leader is pyrabench1 unless
    # an election moved it): what the throughput costs, independent of other load on the machine.
    print(
        "pipelined CPU us/command (node1 node2 node3 erl-driver): "
        + " ".join(f"{c / done * 1e6:.0f}" for c in cpu)
    )
    # The same for the blocking client: CPU per call is what one command costs end to end; on this
    # 2-core machine, CPU (not disk) is what the blocking latency is made of.
    print(
        "blocking CPU us/call (node1 node2 node3 erl-driver): "
        + " ".join(f"{c / max(1, n_lat) * 1e6:.0f}" for c in lat_cpu)
    )
    return sum(numbers[:5]) / (elapsed_us / 1e6), p50_us / 1000, p99_us / 1000


def main(
    seconds: float,
    profile: bool,
    skip_ra: bool,
    ra_eval: bool,
    nodes: bool,
    nodes_only: bool = False,
    profile_nodes: str | None = None,
    node_script: str | None = None,
    show_output: bool = False,
    gc_threshold: tuple[int, int, int] | None = None,
    latency_only: bool = False,
) -> None:
    """Run the benchmarks and print the summary line."""
    if nodes_only:
        mp_ops, mp_p50, mp_p99 = bench_pyra_nodes(
            seconds,
            profile_nodes,
            node_script=node_script,
            show_output=show_output,
            gc_threshold=gc_threshold,
            latency_only=latency_only,
        )
        print(f"throughput: pyra_nodes ops/s={mp_ops:.0f} p50_ms={mp_p50:.2f} p99_ms={mp_p99:.2f}")
        return
    ops, p50, p99 = asyncio.run(bench_pyra(seconds, profile))
    line = f"throughput: pyra ops/s={ops:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f}"
    if not skip_ra:
        ra_ops, ra_p50, ra_p99 = bench_ra(seconds, ra_eval)
        line += f" ra ops/s={ra_ops:.0f} p50_ms={ra_p50:.2f} p99_ms={ra_p99:.2f}"
    if nodes:
        mp_ops, mp_p50, mp_p99 = bench_pyra_nodes(
            seconds,
            profile_nodes,
            node_script=node_script,
            show_output=show_output,
            gc_threshold=gc_threshold,
        )
        line += f" pyra_nodes ops/s={mp_ops:.0f} p50_ms={mp_p50:.2f} p99_ms={mp_p99:.2f}"
    print(line)
    # The summary format, last.
    if not skip_ra:
        ratio = ops / ra_ops if ra_ops else 0.0
        print(
            f"throughput: pyra={ops:.0f} ops/s ra={ra_ops:.0f} ops/s ratio={ratio:.2f} "
            f"pyra_p50_ms={p50:.2f} pyra_p99_ms={p99:.2f} ra_p50_ms={ra_p50:.2f} ra_p99_ms={ra_p99:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--skip-ra", action="store_true", help="only the pyra cluster")
    parser.add_argument("--ra-eval", action="store_true", help="drive Ra from erl_eval, not compiled code")
    parser.add_argument(
        "--pyra-nodes",
        action="store_true",
        help="also run three `pyra node` processes over Erlang distribution (Erlang client node)",
    )
    parser.add_argument(
        "--tune-gc",
        action="store_true",
        help="raise the cyclic GC's gen-0 threshold, in this process and in the `pyra node` processes "
        "(an application-level setting pyra never makes itself)",
    )
    parser.add_argument(
        "--nodes-only", action="store_true", help="only the three `pyra node` processes (no in-process run)"
    )
    parser.add_argument(
        "--profile-nodes", metavar="DIR", help="cProfile each `pyra node` process into DIR/nodeN.prof"
    )
    parser.add_argument("--node-script", help="run each `pyra node` with this script instead of -m pyra_dist")
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="with --nodes-only: only the blocking client (no pipelined phase)",
    )
    parser.add_argument("--node-output", action="store_true", help="print the end of each node's output")
    args = parser.parse_args()
    threshold = (100_000, 50, 1000) if args.tune_gc else None
    if threshold is not None:
        gc.set_threshold(*threshold)
    main(
        args.seconds,
        args.profile,
        args.skip_ra,
        args.ra_eval,
        args.pyra_nodes or args.nodes_only,
        args.nodes_only,
        args.profile_nodes,
        args.node_script,
        args.node_output,
        threshold,
        args.latency_only,
    )
