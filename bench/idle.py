"""Idle cost of many clusters: 1000 three-member clusters on three in-process nodes, doing nothing.

Starts the clusters (100 at a time), lets them settle, then measures this process's CPU use (user +
system, as a percentage of one core) over ``--seconds`` (default 10 s) and its resident set size.
Ra's design goal this checks: no per-cluster timers or heartbeats while idle. The last line is
``idle: clusters=N rss_mb=... cpu_pct=...``.

Run: ``python bench/idle.py [--clusters 1000] [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time

from pyra_dist import ra
from pyra_dist.machines import KvMachine
from pyra_dist.server import LocalNetwork, System
from pyra_dist.types import ServerId

NODES = ("i1@localhost", "i2@localhost", "i3@localhost")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def main(clusters: int, seconds: float) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 16384:  # one meta file descriptor per server
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(16384, hard), hard))
    with tempfile.TemporaryDirectory(prefix="pyra-idle-", dir=os.environ.get("PYRA_BENCH_DIR")) as data_dir:
        network = LocalNetwork()
        systems = [await System.start("default", data_dir, node, network=network) for node in NODES]
        for system in systems:
            await system.__aenter__()
        try:
            semaphore = asyncio.Semaphore(100)

            async def start(n: int) -> None:
                async with semaphore:
                    ids = [ServerId(f"c{n}", node) for node in NODES]
                    await ra.start_cluster(systems[0], f"c{n}", KvMachine(), ids, timeout=60)

            t0 = time.monotonic()
            await asyncio.gather(*(start(n) for n in range(clusters)))
            print(f"started {clusters} clusters ({3 * clusters} servers) in {time.monotonic() - t0:.1f} s")
            for n in range(0, clusters, max(1, clusters // 10)):
                await ra.process_command(systems[0], ServerId(f"c{n}", NODES[0]), ("put", "k", n))
            await asyncio.sleep(2.0)  # let the last replies, written events and timers settle
            cpu0, wall0 = _cpu_seconds(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu = (_cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100
            rss = _rss_mb()
            armed = sum(len(s._timers) for s in systems if s._timers is not None)
            print(f"armed timers across the 3 nodes while idle: {armed}")
        finally:
            for system in reversed(systems):
                await system.__aexit__(None, None, None)
    print(f"idle: clusters={clusters} nodes={len(NODES)} rss_mb={rss:.0f} cpu_pct={cpu:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.clusters, args.seconds))
