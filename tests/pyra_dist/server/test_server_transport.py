"""LocalTransport: Ra's send semantics between in-process nodes (drops, monitors, calls, events)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pyra_dist.core.events import NodeDown, NodeUp, PeerCallFailed, PeerDown, PeerMessage, PingRequest
from pyra_dist.core.messages import AppendEntriesReply, PreVoteRpc, RequestVoteResult
from pyra_dist.server import LocalNetwork, System, errors
from pyra_dist.server.transport import ClientCall, LocalCall, RaEvent
from pyra_dist.types import ServerId

A, B = "a@localhost", "b@localhost"


class Watcher:
    """Stands in for a ServerProcess: records what is delivered to it."""

    def __init__(self) -> None:
        self.inbox: list[object] = []

    def deliver(self, event: object) -> None:
        self.inbox.append(event)

    deliver_now = deliver

    def track_call(self, future: object) -> None:
        pass


@pytest.fixture
async def two_nodes(tmp_path: Path):  # type: ignore[no-untyped-def]
    network = LocalNetwork()
    a = await System.start("default", tmp_path, A, network=network)
    b = await System.start("default", tmp_path, B, network=network)
    async with a, b:
        yield a, b


def test_a_send_to_a_server_that_is_not_running_is_dropped(two_nodes) -> None:  # type: ignore[no-untyped-def]
    a, _ = two_nodes
    reply = AppendEntriesReply(1, True, 1, 0, 0)
    assert a.transport.send_peer(ServerId("x", A), ServerId("nobody", B), reply, None) is None
    assert a.transport.send_peer(ServerId("x", A), ServerId("s", "down@localhost"), reply, None) is None
    assert a.transport.cast(ServerId("nobody", B), PingRequest("caller")) is False


def test_gen_call_records_carry_a_call_token_and_replies_arrive_as_plain_messages(two_nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = two_nodes
    callee, caller = Watcher(), Watcher()
    b._processes["s"] = callee
    a._processes["s"] = caller
    rpc = PreVoteRpc(1, 0, 1, "token", ServerId("s", A), 0, 0)
    a.transport.send_peer(ServerId("s", A), ServerId("s", B), rpc, None)
    result = RequestVoteResult(1, True)
    b.transport.send_peer(ServerId("s", B), ServerId("s", A), result, LocalCall(ServerId("s", A)))

    assert callee.inbox == [PeerMessage(ServerId("s", A), rpc, LocalCall(ServerId("s", A)))]
    assert caller.inbox == [PeerMessage(ServerId("s", B), RequestVoteResult(1, True), None)]
    del a._processes["s"], b._processes["s"]


def test_monitors_fire_when_the_server_stops_or_its_node_goes_down(two_nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = two_nodes
    leader, follower, other = Watcher(), Watcher(), Watcher()
    b._processes["l"] = leader
    a.transport.monitor_server(follower, ServerId("l", B))
    a.transport.monitor_server(other, ServerId("missing", B))
    a.transport.monitor_node(follower, B)
    del b._processes["l"]
    b.transport.server_down(ServerId("l", B), "killed")
    a.transport.monitor_server(follower, ServerId("l", B))

    assert follower.inbox == [
        NodeUp(B),
        PeerDown(ServerId("l", B), "killed"),
        PeerDown(ServerId("l", B), "noproc"),
    ]
    assert other.inbox == [PeerDown(ServerId("missing", B), "noproc")]

    b._processes["l"] = leader
    a.transport.monitor_server(follower, ServerId("l", B))
    a.local.node_down_delay_s = 0  # aten's report without waiting for its next poll
    a.network.leave(b)
    assert follower.inbox[3:] == [PeerDown(ServerId("l", B), "noconnection"), NodeDown(B)]
    del b._processes["l"]


async def test_client_calls_fail_with_nodedown_noproc_or_timeout(two_nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = two_nodes
    with pytest.raises(errors.NodeDown):
        await a.transport.call(ServerId("s", "gone@localhost"), lambda f: PingRequest(f), 1.0)
    with pytest.raises(errors.NoProc):
        await a.transport.call(ServerId("s", B), lambda f: PingRequest(f), 1.0)
    silent = Watcher()
    b._processes["quiet"] = silent
    with pytest.raises(TimeoutError):
        await a.transport.call(ServerId("quiet", B), lambda f: PingRequest(f), 0.05)
    (request,) = silent.inbox
    assert isinstance(request, PingRequest) and isinstance(request.from_, ClientCall)
    assert request.from_.node == A
    del b._processes["quiet"]


async def test_a_reply_resolves_the_callers_pending_call_on_its_own_node(two_nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = two_nodes
    server = Watcher()
    b._processes["s"] = server
    call = asyncio.create_task(a.transport.call(ServerId("s", B), lambda f: PingRequest(f), 5.0))
    await asyncio.sleep(0)
    (request,) = server.inbox
    assert isinstance(request, PingRequest)
    b.transport.reply(request.from_, "pong")
    assert await call == "pong"
    del b._processes["s"]


def test_ra_events_reach_the_registered_sink_of_the_pid_node(two_nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = two_nodes
    got: list[RaEvent] = []
    pid = a.transport.register_sink(got.append)
    event = RaEvent(ServerId("s", B), "applied", ((1, "ok"),))
    b.transport.send_event(pid, event)
    a.transport.unregister_sink(pid)
    b.transport.send_event(pid, event)
    assert got == [event]


def test_a_gen_call_to_a_server_that_is_not_running_fails_back_to_the_caller(two_nodes) -> None:  # type: ignore[no-untyped-def]
    a, _ = two_nodes
    caller = Watcher()
    a._processes["s"] = caller
    rpc = PreVoteRpc(1, 0, 1, "token", ServerId("s", A), 0, 0)
    a.transport.send_peer(ServerId("s", A), ServerId("s", B), rpc, None)
    a.transport.send_peer(ServerId("s", A), ServerId("s", "gone@localhost"), rpc, None)
    del a._processes["s"]

    assert caller.inbox == [
        PeerCallFailed(ServerId("s", B), rpc, "noproc"),
        PeerCallFailed(ServerId("s", "gone@localhost"), rpc, "nodedown"),
    ]


def test_api_errors_are_also_the_package_level_exceptions() -> None:
    from pyra_dist import errors as package
    from pyra_dist.server.errors import error_for_reason

    sid = ServerId("s", A)
    late = errors.RaTimeout("late", server_id=sid)
    assert isinstance(late, package.Timeout) and isinstance(late, TimeoutError) and late.server_id == sid
    assert isinstance(error_for_reason("not_member", sid), package.NotMember)
    assert isinstance(error_for_reason("cluster_change_not_permitted"), package.ClusterChangeNotPermitted)
    failed = errors.NoMoreServersToTry([errors.NoProc("gone")])
    assert isinstance(failed, package.NoMoreServersToTry)
    assert str(failed) == "no more servers to try: ['gone']"
