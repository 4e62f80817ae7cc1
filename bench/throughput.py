"""Throughput and latency of a 3-member pyra cluster (ra_bench's workload), fsync on.

Three in-process nodes (one ``System`` each, each with its own WAL, fsync = datasync) host one
3-member cluster. Phase 1: 5 clients pipeline 256-byte commands with at most 500 in flight each
for ``--seconds`` (default 10 s) -> ops/s. Phase 2: one client runs ``process_command`` back to back
-> p50/p99 latency. The last line is ``throughput: ops/s=... p50_ms=... p99_ms=...``.

Run: ``python bench/throughput.py [--seconds 10] [--profile]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import tempfile
import time

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


async def main(seconds: float, profile: bool) -> None:
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
    print(f"throughput: ops/s={ops:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.profile))
