"""The EPMD client and the embedded server against the system epmd and real ``erl`` nodes."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable, Iterator

import pytest

from erl_interop.epmd import EpmdServer, ensure_epmd, names, port_please, register
from erl_interop.errors import EpmdError
from erl_interop.testing import ErlPeer

pytestmark = pytest.mark.erlang

HOST = socket.gethostname().split(".")[0]


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def eventually(
    probe: Callable[[], Awaitable[list[tuple[str, int]]]],
    accept: Callable[[list[tuple[str, int]]], bool],
    limit: float = 10.0,
) -> None:
    """Poll ``probe`` until ``accept`` says yes (EPMD state changes asynchronously)."""
    async with asyncio.timeout(limit):
        while True:
            if accept(await probe()):
                return
            await asyncio.sleep(0.05)


def _now(fn: Callable[[], list[tuple[str, int]]]) -> Callable[[], Awaitable[list[tuple[str, int]]]]:
    async def probe() -> list[tuple[str, int]]:
        return fn()

    return probe


@pytest.fixture(scope="module")
def erl() -> Iterator[ErlPeer]:
    with ErlPeer(unique("e"), "c" + secrets.token_hex(8)) as peer:
        try:
            yield peer
        finally:
            peer.kill()


async def test_a_registered_python_node_is_listed_by_net_adm_names_on_a_real_node(erl: ErlPeer) -> None:
    alive = unique("py")
    registration = await register(alive, 40123)
    try:
        assert 0 < registration.creation <= 0xFFFFFFFF
        listed = await asyncio.to_thread(erl.eval, "element(2, net_adm:names()).")
        assert f'{{"{alive}",40123}}' in listed
        assert (alive, 40123) in await names()
    finally:
        await registration.close()


async def test_closing_the_registration_removes_the_name(erl: ErlPeer) -> None:
    alive = unique("py")
    registration = await register(alive, 40124)
    await registration.close()
    await eventually(lambda: names(), lambda listed: (alive, 40124) not in listed)
    assert f'"{alive}"' not in await asyncio.to_thread(erl.eval, "element(2, net_adm:names()).")


async def test_port_please_finds_a_real_node_and_refuses_unknown_names(erl: ErlPeer) -> None:
    alive = erl.node.partition("@")[0]
    port = await port_please(HOST, alive)
    assert (alive, port) in await names()
    with pytest.raises(EpmdError, match="is not registered"):
        await port_please(HOST, unique("nobody"))


async def test_a_name_already_registered_is_refused() -> None:
    alive = unique("py")
    first = await register(alive, 40125)
    try:
        with pytest.raises(EpmdError, match="name already in use"):
            await register(alive, 40126)
    finally:
        await first.close()


async def test_embedded_epmd_serves_a_real_erl_node_and_python_registrations() -> None:
    port = free_port()
    server = await EpmdServer.start("127.0.0.1", port)
    alive = unique("py")
    registration = await register(alive, 40200, port_epmd=port)
    peer = ErlPeer(unique("e"), "cookie", env={**os.environ, "ERL_EPMD_PORT": str(port)})
    try:
        await asyncio.to_thread(peer.start)
        erl_alive = peer.node.partition("@")[0]
        erl_port = await port_please(HOST, erl_alive, port_epmd=port)
        assert sorted(server.registered()) == sorted([(alive, 40200), (erl_alive, erl_port)])
        listed = await asyncio.to_thread(peer.eval, "lists:sort(element(2, net_adm:names())).")
        expected = sorted([(alive, 40200), (erl_alive, erl_port)])
        assert listed == "[" + ",".join(f'{{"{name}",{p}}}' for name, p in expected) + "]"
        assert 0 < registration.creation <= 0xFFFFFFFF
    finally:
        peer.kill()
        await registration.close()
        await server.close()


async def test_a_registration_comes_back_after_epmd_restarts() -> None:
    port = free_port()
    server = await EpmdServer.start("127.0.0.1", port)
    alive = unique("py")
    registration = await register(alive, 40300, port_epmd=port)
    try:
        creation = registration.creation
        await server.close()
        server = await EpmdServer.start("127.0.0.1", port)
        await eventually(_now(server.registered), lambda listed: listed == [(alive, 40300)])
        assert registration.creation == creation  # pids already handed out keep their creation
    finally:
        await registration.close()
        await server.close()


async def test_ensure_epmd_starts_the_embedded_server_only_when_nothing_answers() -> None:
    port = free_port()
    server = await ensure_epmd(port=port, use_system=False)
    try:
        assert isinstance(server, EpmdServer)
        assert server.port == port
        assert await ensure_epmd(port=port, use_system=False) is None
        assert await names(port_epmd=port) == []
    finally:
        assert server is not None
        await server.close()


async def test_ensure_epmd_runs_the_system_epmd_daemon_when_installed() -> None:
    epmd = shutil.which("epmd")
    assert epmd is not None, "the system epmd is installed on CI"
    port = free_port()
    try:
        assert await ensure_epmd(port=port) is None
        assert await names(port_epmd=port) == []
    finally:
        # The daemon outlives us by design (like erl's); stop this one explicitly.
        await asyncio.to_thread(
            subprocess.run, [epmd, "-port", str(port), "-kill"], capture_output=True, timeout=10
        )
