"""The Python Ra API on a 3-member cluster whose members live on three in-process nodes (one loop).

Every test runs real servers: RaftCore + the disk log (shared WAL per node) + the asyncio driver.
"""

from __future__ import annotations

import asyncio
import operator
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyra_dist import ra
from pyra_dist.machines import KvMachine, SimpleMachine
from pyra_dist.server import LocalNetwork, System
from pyra_dist.types import Role, ServerId

NODES = ("py1@localhost", "py2@localhost", "py3@localhost")
IDS = [ServerId("kv", node) for node in NODES]


@dataclass
class Cluster:
    data_dir: Path
    network: LocalNetwork
    systems: dict[str, System]

    @property
    def caller(self) -> System:
        return self.systems[NODES[0]]

    async def leader(self) -> ServerId:
        _, leader = await ra.members(self.caller, [i for i in IDS if i.node in self.systems])
        return leader

    async def start_node(self, node: str) -> System:
        system = await System.start("default", self.data_dir, node, network=self.network)
        await system.__aenter__()
        self.systems[node] = system
        return system

    async def stop_all(self) -> None:
        for node in list(self.systems):
            await self.systems.pop(node).__aexit__(None, None, None)


async def _until(probe, ok, limit_s: float = 15.0):  # type: ignore[no-untyped-def]
    """Poll ``probe()`` until ``ok(value)``; fail with the last value after ``limit_s``."""
    last = None
    async with asyncio.timeout(limit_s):
        while True:
            try:
                last = await probe()
                if ok(last):
                    return last
            except ra.RaError as exc:
                last = exc
            await asyncio.sleep(0.02)


async def _changed(change):  # type: ignore[no-untyped-def]
    """Run a membership change, retrying while the previous one is not committed yet (Ra §3.4)."""
    async with asyncio.timeout(15):
        while True:
            try:
                return await change()
            except ra.ClusterChangeNotPermitted:
                await asyncio.sleep(0.02)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, LocalNetwork(), {})
    try:
        async with asyncio.timeout(60):
            for node in NODES:
                await c.start_node(node)
            started, not_started = await ra.start_cluster(c.caller, "kv", KvMachine(), IDS)
            assert (sorted(started), not_started) == (IDS, [])
        yield c
    finally:
        await c.stop_all()


async def test_process_command_returns_the_reply_and_the_leader_that_applied_it(cluster: Cluster) -> None:
    leader = await cluster.leader()
    follower = next(i for i in IDS if i != leader)

    assert await ra.process_command(cluster.caller, follower, ("put", "a", 5)) == ("ok", leader)
    assert await ra.process_command(cluster.caller, leader, ("get", "a")) == (5, leader)
    assert await ra.process_command(cluster.caller, IDS, ("cas", "a", 5, 7)) == (("ok", 7), leader)


async def test_pipeline_command_delivers_applied_notifications_in_order(cluster: Cluster) -> None:
    leader = await cluster.leader()
    async with ra.EventQueue(cluster.caller) as events:
        for corr in range(50):
            command = ("put", f"k{corr}", corr)
            await ra.pipeline_command(cluster.caller, leader, command, corr, notify=events.pid)
        applied: list[tuple[object, object]] = []
        async with asyncio.timeout(15):
            while len(applied) < 50:
                event = await events.get()
                assert (event.sender, event.kind) == (leader, "applied")
                assert isinstance(event.body, tuple)
                applied.extend(event.body)
    assert applied == [(corr, "ok") for corr in range(50)]


async def test_pipeline_command_sent_to_a_follower_is_rejected_with_the_leader(cluster: Cluster) -> None:
    leader = await cluster.leader()
    follower = next(i for i in IDS if i != leader)
    async with ra.EventQueue(cluster.caller) as events:
        await ra.pipeline_command(cluster.caller, follower, ("put", "x", 1), 42, notify=events.pid)
        async with asyncio.timeout(15):
            event = await events.get()
    assert (event.sender, event.kind, event.body) == (follower, "rejected", (leader, 42))


async def test_pipeline_command_without_correlation_is_forwarded_by_a_follower(cluster: Cluster) -> None:
    leader = await cluster.leader()
    follower = next(i for i in IDS if i != leader)
    await ra.pipeline_command(cluster.caller, follower, ("put", "fwd", 1))

    result = await _until(
        lambda: ra.leader_query(cluster.caller, leader, lambda s: s.get("fwd")), lambda r: r.result == 1
    )
    assert result.leader == leader


async def test_local_leader_and_consistent_queries_see_applied_commands(cluster: Cluster) -> None:
    leader = await cluster.leader()
    follower = next(i for i in IDS if i != leader)
    await ra.process_command(cluster.caller, leader, ("put", "q", 1))

    led = await ra.leader_query(cluster.caller, follower, lambda s: s["q"])
    assert (led.result, led.leader) == (1, leader)
    assert await ra.consistent_query(cluster.caller, follower, lambda s: dict(s)) == ({"q": 1}, leader)
    local = await _until(
        lambda: ra.local_query(cluster.caller, follower, lambda s: s.get("q")), lambda r: r.result == 1
    )
    assert (local.result, local.leader) == (1, leader)
    assert local.index_term[0] >= led.index_term[0] - 1


async def test_local_query_that_raises_is_an_error_answer(cluster: Cluster) -> None:
    with pytest.raises(ra.QueryFailed):
        await ra.local_query(cluster.caller, IDS[0], lambda s: s["missing"])


async def test_members_lists_every_member_and_the_leader(cluster: Cluster) -> None:
    leader = await cluster.leader()
    assert await ra.members(cluster.caller, IDS[2]) == (IDS, leader)
    assert await ra.members(cluster.caller, IDS[2], local=True) == (IDS, IDS[2])


async def test_add_member_then_remove_member_changes_the_configuration(cluster: Cluster) -> None:
    leader = await cluster.leader()
    await cluster.start_node("py4@localhost")
    new = ServerId("kv", "py4@localhost")
    await ra.process_command(cluster.caller, leader, ("put", "before", 1))

    (index, term), answered = await _changed(lambda: ra.add_member(cluster.caller, leader, new))
    await ra.start_server(cluster.caller, "kv", new, KvMachine(), [*IDS, new])

    assert answered == leader and index > 0 and term >= 1
    assert await ra.members(cluster.caller, leader) == (sorted([*IDS, new]), leader)
    caught_up = await _until(
        lambda: ra.local_query(cluster.caller, new, lambda s: s.get("before")), lambda r: r.result == 1
    )
    assert caught_up.leader == leader
    with pytest.raises(ra.AlreadyMember):
        await _changed(lambda: ra.add_member(cluster.caller, leader, new))

    await _changed(lambda: ra.remove_member(cluster.caller, leader, new))
    assert await ra.members(cluster.caller, leader) == (IDS, leader)
    with pytest.raises(ra.NotMember):
        await _changed(lambda: ra.remove_member(cluster.caller, leader, new))


async def test_leave_and_terminate_removes_the_member_and_stops_it(cluster: Cluster) -> None:
    leader = await cluster.leader()
    member = next(i for i in IDS if i != leader)

    await _changed(lambda: ra.leave_and_terminate(cluster.caller, leader, member))

    assert await ra.members(cluster.caller, leader) == (sorted(i for i in IDS if i != member), leader)
    assert cluster.systems[member.node].process(member.name) is None
    with pytest.raises(ra.NoProc):
        await ra.process_command(cluster.caller, member, ("get", "a"))
    assert await ra.process_command(cluster.caller, leader, ("put", "still", "works")) == ("ok", leader)


async def test_transfer_leadership_moves_the_leader_to_the_target(cluster: Cluster) -> None:
    leader = await cluster.leader()
    target = next(i for i in IDS if i != leader)

    assert await ra.transfer_leadership(cluster.caller, leader, target) == "ok"

    await _until(lambda: ra.members(cluster.caller, target, local=True), lambda r: True)
    assert await _until(cluster.leader, lambda current: current == target) == target
    assert await ra.transfer_leadership(cluster.caller, target, target) == "already_leader"
    with pytest.raises(ra.UnknownMember):
        await ra.transfer_leadership(cluster.caller, target, ServerId("nobody", NODES[0]))


async def test_trigger_election_and_ping_report_the_raft_state(cluster: Cluster) -> None:
    leader = await cluster.leader()
    assert await ra.ping(cluster.caller, leader) == Role.LEADER
    await ra.trigger_election(cluster.caller, leader)  # a no-op on the leader
    assert await ra.ping(cluster.caller, leader) == Role.LEADER


async def test_leader_failover_keeps_every_acknowledged_command(cluster: Cluster) -> None:
    leader = await cluster.leader()
    acknowledged = {}
    for i in range(30):
        reply, _ = await ra.process_command(cluster.caller, leader, ("put", f"k{i}", i))
        assert reply == "ok"
        acknowledged[f"k{i}"] = i

    crashed = cluster.systems.pop(leader.node)
    await crashed.crash()
    survivors = [i for i in IDS if i != leader]
    caller = cluster.systems[survivors[0].node]

    _, new_leader = await _until(lambda: ra.members(caller, survivors, timeout=1.0), lambda r: r[1] != leader)
    assert new_leader in survivors
    state, _ = await ra.consistent_query(caller, new_leader, lambda s: dict(s))
    assert state == acknowledged
    assert await ra.process_command(caller, survivors, ("put", "after", 1)) == ("ok", new_leader)

    restarted = await cluster.start_node(leader.node)
    await ra.restart_server(restarted, leader)
    caught_up = await _until(
        lambda: ra.local_query(restarted, leader, lambda s: dict(s)), lambda r: r.result.get("after") == 1
    )
    assert caught_up.result == {**acknowledged, "after": 1}
    assert caught_up.leader == new_leader


async def test_restart_from_the_same_data_dir_keeps_every_acknowledged_command(cluster: Cluster) -> None:
    leader = await cluster.leader()
    acknowledged = {}
    for i in range(20):
        await ra.process_command(cluster.caller, leader, ("put", f"r{i}", i))
        acknowledged[f"r{i}"] = i
    await cluster.stop_all()

    for node in NODES:
        system = await cluster.start_node(node)
        assert system.registered_names() == {"kv": system.registered_names()["kv"]}
        await ra.restart_server(system, ServerId("kv", node))
    state, _ = await _until(
        lambda: ra.consistent_query(cluster.caller, IDS, lambda s: dict(s)), lambda r: True
    )
    assert state == acknowledged


async def test_calls_to_stopped_servers_and_unknown_nodes_raise_noproc_and_nodedown(cluster: Cluster) -> None:
    await ra.stop_server(cluster.caller, IDS[2])
    with pytest.raises(ra.NoProc):
        await ra.process_command(cluster.caller, IDS[2], ("get", "a"))
    with pytest.raises(ra.NodeDown):
        await ra.process_command(cluster.caller, ServerId("kv", "elsewhere@localhost"), ("get", "a"))
    with pytest.raises(ra.NameNotRegistered):
        await ra.restart_server(cluster.caller, ServerId("nope", NODES[0]))
    with pytest.raises(ra.AlreadyStarted):
        await ra.restart_server(cluster.caller, IDS[0])


async def test_process_command_without_a_quorum_times_out(cluster: Cluster) -> None:
    leader = await cluster.leader()
    for other in (i for i in IDS if i != leader):
        await ra.stop_server(cluster.caller, other)
    with pytest.raises(ra.RaTimeout) as info:
        await ra.process_command(cluster.caller, leader, ("put", "lost", 1), timeout=0.3)
    assert info.value.server_id == leader


async def test_delete_cluster_stops_every_member_and_deletes_its_data(cluster: Cluster) -> None:
    leader = await ra.delete_cluster(cluster.caller, IDS)

    assert leader in IDS
    await _until(
        lambda: _async_value([(s.process("kv"), s.registered_names()) for s in cluster.systems.values()]),
        lambda states: states == [(None, {})] * 3,
    )
    assert [list(s.dir.glob("*/config")) for s in cluster.systems.values()] == [[], [], []]


async def _async_value(value: object) -> object:
    return value


async def test_force_delete_server_removes_its_directory_entry(cluster: Cluster) -> None:
    system = cluster.systems[IDS[2].node]
    await ra.force_delete_server(cluster.caller, IDS[2])
    assert system.registered_names() == {}
    with pytest.raises(ra.NameNotRegistered):
        await ra.restart_server(cluster.caller, IDS[2])


async def test_overview_shows_every_server_of_the_node(cluster: Cluster) -> None:
    leader = await cluster.leader()
    overview = ra.overview(cluster.systems[leader.node])
    servers = overview["servers"]
    assert isinstance(servers, dict)
    assert (overview["node"], list(servers), servers["kv"]["state"]) == (leader.node, ["kv"], "leader")


async def test_two_systems_in_one_interpreter_are_independent(tmp_path: Path) -> None:
    one = await System.start("default", tmp_path / "a", "solo@localhost")
    two = await System.start("default", tmp_path / "b", "solo@localhost")
    async with one, two, asyncio.timeout(30):
        sid = ServerId("c", "solo@localhost")
        await ra.start_cluster(one, "c", KvMachine(), [sid])
        await ra.start_cluster(two, "c", KvMachine(), [sid])
        await ra.process_command(one, sid, ("put", "who", "one"))
        await ra.process_command(two, sid, ("put", "who", "two"))
        assert await ra.process_command(one, sid, ("get", "who")) == ("one", sid)
        assert await ra.process_command(two, sid, ("get", "who")) == ("two", sid)


def test_sync_facade_runs_the_same_verbs_without_an_event_loop(tmp_path: Path) -> None:
    with ra.SyncRa.start(data_dir=tmp_path, node="sync@localhost") as r:
        ids = [ServerId(f"s{i}", "sync@localhost") for i in range(3)]
        started, _ = r.start_cluster("sync", KvMachine(), ids)
        reply, leader = r.process_command(ids[0], ("put", "k", 1))
        assert (sorted(started), reply, r.members(ids[1])) == (ids, "ok", (ids, leader))
        assert r.consistent_query(ids[2], lambda s: dict(s)) == ({"k": 1}, leader)


async def test_a_thousand_clusters_hosted_on_three_nodes_elect_leaders_accept_commands_and_go_quiet(
    tmp_path: Path,
) -> None:
    """Issue 5: 1000 three-member clusters, one member on each of three nodes (in-process systems
    joined by a LocalNetwork). Idle means silent: no timer armed on any node and no server's role,
    term or indexes moving; no CPU threshold is asserted (bench/idle.py measures that)."""
    network = LocalNetwork()
    nodes = ["many1@localhost", "many2@localhost", "many3@localhost"]
    systems = [await System.start("default", tmp_path, n, network=network) for n in nodes]
    try:
        for system in systems:
            await system.__aenter__()
        async with asyncio.timeout(240):
            semaphore = asyncio.Semaphore(100)

            async def start(n: int) -> None:
                ids = [ServerId(f"c{n}", node) for node in nodes]
                async with semaphore:
                    await ra.start_cluster(systems[n % 3], f"c{n}", KvMachine(), ids, timeout=60)

            await asyncio.gather(*(start(n) for n in range(1000)))

            servers = systems[0].overview()["servers"]
            assert isinstance(servers, dict)
            leaders = {server["cluster_name"]: server["leader"] for server in servers.values()}
            assert (len(leaders), [c for c, leader in leaders.items() if leader is None]) == (1000, [])
            for n in range(0, 1000, 50):
                member = ServerId(f"c{n}", nodes[n % 3])
                reply = await ra.process_command(systems[(n + 1) % 3], member, ("put", "n", n))
                assert reply == ("ok", leaders[f"c{n}"])

            def quiet_view() -> list[tuple[object, ...]]:
                view: list[tuple[object, ...]] = []
                for system in systems:
                    overview = system.overview()
                    servers = overview["servers"]
                    assert isinstance(servers, dict)
                    for name, server in sorted(servers.items()):
                        core = server["overview"]
                        view.append(
                            (system.node, name, server["state"], core.get("current_term"),
                             core.get("commit_index"), core.get("last_applied"), core.get("last_index"))
                        )
                return view

            # Followers learn the last commit indexes from the leaders' next AERs; then nothing moves.
            timers: list[object] = []
            before, after = quiet_view(), []
            for _ in range(20):
                await asyncio.sleep(1.0)
                after, timers = quiet_view(), [system.overview()["timers"] for system in systems]
                if after == before and timers == [0, 0, 0]:
                    break
                before = after
            assert (timers, len(after), after == before) == ([0, 0, 0], 3000, True)

            # 3000 servers hold no meta descriptors (opened per write): the default 1024 fds suffice.
            open_files = [os.readlink(f"/proc/self/fd/{fd}") for fd in _fds()]
            assert [f for f in open_files if f.startswith(str(tmp_path)) and f.endswith("/meta")] == []
    finally:
        for system in reversed(systems):
            await system.__aexit__(None, None, None)


def _fds() -> list[str]:
    """This process's descriptors that are still open when read (the listing's own fd is not)."""
    return [fd for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")]


async def test_readme_walkthrough_quick_start_on_three_python_nodes(tmp_path: Path) -> None:
    network = LocalNetwork()
    nodes = ["ra1@localhost", "ra2@localhost", "ra3@localhost"]
    systems = [await ra.start_system(data_dir=tmp_path, node=n, network=network) for n in nodes]
    try:
        for system in systems:
            await system.__aenter__()
        sys1 = systems[0]
        server_ids = [ServerId("quick_start", n) for n in nodes]
        machine = SimpleMachine(operator.add, 0)
        started, not_started = await ra.start_cluster(sys1, "quick_start", machine, server_ids)
        assert (sorted(started), not_started) == (server_ids, [])

        reply, leader = await ra.process_command(sys1, server_ids[0], 5)
        assert reply == 5
        assert await ra.process_command(sys1, server_ids[0], 7) == (12, leader)
        (index, term), state, answered = await ra.leader_query(sys1, server_ids[0], lambda s: s)
        assert (state, answered, index >= 3, term >= 1) == (12, leader, True, True)
        local = await _until(
            lambda: ra.local_query(sys1, server_ids[1], lambda s: s), lambda r: r.result == 12
        )
        assert local.leader == leader
    finally:
        for system in reversed(systems):
            await system.__aexit__(None, None, None)


async def test_readme_walkthrough_dynamic_membership(tmp_path: Path) -> None:
    network = LocalNetwork()
    nodes = ["ra1@localhost", "ra2@localhost", "ra3@localhost", "ra4@localhost"]
    systems = {n: await ra.start_system(data_dir=tmp_path, node=n, network=network) for n in nodes}
    try:
        for system in systems.values():
            await system.__aenter__()
        caller = systems[nodes[0]]
        ids = [ServerId("dyn", n) for n in nodes]
        machine = SimpleMachine(operator.add, 0)
        # Start one member, then add_member + start_server twice (Ra's README sequence).
        await ra.start_cluster(caller, "dyn", machine, ids[:1])
        for k in (1, 2):
            await _changed(lambda k=k: ra.add_member(caller, ids[0], ids[k]))  # type: ignore[misc]
            await ra.start_server(caller, "dyn", ids[k], machine, ids[: k + 1])
        assert (await ra.members(caller, ids[0]))[0] == ids[:3]
        assert (await ra.process_command(caller, ids[1], 5))[0] == 5
        # A fourth member joins and leaves with leave_and_terminate.
        await _changed(lambda: ra.add_member(caller, ids[0], ids[3]))
        await ra.start_server(caller, "dyn", ids[3], machine, ids)
        await _until(lambda: ra.local_query(caller, ids[3], lambda s: s), lambda r: r.result == 5)
        await _changed(lambda: ra.leave_and_terminate(caller, ids[0], ids[3]))
        members, leader = await ra.members(caller, ids[0])
        assert (members, systems[nodes[3]].process("dyn")) == (ids[:3], None)
        assert await ra.process_command(caller, ids[2], 7) == (12, leader)
    finally:
        for system in reversed(list(systems.values())):
            await system.__aexit__(None, None, None)


async def test_a_new_member_catches_up_from_a_snapshot_and_restarts_from_it(tmp_path: Path) -> None:
    network = LocalNetwork()
    nodes = ["s1@localhost", "s2@localhost", "s3@localhost", "s4@localhost"]
    systems = {n: await System.start("default", tmp_path, n, network=network) for n in nodes}
    try:
        for system in systems.values():
            await system.__aenter__()
        caller = systems[nodes[0]]
        ids = [ServerId("snap", n) for n in nodes]
        machine = KvMachine(snapshot_every=50)
        await ra.start_cluster(caller, "snap", machine, ids[:3], snapshot_interval=10)
        expected = {}
        for i in range(120):
            await ra.process_command(caller, ids, ("put", f"k{i}", i))
            expected[f"k{i}"] = i
        await _changed(lambda: ra.add_member(caller, ids, ids[3]))
        await ra.start_server(caller, "snap", ids[3], machine, ids, snapshot_interval=10)

        caught_up = await _until(
            lambda: ra.local_query(caller, ids[3], lambda s: dict(s)), lambda r: r.result == expected
        )
        overview = ra.overview(systems[nodes[3]])["servers"]["snap"]["overview"]  # type: ignore[index]
        assert overview["snapshot_index"] == 100 and caught_up.index_term[0] > 100

        await ra.stop_server(caller, ids[3])
        await ra.restart_server(caller, ids[3])
        restarted = await _until(
            lambda: ra.local_query(caller, ids[3], lambda s: dict(s)), lambda r: r.result == expected
        )
        assert restarted.index_term[0] >= caught_up.index_term[0]
    finally:
        for system in reversed(list(systems.values())):
            await system.__aexit__(None, None, None)


async def test_repeated_leader_node_crashes_under_load_lose_no_acknowledged_write(tmp_path: Path) -> None:
    network = LocalNetwork()
    nodes = ["x1@localhost", "x2@localhost", "x3@localhost"]
    systems = {n: await System.start("default", tmp_path, n, network=network) for n in nodes}
    ids = [ServerId("kv", n) for n in nodes]
    acknowledged: dict[str, int] = {}
    running = True

    async def writer(w: int) -> None:
        i = 0
        while running:
            caller = next(iter(systems.values()))
            live = [sid for sid in ids if sid.node in systems]
            try:
                await ra.process_command(caller, live, ("put", f"w{w}-{i}", i), timeout=2.0)
                acknowledged[f"w{w}-{i}"] = i
            except ra.RaError:
                await asyncio.sleep(0.02)
            i += 1

    try:
        for system in systems.values():
            await system.__aenter__()
        await ra.start_cluster(systems[nodes[0]], "kv", KvMachine(), ids)
        async with asyncio.timeout(90):
            writers = [asyncio.create_task(writer(w)) for w in range(3)]
            for _ in range(4):
                await asyncio.sleep(0.7)
                _, leader = await _until(
                    lambda: ra.members(next(iter(systems.values())), [i for i in ids if i.node in systems]),
                    lambda r: True,
                )
                await systems.pop(leader.node).crash()
                await asyncio.sleep(0.3)
                restarted = await System.start("default", tmp_path, leader.node, network=network)
                await restarted.__aenter__()
                systems[leader.node] = restarted
                await ra.restart_server(restarted, leader)
            running = False
            await asyncio.gather(*writers)

            caller = next(iter(systems.values()))
            state, _ = await ra.consistent_query(caller, ids, lambda s: dict(s))
            assert len(acknowledged) > 0
            assert {k: v for k, v in acknowledged.items() if state.get(k) != v} == {}

            async def replicas() -> list[object]:
                return [
                    (await ra.local_query(systems[sid.node], sid, lambda s: dict(s))).result for sid in ids
                ]

            # Every replica converges to one state (commands that timed out may still commit later).
            converged = await _until(replicas, lambda st: st[0] == st[1] == st[2], limit_s=30.0)
            assert all(converged[0].get(k) == v for k, v in acknowledged.items())  # type: ignore[attr-defined]
    finally:
        running = False
        for system in reversed(list(systems.values())):
            await system.__aexit__(None, None, None)
