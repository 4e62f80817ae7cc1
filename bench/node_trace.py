"""Per-stage timestamps inside a ``pyra node`` process (bench only; never imported by pyra).

Run the distribution benchmark with it as the node script:
``PYRA_NODE_TRACE=/tmp/tr python bench/throughput.py --pyra-nodes --skip-ra --nodes-only --seconds 5
--node-script bench/node_trace.py``. Each node wraps the hot path of the dist transport, the server and
the WAL, records ``(CLOCK_MONOTONIC ns, label)`` pairs in memory (the clock is shared by all processes
of the machine, so the three nodes' records interleave correctly) and writes them to
``$PYRA_NODE_TRACE/<node>.trace`` when it exits. ``python bench/node_trace.py --report DIR`` merges the
files and prints, for the blocking phase (one command in flight at a time), the median offset of every
stage from the moment the leader read the client's command, and the gap until the next command arrived
(time spent in the Erlang client and on the wire back and forth).
"""

from __future__ import annotations

import atexit
import itertools
import os
import statistics
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

_RECORDS: deque[tuple[int, int, str]] = deque(maxlen=400_000)
_NODE = ["?"]


def _mark(label: str) -> None:
    _RECORDS.append((time.monotonic_ns(), time.thread_time_ns(), label))


def _wrap(cls: type, name: str, label: Callable[..., str | None], after: bool = False) -> None:
    original = getattr(cls, name)

    def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
        text = label(obj, *args, **kwargs)
        if text and not after:
            _mark(text)
        result = original(obj, *args, **kwargs)
        if text and after:
            _mark(text)
        return result

    setattr(cls, name, wrapper)


def _short(node: object) -> str:
    # pyrabench<N>_<tag>@host -> N; the Erlang driver -> d
    name = str(node).split("@")[0]
    digit = name[len("pyrabench") : len("pyrabench") + 1]
    return digit if name.startswith("pyrabench") and digit.isdigit() else "d"


def _event_label(ev: object) -> str:
    msg = getattr(ev, "msg", None)
    return type(ev).__name__ + (f"/{type(msg).__name__}" if msg is not None else "")


def install() -> None:
    """Wrap the hot path (dist channel, server process, core, WAL, storage)."""
    from erl_interop.dist.connection import DistConnection
    from erl_interop.dist.transport import DistChannel
    from pyra_dist.core.server import RaftCore
    from pyra_dist.log.wal import Wal
    from pyra_dist.server.process import ServerProcess
    from pyra_dist.server.storage import SystemStorage

    _wrap(DistConnection, "receive_data", lambda c, data, now: f"rx {len(data)}B from {_short(c.peer_node)}")
    _wrap(
        DistChannel,
        "_flush",
        lambda ch: f"tx {len(ch._conn._out)}B to {_short(ch.peer_node)}" if ch._conn._out else None,
    )
    _wrap(
        DistChannel,
        "send",
        lambda ch, control, payload=None: f"send queued to {_short(ch.peer_node)}"
        + (f" {str(payload)[:60]!r}" if os.environ.get("PYRA_NODE_TRACE_PAYLOADS") else ""),
    )
    _wrap(ServerProcess, "deliver", lambda p, ev: f"deliver {_event_label(ev)}")
    _wrap(ServerProcess, "deliver_now", lambda p, ev: f"deliver_now {_event_label(ev)}")
    _wrap(RaftCore, "handle", lambda c, ev: f"core {_event_label(ev)}")
    _wrap(Wal, "write_many", lambda w, *a, **k: "wal queued")
    _wrap(Wal, "_write_batch", lambda w, *a: "wal batch start")
    _wrap(Wal, "_sync", lambda w, *a: "wal sync done", after=True)
    _wrap(SystemStorage, "post", lambda s, *a: "wal posted")
    _wrap(SystemStorage, "_drain", lambda s: "wal drained on loop")


def _dump() -> None:
    out_dir = os.environ.get("PYRA_NODE_TRACE")
    if not out_dir:
        return
    with open(os.path.join(out_dir, f"{_NODE[0]}.trace"), "w") as f:
        for t, cpu, label in _RECORDS:
            f.write(f"{t} {cpu} {label}\n")


def report(directory: str) -> None:
    """Merge the nodes' trace files and print the blocking phase's per-stage breakdown."""
    merged: list[tuple[int, str, str, int]] = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".trace"):
            continue
        node = _short(name)
        with open(os.path.join(directory, name)) as f:
            for line in f:
                wall_text, cpu_text, text = line.rstrip("\n").split(" ", 2)
                merged.append((int(wall_text), node, text, int(cpu_text)))
    merged.sort()
    # A blocking command starts when the leader's core handles a CommandRequest (a call, not a batch
    # of casts) and the stages run until the next one.
    starts = [k for k, (_, _, label, _) in enumerate(merged) if label == "core CommandRequest"]
    # The blocking phase is the last run of single commands: keep the last 80 % of them.
    starts = starts[len(starts) // 5 :]
    offsets: dict[str, list[float]] = defaultdict(list)
    gaps: list[float] = []
    # back up to the read that carried the command
    for a, b in itertools.pairwise(starts):
        r = a
        while r > 0 and not (merged[r][2].startswith("rx") and merged[r][1] == merged[a][1]):
            r -= 1
        t0 = merged[r][0]
        counts: dict[str, int] = defaultdict(int)
        for t, node, label, _ in merged[r:b]:
            key = f"n{node} {label}"
            counts[key] += 1
            key = key if counts[key] == 1 else f"{key} #{counts[key]}"
            offsets[key].append((t - t0) / 1000)
        gaps.append((merged[b][0] - t0) / 1000)
    n = len(gaps)
    for a, b in list(itertools.pairwise(starts))[100:103]:
        r = a
        while r > 0 and not (merged[r][2].startswith("rx") and merged[r][1] == merged[a][1]):
            r -= 1
        print("sample command (wall us from the command's read; CPU us of the thread since its last mark):")
        last_cpu: dict[str, int] = {}
        for t, node, label, cpu in merged[r - 30 : b + 1]:
            key = node + ("w" if label.startswith(("wal batch", "wal sync", "wal posted")) else "")
            used = (cpu - last_cpu[key]) / 1000 if key in last_cpu else 0.0
            last_cpu[key] = cpu
            print(f"  {(t - merged[r][0]) / 1000:8.0f} us  cpu {used:6.0f}  n{node} {label}")
    print(f"{n} commands; median command-to-next-command {statistics.median(gaps):.0f} us")
    rows = sorted((statistics.median(v), k, len(v)) for k, v in offsets.items() if len(v) >= n // 2)
    for med, key, count in rows:
        print(f"  {med:8.0f} us  {key}  ({count})")


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "--report":
        report(sys.argv[2])
        return
    args = sys.argv[1:]
    if "--name" in args:
        _NODE[0] = args[args.index("--name") + 1].split("@")[0]
    install()
    atexit.register(_dump)
    from pyra_dist.cli import main as cli_main

    sys.argv = ["pyra", *args]
    code = cli_main()
    _dump()
    sys.exit(code)


if __name__ == "__main__":
    main()
