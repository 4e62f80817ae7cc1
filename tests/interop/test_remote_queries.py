"""Python callable queries against servers on other nodes (issue 5, points 2 and 3d).

A Python callable cannot travel, so ``pyra_dist.ra`` sends Ra's identity query ``{lists, append,
[[]]}`` (``lists:append([], State)`` is ``State``) and runs the callable here on the decoded state.
The servers are a real Ra 2.2.0 node and two ``python -m pyra_dist.erlang`` nodes; the caller is this
test's own Python node with an ``ErlangEdge``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from ra_differential import COMPILE_KV, mixed_cluster, substitute

from erl_interop.node.node import Node
from erl_interop.term import Atom, Map, binary_to_term
from pyra_dist import ra
from pyra_dist.core.effects import ErrorReply, LocalQueryReply, OkReply
from pyra_dist.core.events import QueryRequest
from pyra_dist.erlang.kv_machine import PyraKv
from pyra_dist.erlang.machines import ErlangRegistry
from pyra_dist.erlang.remote import IDENTITY_QUERY, reply_from_term, request_term
from pyra_dist.erlang.services import attach_erlang_edge
from pyra_dist.erlang.snapshots import RaSnapshotCodec
from pyra_dist.server.system import System
from pyra_dist.types import ServerId

pytestmark = pytest.mark.erlang

A = Atom
T = TypeVar("T")


def as_pairs(state: object) -> list[tuple[str, object]]:
    """A pyra_kv state (an Erlang map with atom keys) as sorted ``(key, value)`` pairs."""
    assert isinstance(state, Map)
    return sorted((k.name, v) for k, v in state.items())


async def until(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], limit_s: float = 30.0) -> T:
    """Poll ``probe()`` until ``ok(value)`` (a follower's local state may lag the leader's)."""
    async with asyncio.timeout(limit_s):
        while True:
            value = await probe()
            if ok(value):
                return value
            await asyncio.sleep(0.05)


def test_a_python_query_travels_as_the_identity_query_and_runs_on_the_reply() -> None:
    local = QueryRequest("local", ra.PythonQuery(lambda s: s[A("k")] * 2), None)
    assert request_term(local, None) == ((A("local_query"), IDENTITY_QUERY), False)
    state = Map([(A("k"), 21)])
    reply = reply_from_term(local, (A("ok"), ((7, 2), state), (A("kv"), A("n1@127.0.0.1"))))
    assert reply == LocalQueryReply(7, 2, 42, ServerId("kv", "n1@127.0.0.1"))
    consistent = QueryRequest("consistent", ra.PythonQuery(lambda s: [(A("a"), A("b"))]), None)
    assert request_term(consistent, None) == (
        (A("leader_call"), (A("consistent_query"), IDENTITY_QUERY)),
        True,
    )
    # The callable's result is returned as it is (a list of 2-tuples is not turned into server ids).
    assert reply_from_term(consistent, (A("ok"), state, (A("kv"), A("n1@127.0.0.1")))) == OkReply(
        [(A("a"), A("b"))], ServerId("kv", "n1@127.0.0.1")
    )
    failing = QueryRequest("leader", ra.PythonQuery(lambda s: s[A("missing")]), None)
    reply = reply_from_term(failing, (A("ok"), ((7, 2), state), (A("kv"), A("n1@127.0.0.1"))))
    assert isinstance(reply, ErrorReply) and isinstance(reply.reason, KeyError)


async def test_python_queries_see_the_state_of_ra_and_remote_pyra_servers(tmp_path: Path) -> None:
    cookie = "c" + secrets.token_hex(8)
    prefix = "rq" + secrets.token_hex(3)
    with mixed_cluster(prefix, cookie, tmp_path) as mixed:
        nodes = mixed.nodes  # n1: Ra 2.2.0; n2, n3: pyra nodes
        erl = mixed.ra.peers[0]
        await asyncio.to_thread(erl.eval, substitute(COMPILE_KV, nodes, "ra_client"))

        # Real Ra 2.2.0 answers the identity query with the state itself (any term: here 12).
        await asyncio.to_thread(
            erl.eval,
            "{ok, _, _} = ra:start_cluster(default, qs, {simple, fun erlang:'+'/2, 0}, [{qs, node()}]), "
            "{ok, 5, _} = ra:process_command({qs, node()}, 5), ok.",
        )
        by_ra = (
            await asyncio.to_thread(
                erl.eval_result,
                "{ok, 12, _} = ra:process_command({qs, node()}, 7), "
                "{ra:local_query({qs, node()}, {lists, append, [[]]}), "
                "ra:local_query({qs, node()}, fun(S) -> S end)}.",
            )
        ).etf
        identity, with_fun = binary_to_term(by_ra)
        assert identity == with_fun
        (_, ((index, term), state), _) = identity
        assert state == 12

        async with Node(f"{prefix}caller@127.0.0.1", cookie=cookie) as node:
            system = await System.start(
                "default", tmp_path / "caller", str(node.name), snapshot_codec=RaSnapshotCodec()
            )
            registry = ErlangRegistry()
            registry.register_machine("pyra_kv", PyraKv)
            edge = attach_erlang_edge(system, node, registry)
            async with system, asyncio.timeout(120):
                edge.install()
                qs = ServerId("qs", nodes[0])
                assert await ra.local_query(system, qs, lambda s: s * 2) == ((index, term), 24, qs)
                assert await ra.leader_query(system, qs, lambda s: s + 1) == ((index, term), 13, qs)
                assert await ra.consistent_query(system, qs, lambda s: -s) == (-12, qs)

                ids = [ServerId("rq", n) for n in nodes]
                started, not_started = await ra.start_cluster(system, "rq", PyraKv(), ids, timeout=30)
                assert (sorted(started), not_started) == (sorted(ids), [])
                await ra.process_command(system, ids, (A("put"), A("a"), 1), timeout=30)
                _, leader = await ra.process_command(system, ids, (A("put"), A("b"), 2), timeout=30)
                expected = [("a", 1), ("b", 2)]

                # Each member answers local_query from its own state: Ra's and both pyra nodes'.
                for member in ids:
                    result = await until(
                        lambda member=member: ra.local_query(system, member, as_pairs),  # type: ignore[misc]
                        lambda r: r.result == expected,
                    )
                    assert (result.result, result.leader) == (expected, leader)

                # The leader on a Ra node, then on a pyra node: leader_query and consistent_query
                # through any member reach it and run the callable on its state.
                for target in (ids[0], ids[2]):
                    if leader != target:
                        await ra.transfer_leadership(system, leader, target, timeout=30)
                        _, leader = await until(
                            lambda: ra.members(system, ids, timeout=5), lambda m, t=target: m[1] == t
                        )
                    by_leader = await ra.leader_query(system, ids[1], as_pairs, timeout=30)
                    assert (by_leader.result, by_leader.leader) == (expected, target)
                    assert await ra.consistent_query(system, ids[1], lambda s: s[A("b")], timeout=30) == (
                        2,
                        target,
                    )

                # A query that raises is Ra's {error, Reason}, raised here as for a local server.
                with pytest.raises(ra.QueryFailed) as failed:
                    await ra.local_query(system, ids[0], lambda s: s[A("missing")])
                assert isinstance(failed.value.reason, KeyError)
                with pytest.raises(ra.ErrorReplyError) as failed_leader:
                    await ra.leader_query(system, ids[1], lambda s: 1 // 0)
                assert isinstance(failed_leader.value.reason, ZeroDivisionError)
            edge.close()
