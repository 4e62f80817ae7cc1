"""Ticks against real peers started with ``-kernel net_ticktime 4`` (reference §3.1).

We must tick on our own schedule (Erlang drops a peer that only echoes), and we must notice a
peer that went silent: a SIGSTOPped ``erl`` is exactly that.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import Iterator

import pytest
from dist_support import PyNode, peer_eval, unique

from erl_interop.testing import ErlPeer, otp28_erl

pytestmark = pytest.mark.erlang


@pytest.fixture(scope="module", params=["otp25", "otp28"])
def tick_peer(request: pytest.FixtureRequest) -> Iterator[ErlPeer]:
    cookie = "c" + secrets.token_hex(8)
    erl = otp28_erl() if request.param == "otp28" else None
    peer = ErlPeer(unique("t"), cookie, erl=erl, extra_args=["-kernel", "net_ticktime", "4"])
    with peer:
        try:
            yield peer
        finally:
            peer.kill()


async def test_ticks_keep_an_idle_connection_up_beyond_the_peers_net_ticktime(tick_peer: ErlPeer) -> None:
    async with PyNode(unique("py"), tick_peer.cookie, net_ticktime=4.0) as node:
        channel = await node.connect(tick_peer.node)
        assert await peer_eval(tick_peer, "net_kernel:get_net_ticktime().") == "4"
        # Idle for longer than the peer's net_ticktime: only ticks cross the connection.
        closed = asyncio.ensure_future(channel.wait_closed())
        done, _ = await asyncio.wait({closed}, timeout=7.0)
        assert done == set()
        closed.cancel()
        assert await peer_eval(tick_peer, f"lists:member('{node.name}', nodes(hidden)).") == "true"
        assert [line for line in tick_peer.output if "not responding" in line] == []
        channel.close("test_done")


async def test_a_silent_peer_is_dropped_with_net_tick_timeout(tick_peer: ErlPeer) -> None:
    async with PyNode(unique("py"), tick_peer.cookie, net_ticktime=3.0) as node:
        channel = await node.connect(tick_peer.node)
        assert tick_peer.proc is not None
        pid = tick_peer.proc.pid
        os.kill(pid, signal.SIGSTOP)  # our own child: it stops reading, writing and ticking
        try:
            reason = await asyncio.wait_for(channel.wait_closed(), 15)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert reason == "net_tick_timeout"
        assert await node.closed.get() == (channel, "net_tick_timeout")
