"""Blocking-client latency of a 3-member pyra cluster (fsync on), with an optional per-stage breakdown.

The same set-up as phase 2 of ``bench/throughput.py``: three in-process nodes (one ``System`` each,
each with its own WAL, fsync on) host one 3-member cluster; one client runs ``ra.process_command``
with a 256-byte payload back to back for ``--seconds`` and the script prints p50/p99. ``--runs N``
repeats the measurement on fresh clusters (the 2-core VM is shared: one run is not a number).

With ``--trace`` the script wraps the hot-path methods of the server and log layers (bench only,
nothing in the package changes) and records a timestamp for every stage a command passes through:
the client call, the leader's mailbox and core, the WAL queue, the WAL thread's batch, write and
sync on each node, the AERs, the WAL notifications reaching the loop, the followers' replies, the
reply to the client and the client waking up. It prints, per stage, the median offset from the
client call (tracing adds its own overhead, so compare stages, not totals, with untraced runs), then
every record of the three slowest commands.

Other options: ``--profile`` (cProfile of the event loop thread), ``--prefill N`` (pipeline N commands
first, as phase 1 of ``bench/throughput.py`` does), ``--wal KEY=VALUE`` (a ``SystemConfig`` key in Ra's
spelling, e.g. ``wal_pre_allocate=false``, to compare WAL options; without it the system gets
``System.start``'s defaults), ``--switch-interval S`` and ``--no-gc`` (interpreter settings, for
diagnosis only).

Run: ``python bench/latency.py [--seconds 5] [--runs 2] [--trace] [...]``. The last line is
``latency: pyra p50_ms=... p99_ms=... calls=...`` (medians over runs).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from throughput import NODES, BenchMachine  # bench/ is the script's directory: one workload, one home

from pyra_dist import ra
from pyra_dist.log.config import SystemConfig
from pyra_dist.server import LocalNetwork, System
from pyra_dist.types import ServerId


class Tracer:
    """Timestamped stage records for the command currently in flight (one at a time)."""

    def __init__(self) -> None:
        self.records: list[tuple[float, str]] = []
        self.commands: list[list[tuple[float, str]]] = []
        self.latencies: list[float] = []
        self.active = False
        self._undo: list[Callable[[], None]] = []

    def mark(self, label: str) -> None:
        if self.active:
            self.records.append((time.perf_counter(), label))

    def begin(self) -> None:
        self.records = []
        self.active = True
        self.mark("client call")

    def end(self) -> None:
        self.mark("client woke")
        self.active = False
        self.commands.append(self.records)

    def wrap(self, cls: type, name: str, label: Callable[..., str | None], after: bool = False) -> None:
        """Replace ``cls.name`` with a wrapper recording ``label(self, *args)`` before (or after) it."""
        original = getattr(cls, name)
        tracer = self

        if asyncio.iscoroutinefunction(original):

            async def awrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
                text = label(obj, *args, **kwargs) if tracer.active else None
                if text and not after:
                    tracer.mark(text)
                result = await original(obj, *args, **kwargs)
                if text and after:
                    tracer.mark(text)
                return result

            setattr(cls, name, awrapper)
        else:

            def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
                text = label(obj, *args, **kwargs) if tracer.active else None
                if text and not after:
                    tracer.mark(text)
                result = original(obj, *args, **kwargs)
                if text and after:
                    tracer.mark(text)
                return result

            setattr(cls, name, wrapper)
        self._undo.append(lambda: setattr(cls, name, original))

    def install(self) -> None:
        """Wrap the hot path of the server and log layers."""
        from pyra_dist.core.server import RaftCore
        from pyra_dist.log.wal import Wal
        from pyra_dist.server.effects import EffectInterpreter
        from pyra_dist.server.process import ServerProcess
        from pyra_dist.server.storage import ServerStorage, SystemStorage
        from pyra_dist.server.transport import LocalTransport

        def node_of_dir(path: object) -> str:
            text = str(path)
            for n in NODES:
                if n in text:
                    return n.split("@")[0]
            return "?"

        def short(node: str) -> str:
            return node.split("@")[0]

        self.wrap(
            ServerProcess,
            "deliver",
            lambda p, ev: f"{short(p.server_id.node)} mailbox <- {type(ev).__name__}"
            + (f"/{type(ev.msg).__name__}" if hasattr(ev, "msg") else ""),
        )
        self.wrap(
            RaftCore,
            "handle",
            lambda c, ev: f"{short(c.id.node)} core.handle {type(ev).__name__}"
            + (f"/{type(ev.msg).__name__}" if hasattr(ev, "msg") else ""),
        )
        self.wrap(EffectInterpreter, "execute", lambda i, p, effs: f"{short(p.server_id.node)} execute start")
        self.wrap(Wal, "write_many", lambda w, *a, **k: f"{node_of_dir(w._dir)} wal queued")
        self.wrap(Wal, "_write_batch", lambda w, *a: f"{node_of_dir(w._dir)} wal thread batch start")
        self.wrap(Wal, "_sync", lambda w, *a: f"{node_of_dir(w._dir)} wal fsync done", after=True)
        self.wrap(Wal, "_sync", lambda w, *a: f"{node_of_dir(w._dir)} wal write done (fsync start)")
        self.wrap(SystemStorage, "post", lambda s, *a: f"{node_of_dir(s.logs.wal._dir)} wal callback posted")
        self.wrap(SystemStorage, "_drain", lambda s: f"{node_of_dir(s.logs.wal._dir)} loop drains wal inbox")
        self.wrap(
            ServerStorage, "flush_written", lambda s: f"{node_of_dir(s._system.logs.wal._dir)} LogWritten out"
        )
        self.wrap(
            LocalTransport,
            "send_peer",
            lambda t, sender, to, rpc, _to: f"{short(sender.node)}->{short(to.node)} {type(rpc).__name__}",
        )
        self.wrap(LocalTransport, "reply", lambda t, to, reply: f"{short(t._node)} reply to client")

    def uninstall(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo = []

    def report_slowest(self, count: int = 3) -> None:
        """Print every record of the ``count`` slowest commands."""
        order = sorted(range(len(self.commands)), key=lambda k: self.latencies[k], reverse=True)
        for k in order[:count]:
            records = self.commands[k]
            t0 = records[0][0]
            print(f"slow command: {self.latencies[k]:.2f} ms")
            for t, label in records:
                print(f"  {(t - t0) * 1e6:8.0f} us  {label}")

    def report(self) -> None:
        """Print, per stage (first occurrence in a command), the median offset from the client call."""
        offsets: dict[str, list[float]] = defaultdict(list)
        for records in self.commands:
            t0 = records[0][0]
            seen: set[str] = set()
            counts: dict[str, int] = defaultdict(int)
            for t, label in records:
                counts[label] += 1
                key = label if counts[label] == 1 else f"{label} #{counts[label]}"
                if key not in seen:
                    seen.add(key)
                    offsets[key].append((t - t0) * 1e6)
        n = len(self.commands)
        rows = [(statistics.median(v), k, len(v)) for k, v in offsets.items() if len(v) >= n // 2]
        rows.sort()
        print(f"breakdown over {n} traced commands (median us from the client call; stages seen in >= half):")
        for med, key, count in rows:
            print(f"  {med:8.0f} us  {key}  ({count})")


async def _prefill(system: System, leader: ServerId, payload: bytes, count: int) -> None:
    """Pipeline ``count`` commands (500 in flight) and wait until all are applied, as phase 1 of
    ``bench/throughput.py`` leaves the cluster before its latency phase (full memtables, a big heap)."""
    async with ra.EventQueue(system) as events:
        sent = applied = 0
        while sent < min(count, 500):
            sent += 1
            await ra.pipeline_command(system, leader, payload, sent, "normal", notify=events.pid)
        while applied < count:
            event = await events.get()
            assert event.kind == "applied", event
            assert isinstance(event.body, tuple)
            applied += len(event.body)
            for _ in range(len(event.body)):
                if sent < count:
                    sent += 1
                    await ra.pipeline_command(system, leader, payload, sent, "normal", notify=events.pid)


async def measure(
    seconds: float,
    tracer: Tracer | None,
    profiler: cProfile.Profile | None = None,
    wal: dict[str, object] | None = None,
    prefill: int = 0,
) -> tuple[float, float, int]:
    """One fresh cluster, ``seconds`` of back-to-back ``process_command``; returns (p50 ms, p99 ms, calls)."""
    with tempfile.TemporaryDirectory(prefix="pyra-lat-", dir=os.environ.get("PYRA_BENCH_DIR")) as data_dir:
        network = LocalNetwork()
        # Without --wal: System.start's own defaults, as bench/throughput.py gets them.
        config = (
            SystemConfig.from_mapping({"name": "default", "data_dir": data_dir, **wal}) if wal else None
        )
        systems = [
            await System.start("default", data_dir, node, network=network, config=config) for node in NODES
        ]
        for system in systems:
            await system.__aenter__()
        try:
            ids = [ServerId("bench", node) for node in NODES]
            await ra.start_cluster(systems[0], "bench", BenchMachine(), ids)
            _, leader = await ra.members(systems[0], ids[0])
            assert isinstance(leader, ServerId)
            caller = next(s for s in systems if s.node == leader.node)
            payload = os.urandom(256)
            if prefill:
                await _prefill(caller, leader, payload, prefill)
            for _ in range(200):  # warm-up
                await ra.process_command(caller, leader, payload)
            latencies: list[float] = []
            if profiler is not None:
                profiler.enable()
            cpu0 = time.process_time()
            loop_cpu0 = time.thread_time()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if tracer is not None:
                    tracer.begin()
                t0 = time.perf_counter()
                await ra.process_command(caller, leader, payload)
                latencies.append((time.perf_counter() - t0) * 1000)
                if tracer is not None:
                    tracer.end()
            if profiler is not None:
                profiler.disable()
            cpu = (time.process_time() - cpu0) / len(latencies) * 1e6
            loop_cpu = (time.thread_time() - loop_cpu0) / len(latencies) * 1e6
            print(f"  CPU per call: {cpu:.0f} us (all threads), {loop_cpu:.0f} us on the event loop thread")
        finally:
            for system in reversed(systems):
                await system.__aexit__(None, None, None)
    if tracer is not None:
        tracer.latencies.extend(latencies)
    latencies.sort()
    n = len(latencies)
    tail = " ".join(f"p{q}={latencies[min(n - 1, int(n * q / 100))]:.2f}" for q in (90, 95, 98, 99))
    print(f"  percentiles ms: {tail}")
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return p50, p99, len(latencies)


def main() -> None:
    """Parse arguments, run, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--trace", action="store_true", help="print a per-stage breakdown (slows it down)")
    parser.add_argument("--profile", action="store_true", help="cProfile the event loop thread (top 30)")
    parser.add_argument(
        "--wal",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a SystemConfig key in Ra's spelling, e.g. wal_pre_allocate=true, wal_write_strategy=o_sync",
    )
    parser.add_argument(
        "--prefill", type=int, default=0, help="pipeline this many commands first (throughput.py's phase 1)"
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval (seconds): how long a WAL thread waits for the GIL while the loop runs",
    )
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic GC (diagnosis only)")
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    tracer = Tracer() if args.trace else None
    if tracer is not None:
        tracer.install()
    profiler = cProfile.Profile() if args.profile else None
    wal: dict[str, object] = {}
    for item in args.wal:
        key, _, value = item.partition("=")
        wal[key] = {"true": True, "false": False}.get(value, int(value) if value.isdigit() else value)
    results = []
    for run in range(args.runs):
        p50, p99, calls = asyncio.run(measure(args.seconds, tracer, profiler, wal, args.prefill))
        print(f"run {run + 1}: p50_ms={p50:.3f} p99_ms={p99:.3f} calls={calls}")
        results.append((p50, p99, calls))
    if tracer is not None:
        tracer.report()
        tracer.report_slowest()
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    p50 = statistics.median(r[0] for r in results)
    p99 = statistics.median(r[1] for r in results)
    calls = int(statistics.median(r[2] for r in results))
    print(f"latency: pyra p50_ms={p50:.2f} p99_ms={p99:.2f} calls={calls}")


if __name__ == "__main__":
    main()
