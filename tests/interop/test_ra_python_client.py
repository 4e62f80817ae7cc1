"""A Python process drives Erlang Ra servers with ``pyra_dist.ra`` (issue 6: a Python process starts
a cluster with Erlang members).

The Python node runs an ``ErlangEdge``; the other member is a real Ra 2.2.0 node. Lifecycle goes
through Ra's own rpcs (``ra_server_sup_sup:start_server_rpc`` on the Erlang node), calls through
the requests ``ra`` sends, queries as ``{M, F, A}`` terms, notifications through a relay process.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from ra_differential import COMPILE_KV, ra_cluster, substitute

from erl_interop.node.node import Node
from erl_interop.term import Atom
from pyra_dist import ra
from pyra_dist.erlang.client import ErlangQuery
from pyra_dist.erlang.kv_machine import PyraKv
from pyra_dist.erlang.machines import ErlangRegistry
from pyra_dist.erlang.services import attach_erlang_edge
from pyra_dist.erlang.snapshots import RaSnapshotCodec
from pyra_dist.server.errors import NoProc
from pyra_dist.server.system import System
from pyra_dist.types import ServerId

pytestmark = pytest.mark.erlang

A = Atom


async def test_a_python_process_runs_a_mixed_cluster_through_the_ra_api(tmp_path: Path) -> None:
    cookie = "c" + secrets.token_hex(8)
    prefix = "pc" + secrets.token_hex(3)
    with ra_cluster(prefix, cookie, tmp_path / "ra", names=[f"{prefix}n1"]) as era:
        erl_node = era.nodes[0]
        async with Node(f"{prefix}n2@127.0.0.1", cookie=cookie) as node:
            py_node = str(node.name)
            # The Erlang twin of PyraKv on the Ra node (compiled there, like the harness does).
            await asyncio.to_thread(
                era.peers[0].eval, substitute(COMPILE_KV, [erl_node, erl_node, erl_node], "ra_client")
            )
            system = await System.start("default", tmp_path / "py", py_node, snapshot_codec=RaSnapshotCodec())
            registry = ErlangRegistry()
            registry.register_machine("pyra_kv", PyraKv)
            edge = attach_erlang_edge(system, node, registry)
            async with system:
                edge.install()
                ids = [ServerId("pk", erl_node), ServerId("pk", py_node)]
                started, not_started = await ra.start_cluster(system, "pk", PyraKv(), ids, timeout=10)
                assert (sorted(started), not_started) == (sorted(ids), [])

                reply, leader = await ra.process_command(system, ids[1], (A("put"), A("a"), 1), timeout=10)
                assert reply == A("ok") and leader in ids
                reply, _ = await ra.process_command(system, ids[0], (A("get"), A("a")), timeout=10)
                assert reply == 1

                members, leader = await ra.members(system, ids[0], timeout=10)
                assert (members, leader in ids) == (ids, True)

                get_a = ErlangQuery((A("maps"), A("get"), [A("a")]), node.name, registry.function)
                value, answered_by = await ra.consistent_query(system, ids[0], get_a, timeout=10)
                assert (value, answered_by) == (1, leader)
                on_erlang = await ra.local_query(system, ids[0], get_a, timeout=10)
                assert on_erlang.result == 1

                async with ra.EventQueue(system) as events:
                    await ra.pipeline_command(
                        system, leader, (A("put"), A("b"), 2), 7, "normal", notify=events.pid
                    )
                    event = await asyncio.wait_for(events.get(), 10)
                assert (event.sender, event.kind, event.body) == (leader, "applied", ((7, A("ok")),))

                await ra.transfer_leadership(system, leader, ids[0] if leader == ids[1] else ids[1])
                await ra.delete_cluster(system, ids, timeout=10)
                # The Python member applies the deletion, casts its last append_entries_reply to
                # the Erlang leader (as Ra 2.2.0 followers do) and stops once its log is written.
                with pytest.raises(NoProc):
                    for _ in range(100):
                        await ra.ping(system, ids[1], timeout=1)
                        await asyncio.sleep(0.1)
            edge.close()
