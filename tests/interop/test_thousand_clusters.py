"""1000 three-member clusters hosted on three pyra nodes joined by Erlang distribution (issue 5, Tests).

Topology: nodes 2 and 3 are real ``python -m pyra_dist node`` OS processes (the ``pyra node`` CLI);
node 1 is this test's own Python node (the same composition ``pyra node`` runs: an erl_interop
``Node``, the default ``System``, ``attach_erlang_edge``). Every cluster has one member on each node,
so every server-to-server exchange of every cluster reaches node 1, where the test can see it.

What is asserted, with no wall-clock thresholds:

* every cluster elected exactly one leader, and all three members (two of them in other OS
  processes, read through ``pyra:overview()`` of the CLI) agree on it and on the term;
* ``process_command`` through a follower on another node answers a sample of clusters exactly;
* idle: node 1 has no server timer armed, during an idle window its servers handle nothing but the
  node tick (no Raft message of any cluster arrives from nodes 2 and 3), and no server on any node
  changes role, term or index.

Why node 1 is in-process: an OS-process node exposes its servers (``pyra:overview()``) but not its
timer service or a count of the messages its servers handle, so a fully external variant could only
assert idleness through CPU thresholds (``bench/idle.py`` measures RSS and CPU). The 1000-cluster run
takes about 25-60 s on a 2-core VM; ``--slow`` adds a run with 2000 clusters.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from erl_interop.node.node import Node
from erl_interop.term import Atom, ExportFun
from pyra_dist import ra
from pyra_dist.core.machine import Machine
from pyra_dist.core.server import RaftCore
from pyra_dist.erlang.machines import ErlangRegistry
from pyra_dist.erlang.services import attach_erlang_edge
from pyra_dist.erlang.snapshots import RaSnapshotCodec
from pyra_dist.server.system import System
from pyra_dist.types import ServerId

pytestmark = pytest.mark.erlang

A = Atom
SAMPLE = 50
IDLE_WINDOW_S = 3.0  # three node ticks: long enough for a leader to resend or an election timer to fire


def plus_machine() -> Machine:
    """``{simple, fun erlang:'+'/2, 0}``, the machine of Ra's README, as the nodes build it from Erlang."""
    return ErlangRegistry().machine((A("simple"), ExportFun(A("erlang"), A("+"), 2), 0))


@contextlib.contextmanager
def pyra_node_processes(
    names: list[str], cookie: str, data_dir: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run ``python -m pyra_dist node`` for each name; SIGTERM (then SIGKILL) only those pids at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:
            with open(data_dir / f"{name.split('@')[0]}.log", "ab") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "pyra_dist", "node", "--name", name, "--cookie", cookie,
                         "--data-dir", str(data_dir)],
                        stdout=subprocess.PIPE,
                        stderr=log,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    )
                )
        for name, proc in zip(names, procs, strict=True):
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            assert line.startswith(f"ready {name} "), line
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@dataclass
class Nodes:
    """Node 1 (this process) and the names of nodes 2 and 3 (OS processes)."""

    node: Node
    system: System
    remote: list[str]

    @property
    def names(self) -> list[str]:
        return [self.system.node, *self.remote]

    async def remote_rows(self) -> dict[tuple[str, str], tuple[object, ...]]:
        """``pyra:overview()`` of nodes 2 and 3: ``(node, server) -> (role, leader, term, commit,
        last_applied, last_index)``."""
        rows: dict[tuple[str, str], tuple[object, ...]] = {}
        for target in self.remote:
            for row in await self.node.rpc(A(target), A("pyra"), A("overview"), [], 60.0):
                name, _cluster, role, leader, term, commit, applied, last, _members = row
                rows[(target, _text(name))] = (_text(role), _text(leader), term, commit, applied, last)
        return rows

    def local_rows(self) -> dict[tuple[str, str], tuple[object, ...]]:
        """The same view of node 1's servers."""
        rows: dict[tuple[str, str], tuple[object, ...]] = {}
        for process in self.system.processes():
            o = process.core.overview()
            leader = o["leader_id"]
            rows[(self.system.node, process.server_id.name)] = (
                o["raft_state"],
                str(leader) if leader is not None else "undefined",
                o["current_term"],
                o["commit_index"],
                o["last_applied"],
                o["last_index"],
            )
        return rows

    async def all_rows(self) -> dict[tuple[str, str], tuple[object, ...]]:
        return {**self.local_rows(), **await self.remote_rows()}


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, Atom):
        return value.name
    return str(value)


@contextlib.asynccontextmanager
async def three_nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    cookie = "c" + secrets.token_hex(8)
    prefix = "tk" + secrets.token_hex(3)
    remote = [f"{prefix}n2@127.0.0.1", f"{prefix}n3@127.0.0.1"]
    with pyra_node_processes(remote, cookie, tmp_path):
        async with Node(f"{prefix}n1@127.0.0.1", cookie=cookie) as node:
            system = await System.start(
                "default", tmp_path, str(node.name), snapshot_codec=RaSnapshotCodec()
            )
            edge = attach_erlang_edge(system, node)
            async with system:
                edge.install()
                yield Nodes(node, system, remote)
                edge.close()


async def start_clusters(nodes: Nodes, count: int) -> None:
    """Start ``count`` clusters ``c0``.. with one member per node, 50 starts in flight."""
    semaphore = asyncio.Semaphore(50)
    machine = plus_machine()

    async def start(n: int) -> None:
        ids = [ServerId(f"c{n}", name) for name in nodes.names]
        async with semaphore:
            started, not_started = await ra.start_cluster(nodes.system, f"c{n}", machine, ids, timeout=60)
        assert (sorted(started), not_started) == (sorted(ids), [])

    await asyncio.gather(*(start(n) for n in range(count)))


async def settled(nodes: Nodes, count: int) -> dict[tuple[str, str], tuple[object, ...]]:
    """Poll until every server has applied its whole log and node 1 holds no timer; the rows then."""
    async with asyncio.timeout(120):
        while True:
            rows = await nodes.all_rows()
            if (
                len(rows) == 3 * count
                and all(r[3] == r[4] == r[5] for r in rows.values())
                and nodes.system.overview()["timers"] == 0
            ):
                return rows
            await asyncio.sleep(0.5)


async def run_thousand_clusters(tmp_path: Path, count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    async with three_nodes(tmp_path) as nodes:
        await start_clusters(nodes, count)

        # Every cluster: exactly one leader, and its three members agree on it and on the term.
        rows = await nodes.all_rows()
        by_cluster: dict[str, list[tuple[object, ...]]] = {}
        for (node, name), row in rows.items():
            by_cluster.setdefault(name, []).append((node, *row))
        assert sorted(by_cluster) == sorted(f"c{n}" for n in range(count))
        leaders: dict[str, ServerId] = {}
        for name, members in by_cluster.items():
            roles = sorted(str(m[1]) for m in members)
            leader_views = {m[2] for m in members}
            terms = {m[3] for m in members}
            expected = (["follower", "follower", "leader"], 1, 1)
            assert (roles, len(leader_views), len(terms)) == expected, members
            (leader_node,) = [m[0] for m in members if m[1] == "leader"]
            leaders[name] = ServerId(name, str(leader_node))
            assert leader_views == {str(leaders[name])}

        # A sample answers exactly, asked through a member on another OS process (redirects included).
        for n in range(0, count, count // SAMPLE):
            reply, leader = await ra.process_command(nodes.system, ServerId(f"c{n}", nodes.remote[n % 2]), n)
            assert (reply, leader) == (n, leaders[f"c{n}"])

        before = await settled(nodes, count)

        # Idle window: node 1's servers may only see the node tick; nothing changes anywhere.
        handled: dict[str, int] = {}
        original = RaftCore.handle

        def counting_handle(self: RaftCore, event: object) -> object:
            kind = type(event).__name__
            handled[kind] = handled.get(kind, 0) + 1
            return original(self, event)  # type: ignore[arg-type]

        monkeypatch.setattr(RaftCore, "handle", counting_handle)
        await asyncio.sleep(IDLE_WINDOW_S)
        monkeypatch.undo()
        after = await nodes.all_rows()
        assert nodes.system.overview()["timers"] == 0
        assert set(handled) <= {"Tick"}, handled
        assert after == before


async def test_a_thousand_clusters_on_three_nodes_elect_leaders_answer_and_stay_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_thousand_clusters(tmp_path, int(os.environ.get("PYRA_TK_CLUSTERS", "1000")), monkeypatch)


@pytest.mark.slow
async def test_two_thousand_clusters_on_three_nodes_elect_leaders_answer_and_stay_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_thousand_clusters(tmp_path, 2000, monkeypatch)
