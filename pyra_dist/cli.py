"""The ``pyra`` command line: ``demo``, ``node``, ``status`` and the storage dump commands.

Owns: argument parsing; the ``pyra demo`` walkthrough (the README's main job: three nodes, a
key/value cluster, commands, membership changes, a leader crash and its failover, a restart from
disk); ``pyra node`` (a distribution node with the default system, composed from the Erlang edge
``pyra_dist.erlang``, restarting its servers from disk, stopping cleanly on SIGTERM/SIGINT) and
``pyra status`` (a hidden node that asks ``pyra:overview()`` and prints a table). Must not: reach
into servers except through ``pyra_dist.ra`` and ``System``; the dump commands delegate to
``pyra_dist.log.dump``.

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


NODE_GC_GEN0 = 50_000
"""``pyra node``'s default generation-0 GC threshold. Profiles of three node processes under ra_bench's
workload showed the cyclic GC as their largest single cost (young collections every 700 allocations,
each walking the log's recent entries); log entries hold no cycles, so collecting rarely loses nothing."""


async def _node(name: str, cookie: str, data_dir: Path, visible: bool, out: TextIO, gc_gen0: int = 0) -> int:
    """``pyra node``: a distribution node with the default system, reachable from erl/iex shells.

    Servers registered in ``data_dir`` are restarted from disk; SIGTERM/SIGINT stop it cleanly.
    With ``gc_gen0 > 0`` the process's generation-0 GC threshold is set to it and everything alive
    after start-up (modules, recovered servers) is moved out of the collector's reach (``gc.freeze``).
    """
    import gc
    import signal

    if gc_gen0 > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gc_gen0, gen1, gen2)

    from erl_interop.node.node import Node
    from pyra_dist.erlang.services import attach_erlang_edge
    from pyra_dist.erlang.snapshots import RaSnapshotCodec

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Node(name, cookie=cookie, hidden=not visible) as node:
        system = await System.start("default", data_dir, str(node.name), snapshot_codec=RaSnapshotCodec())
        edge = attach_erlang_edge(system, node)
        async with system:
            # Restart before install(): install registers every running server on the node.
            for server_name in sorted(system.registered_names()):
                try:
                    await system.restart_server(server_name)
                    out.write(f"restarted {server_name} from {system.dir}\n")
                except (ra.RaError, ValueError, OSError) as exc:
                    out.write(f"could not restart {server_name}: {exc}\n")
            edge.install()
            node.expose("pyra", "overview", lambda: _overview_term(system))
            if gc_gen0 > 0:
                gc.freeze()
            out.write(f"ready {node.name} (data dir {system.dir})\n")
            out.flush()
            await stop.wait()
            edge.close()
    try:
        out.write("stopped\n")
        out.flush()
    except BrokenPipeError:
        pass  # whoever read our output has gone; the node stopped all the same
    return 0


def _overview_term(system: System) -> list[tuple[object, ...]]:
    """What ``pyra:overview()`` answers ``pyra status``: one tuple per running server (plain terms)."""
    rows: list[tuple[object, ...]] = []
    for process in sorted(system.processes(), key=lambda p: p.server_id):
        info: dict[str, Any] = getattr(process.core, "overview", dict)()
        leader = info.get("leader_id")
        rows.append(
            (
                process.server_id.name,
                process.cluster_name,
                process.role.value,
                str(leader) if leader is not None else "undefined",
                int(info.get("current_term", 0)),
                int(info.get("commit_index", 0)),
                int(info.get("last_applied", 0)),
                int(info.get("last_index", 0)),
                [str(m) for m in process.members],
            )
        )
    return rows


async def _status(target: str, cookie: str, out: TextIO) -> int:
    """``pyra status``: connect as a hidden node and print the servers of ``target`` as a table."""
    import os

    from erl_interop.errors import ErlInteropError
    from erl_interop.node.node import Node

    host = target.split("@", 1)[1] if "@" in target else "localhost"
    async with Node(f"pyra_status_{os.getpid()}@{host}", cookie=cookie, hidden=True) as node:
        try:
            rows = await node.rpc(target, "pyra", "overview", [], timeout=10.0)
        except ErlInteropError as exc:
            out.write(f"pyra status: {target} did not answer: {exc}\n")
            return 1
    if not isinstance(rows, list) or not all(isinstance(row, tuple) for row in rows):
        out.write(f"pyra status: unexpected answer from {target}: {rows!r}\n")
        return 1
    header = ("server", "cluster", "state", "leader", "term", "commit", "applied", "last", "members")
    table: list[tuple[str, ...]] = [header]
    for row in rows:
        assert isinstance(row, tuple)
        table.append(tuple(_text(v) for v in row))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(f"{len(rows)} servers on {target}\n")
    return 0


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyra", description="Ra's Multi-Raft, rebuilt in Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the walkthrough: 3 nodes, a kv cluster, membership, failover")
    demo.add_argument("--data-dir", type=Path, default=None, help="keep data here (default: a temp dir)")
    node = sub.add_parser("node", help="run a node in the foreground, reachable from erl/iex shells")
    node.add_argument("--name", required=True, help="node name, e.g. py1@127.0.0.1")
    node.add_argument("--cookie", required=True)
    node.add_argument("--data-dir", type=Path, default=Path("."), help="(default: current directory)")
    node.add_argument("--visible", action="store_true", help="connect as a visible (not hidden) node")
    node.add_argument(
        "--gc-gen0",
        type=int,
        default=NODE_GC_GEN0,
        help=f"generation-0 GC threshold of the node process (default {NODE_GC_GEN0}; 0: Python default)",
    )
    status = sub.add_parser("status", help="show members, leaders, terms and indexes of a running node")
    status.add_argument("--node", required=True)
    status.add_argument("--cookie", required=True)
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
    if args.command == "node":
        return asyncio.run(_node(args.name, args.cookie, args.data_dir, args.visible, stream, args.gc_gen0))
    if args.command == "status":
        return asyncio.run(_status(args.node, args.cookie, stream))
    stream.write(f"pyra: unknown command {args.command}\n")
    return 2


__all__ = ["main"]
