"""The ``pyra`` command line: ``demo``, ``node``, ``status`` and the storage dump commands.

Owns: argument parsing and the ``pyra demo`` walkthrough (the README's main job: three nodes, a
key/value cluster, commands, membership changes, a leader crash and its failover, a restart from
disk). Must not: reach into servers except through ``pyra_dist.ra`` and ``System``; the dump
commands delegate to ``pyra_dist.log.dump``.

Exit codes: 0 success; 1 a demo step failed (the message names the step); 2 usage or unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

from pyra_dist import ra
from pyra_dist.machines import KvMachine
from pyra_dist.server.system import System
from pyra_dist.server.transport import LocalNetwork
from pyra_dist.types import ServerId

_T = TypeVar("_T")


class DemoFailed(Exception):
    """A demo step did not produce what it should have."""


class _Demo:
    """The ``pyra demo`` walkthrough; every step prints one or more progress lines."""

    def __init__(self, data_dir: Path, out: TextIO, nodes: int = 3) -> None:
        self.data_dir = data_dir
        self.out = out
        self.network = LocalNetwork()
        self.node_names = [f"pyra{i}@localhost" for i in range(1, nodes + 2)]
        self.systems: dict[str, System] = {}
        self.step = "start"
        self.started = time.monotonic()
        # Every command the cluster acknowledged, key -> value: none may be lost.
        self.acknowledged: dict[str, object] = {}

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.out.write(f"[{elapsed:6.2f}s] {text}\n")
        self.out.flush()

    async def start_node(self, node: str) -> System:
        system = await System.start("default", self.data_dir, node, network=self.network)
        await system.__aenter__()
        self.systems[node] = system
        return system

    async def stop_all(self) -> None:
        for node in list(self.systems):
            system = self.systems.pop(node)
            await system.__aexit__(None, None, None)

    async def wait_for(
        self, what: str, probe: Callable[[], Awaitable[_T]], ok: Callable[[_T], bool], limit_s: float = 30.0
    ) -> _T:
        deadline = time.monotonic() + limit_s
        last: object = None
        while True:
            try:
                value = await probe()
                if ok(value):
                    return value
                last = value
            except ra.RaError as exc:
                last = exc
            if time.monotonic() > deadline:
                raise DemoFailed(f"{what}: still not true after {limit_s:.0f} s (last: {last!r})")
            await asyncio.sleep(0.05)

    async def change(self, request: Callable[[], Awaitable[_T]]) -> _T:
        """Run a membership change; retry while the previous one is not committed (ra-internals §3.4)."""
        deadline = time.monotonic() + 30.0
        while True:
            try:
                return await request()
            except ra.ClusterChangeNotPermitted:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def run(self) -> None:
        out_nodes = self.node_names[:3]
        self.step = "start nodes"
        self.say(f"data directory: {self.data_dir}")
        for node in out_nodes:
            await self.start_node(node)
        self.say(
            f"started 3 nodes {', '.join(out_nodes)} (in this one process, connected by an in-process "
            "network; Erlang-distribution nodes come with `pyra node`)"
        )
        sys1 = self.systems[out_nodes[0]]
        ids = [ServerId("demo", node) for node in out_nodes]

        self.step = "start cluster"
        started, _ = await ra.start_cluster(sys1, "demo", KvMachine(), ids)
        _, leader = await ra.members(sys1, ids[0])
        self.say(f"cluster 'demo' with the key/value machine: members {_fmt(started)}, leader {leader}")

        self.step = "commands"
        for key, value in (("apple", 3), ("pear", 5), ("plum", 7)):
            reply, leader = await ra.process_command(sys1, ids[1], ("put", key, value))
            if reply != "ok":
                raise DemoFailed(f"put {key} answered {reply!r}")
            self.acknowledged[key] = value
            self.say(f"process_command(put {key}={value}) -> {reply!r} (leader {leader})")
        reply, leader = await ra.process_command(sys1, ids[2], ("cas", "apple", 3, 4))
        if reply != ("ok", 4):
            raise DemoFailed(f"cas answered {reply!r}")
        self.acknowledged["apple"] = 4
        self.say(f"process_command(cas apple 3->4) -> {reply!r}")
        got, _ = await ra.process_command(sys1, ids[0], ("get", "pear"))
        self.say(f"process_command(get pear) -> {got!r}")
        if got != 5:
            raise DemoFailed(f"get pear answered {got!r}")

        self.step = "pipeline"
        async with ra.EventQueue(sys1) as events:
            for i in range(200):
                await ra.pipeline_command(sys1, leader, ("put", f"p{i}", i), correlation=i, notify=events.pid)
            applied = 0
            while applied < 200:
                event = await asyncio.wait_for(events.get(), 30)
                if event.kind != "applied":
                    raise DemoFailed(f"pipeline: unexpected event {event}")
                assert isinstance(event.body, tuple)
                applied += len(event.body)
        self.acknowledged.update({f"p{i}": i for i in range(200)})
        self.say(f"pipeline_command x200 with correlations -> {applied} applied notifications")

        self.step = "queries"
        res = await ra.local_query(sys1, ids[2], lambda s: len(s))
        self.say(f"local_query on {ids[2]} -> {res.result} keys at index {res.index_term[0]} (maybe stale)")
        count, _ = await ra.consistent_query(sys1, ids[2], lambda s: len(s))
        self.say(f"consistent_query -> {count} keys (confirmed by a quorum)")

        self.step = "add member"
        node4 = self.node_names[3]
        await self.start_node(node4)
        new = ServerId("demo", node4)
        (index, term), _ = await self.change(lambda: ra.add_member(sys1, leader, new))
        await ra.start_server(sys1, "demo", new, KvMachine(), [*ids, new])
        members, _ = await ra.members(sys1, leader)
        self.say(f"add_member {new} at index {index} (term {term}); members now {_fmt(members)}")
        applied_keys = await self.wait_for(
            f"{new} catching up",
            lambda: ra.local_query(sys1, new, lambda s: len(s)),
            lambda r: r.result == len(self.acknowledged),
        )
        self.say(f"{new} caught up: {applied_keys.result} keys")

        self.step = "remove member"
        await self.change(lambda: ra.leave_and_terminate(sys1, leader, new))
        members, _ = await ra.members(sys1, leader)
        if new in members:
            raise DemoFailed(f"{new} still a member: {members}")
        self.say(f"leave_and_terminate {new}; members now {_fmt(members)}")
        await self.systems.pop(node4).__aexit__(None, None, None)

        self.step = "kill the leader"
        _, leader = await ra.members(sys1, ids[0])
        victim = self.systems[leader.node]
        self.say(f"killing node {leader.node} (the leader's node) abruptly: its servers lose their memory")
        t0 = time.monotonic()
        await victim.crash()
        del self.systems[leader.node]
        survivors = [sid for sid in ids if sid != leader]
        caller = self.systems[survivors[0].node]
        _, new_leader = await self.wait_for(
            "a new leader",
            lambda: ra.members(caller, survivors, timeout=2.0),
            lambda r: r[1] != leader,
        )
        self.say(f"new leader {new_leader} elected {1000 * (time.monotonic() - t0):.0f} ms after the crash")
        reply, _ = await ra.process_command(caller, new_leader, ("put", "after-failover", 1))
        self.acknowledged["after-failover"] = 1
        self.say(f"process_command(put after-failover=1) -> {reply!r} on the new leader")
        state, _ = await ra.consistent_query(caller, new_leader, lambda s: dict(s))
        assert isinstance(state, dict)
        lost = {k: v for k, v in self.acknowledged.items() if state.get(k) != v}
        if lost:
            raise DemoFailed(f"acknowledged commands lost: {lost}")
        self.say(f"all {len(self.acknowledged)} acknowledged writes present after failover")

        self.step = "restart the crashed node"
        restarted = await self.start_node(leader.node)
        await ra.restart_server(restarted, leader)
        res = await self.wait_for(
            f"{leader} catching up",
            lambda: ra.local_query(restarted, leader, lambda s: dict(s)),
            lambda r: r.result == state or (isinstance(r.result, dict) and "after-failover" in r.result),
        )
        assert isinstance(res.result, dict)
        lost = {k: v for k, v in self.acknowledged.items() if res.result.get(k) != v}
        if lost:
            raise DemoFailed(f"restarted server misses {lost}")
        self.say(
            f"node {leader.node} restarted from its data dir; {leader} recovered and caught up: "
            f"{len(res.result)} keys at index {res.index_term[0]}, follows {res.leader}"
        )
        self.step = "stop"
        await self.stop_all()
        self.say("stopped every node; demo OK")


def _fmt(ids: Sequence[ServerId]) -> str:
    return "[" + ", ".join(str(i) for i in ids) + "]"


async def _demo(data_dir: Path | None, out: TextIO) -> int:
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pyra-demo-")))
        demo = _Demo(data_dir, out)
        try:
            await asyncio.wait_for(demo.run(), timeout=120)
        except (DemoFailed, ra.RaError, TimeoutError, OSError) as exc:
            out.write(f"pyra demo FAILED at step '{demo.step}': {type(exc).__name__}: {exc}\n")
            with contextlib.suppress(Exception):
                await demo.stop_all()
            return 1
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyra", description="Ra's Multi-Raft, rebuilt in Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the walkthrough: 3 nodes, a kv cluster, membership, failover")
    demo.add_argument("--data-dir", type=Path, default=None, help="keep data here (default: a temp dir)")
    node = sub.add_parser("node", help="run a node in the foreground (needs the Erlang-distribution edge)")
    node.add_argument("--name", required=True)
    node.add_argument("--cookie", required=False)
    node.add_argument("--data-dir", type=Path, default=None)
    status = sub.add_parser("status", help="show the servers of a running node (needs the distribution edge)")
    status.add_argument("--node", required=True)
    status.add_argument("--cookie", required=False)
    for name in ("wal-dump", "segment-dump"):
        dump = sub.add_parser(name, help=f"list the records of a {name.split('-')[0]} file")
        dump.add_argument("file", type=Path)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``pyra`` console script.

    Args:
        argv: arguments (default ``sys.argv[1:]``).
        out: where to print (default stdout).

    Returns:
        The process exit code.
    """
    stream = out if out is not None else sys.stdout
    args: Any = _parser().parse_args(argv)
    if args.command == "demo":
        return asyncio.run(_demo(args.data_dir, stream))
    if args.command in ("wal-dump", "segment-dump"):
        from pyra_dist.log import dump

        return dump.main([args.command, str(args.file)], stream)
    stream.write(
        f"pyra {args.command}: not available yet: it needs the Erlang-distribution edge "
        "(pyra_dist's dist transport), which is not part of this build\n"
    )
    return 2


__all__ = ["main"]
