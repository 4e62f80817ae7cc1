"""Throughput of the sans-IO Raft core alone: 3 cores, in-memory logs, messages delivered in-process.

Measures how many commands per second the pure state machine can commit and apply when nothing
else costs anything (no codec, no sockets, no fsync): an upper bound for a pyra server.

    python bench/core_raft.py [--commands N] [--batch B]

``--batch`` commands are handed to the leader before messages are delivered (Ra's pipelining);
LogWritten completions are fed back after each delivery round. ``--priority low`` (the default of
``ra:pipeline_command``) lets the leader append them 25 at a time on ``flush_commands``.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import deque

from pyra_dist.core.effects import AppendToLog, Effect, SendRpc, StartTimer, TruncateLog
from pyra_dist.core.events import (
    CommandRequest,
    Event,
    LogWritten,
    PeerMessage,
    TimerFired,
    TimerKind,
    TriggerElection,
)
from pyra_dist.core.log_view import InMemoryLogView
from pyra_dist.core.server import RaftCore
from pyra_dist.core.state import CoreConfig
from pyra_dist.machines.kv import KvMachine
from pyra_dist.types import Role, ServerId


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--priority", choices=("low", "normal"), default="low")
    args = parser.parse_args()
    ids = tuple(ServerId(f"s{i}", "bench@local") for i in (1, 2, 3))
    logs = {i: InMemoryLogView() for i in ids}
    cores = {
        i: RaftCore(CoreConfig(server_id=i, cluster=ids, machine=KvMachine(), rng=random.Random(n)), logs[i])
        for n, i in enumerate(ids)
    }
    queue: deque[tuple[ServerId, Event]] = deque()

    def run(server: ServerId, effects: list[Effect]) -> None:
        for eff in effects:
            if isinstance(eff, SendRpc):
                queue.append((eff.to, PeerMessage(sender=server, msg=eff.rpc)))
            elif isinstance(eff, AppendToLog):
                logs[server].append(eff.entries)
                last = eff.entries[-1]
                queue.append((server, LogWritten(eff.entries[0].index, last.index, last.term)))
            elif isinstance(eff, TruncateLog):
                logs[server].truncate(eff.last_index)
            elif isinstance(eff, StartTimer) and eff.key == TimerKind.FLUSH_COMMANDS:
                queue.append((server, TimerFired(key=TimerKind.FLUSH_COMMANDS)))

    def settle() -> int:
        n = 0
        while queue:
            to, event = queue.popleft()
            run(to, cores[to].handle(event))
            n += 1
        return n

    leader_id = ids[0]
    run(leader_id, cores[leader_id].handle(TriggerElection()))
    settle()
    assert cores[leader_id].role == Role.LEADER
    leader = cores[leader_id]
    start = time.perf_counter()
    events = 0
    sent = 0
    while sent < args.commands:
        for _ in range(min(args.batch, args.commands - sent)):
            run(
                leader_id,
                leader.handle(CommandRequest(data=("put", sent % 1000, sent), priority=args.priority)),
            )
            sent += 1
        events += settle()
    elapsed = time.perf_counter() - start
    applied = min(c.last_applied for c in cores.values())
    print(
        f"core_raft: commands={args.commands} batch={args.batch} priority={args.priority} "
        f"applied_everywhere={applied} "
        f"events={events} seconds={elapsed:.2f} commands/s={args.commands / elapsed:,.0f} "
        f"events/s={events / elapsed:,.0f}"
    )


if __name__ == "__main__":
    main()
