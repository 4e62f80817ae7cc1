"""WAL group-commit benchmark: W concurrent writers (servers) appending 256-byte entries.

Each writer is an asyncio task that appends one entry and waits for its written notification
(delivered from the WAL thread with ``loop.call_soon_threadsafe``) before appending the next, as
a Raft follower with a pipeline of one would. The same run measures this disk's raw limit: a
loop of 4 KiB ``write`` + ``fdatasync``. Group commit works when entries/s grows with the number
of writers while fsyncs/s stays near the raw limit.

Usage: ``python bench/wal.py [--seconds S] [--writers 1,100,1000] [--dir DIR]``. Prints one line
per writer count, the largest last:
``wal: writers=W entries/s=E fsyncs/s=F raw_fsyncs/s=R``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from pyra_dist.log import LogSystem, SystemConfig, WalEvent, WalWritten

ENTRY = b"\x83" + b"x" * 255  # 256 bytes, the size Ra's benchmarks use for small commands


def raw_fsyncs_per_second(directory: Path, seconds: float) -> float:
    """Loop 4 KiB write + fdatasync for ``seconds`` and return the rate."""
    path = directory / "raw.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    block = b"\0" * 4096
    n = 0
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            os.write(fd, block)
            os.fdatasync(fd)
            n += 1
    finally:
        os.close(fd)
        path.unlink()
    return n / (time.perf_counter() - start)


async def run_writers(directory: Path, writers: int, seconds: float) -> tuple[float, float]:
    """Run ``writers`` concurrent writers for ``seconds``; returns (entries/s, fsyncs/s)."""
    system = LogSystem.open(SystemConfig(data_dir=directory), "bench")
    loop = asyncio.get_running_loop()
    waiters: dict[str, asyncio.Future[None]] = {}

    # Notifications arrive on the WAL thread; they are queued and the loop is woken once per
    # burst (one self-pipe write per batch instead of one per writer), as a driver should do.
    arrived: collections.deque[str] = collections.deque()
    scheduled = threading.Event()

    def on_written(ev: WalEvent) -> None:
        if isinstance(ev, WalWritten):
            arrived.append(ev.uid)
            if not scheduled.is_set():
                scheduled.set()
                loop.call_soon_threadsafe(_wake)

    def _wake() -> None:
        scheduled.clear()
        while arrived:
            fut = waiters.pop(arrived.popleft(), None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    logs = [system.open_server_log(f"w{k}", on_written) for k in range(writers)]
    stop = False
    counts = [0] * writers

    async def writer(k: int) -> None:
        log = logs[k]
        index = 0
        while not stop:
            index += 1
            fut = loop.create_future()
            waiters[log.uid] = fut
            log.append([(index, 1, ENTRY)])
            await fut
            counts[k] += 1

    syncs0 = system.wal.metrics.syncs
    start = time.perf_counter()
    tasks = [asyncio.create_task(writer(k)) for k in range(writers)]
    await asyncio.sleep(seconds)
    stop = True
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    syncs = system.wal.metrics.syncs - syncs0
    system.close()
    return sum(counts) / elapsed, syncs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--writers", default="1,100,1000")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="pyra-wal-bench-", dir=args.dir))
    try:
        raw = raw_fsyncs_per_second(base, args.seconds)
        counts = sorted(int(w) for w in args.writers.split(","))
        for w in counts:
            run_dir = base / f"w{w}"
            entries, fsyncs = asyncio.run(run_writers(run_dir, w, args.seconds))
            shutil.rmtree(run_dir, ignore_errors=True)
            print(
                f"wal: writers={w} entries/s={entries:.0f} fsyncs/s={fsyncs:.0f} raw_fsyncs/s={raw:.0f}",
                flush=True,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
