"""Asyncio EPMD client: register our node, look peers up, make sure an epmd is running.

Owns: the TCP conversations with epmd (reference §1): ``register`` (ALIVE2, socket kept open
for the node's life, re-registered if epmd goes away), ``port_please``, ``names``, and
``ensure_epmd`` (start the system ``epmd -daemon``, or else the embedded server).
Must not: parse or build EPMD bytes itself (``protocol.py`` does), or know about handshakes.

The epmd port defaults to ``$ERL_EPMD_PORT`` or 4369, as for ``erl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from typing import Final

from erl_interop.epmd.protocol import (
    NODE_TYPE_HIDDEN,
    NODE_TYPE_NORMAL,
    Alive2Req,
    NamesReq,
    Port2Resp,
    PortPlease2Req,
    parse_alive2_resp,
    parse_names_resp,
    parse_port2_resp,
)
from erl_interop.epmd.server import EpmdServer
from erl_interop.errors import EpmdError

__all__ = [
    "DEFAULT_EPMD_PORT",
    "EpmdRegistration",
    "default_epmd_port",
    "ensure_epmd",
    "names",
    "port_please",
    "port_please2",
    "register",
]

log = logging.getLogger(__name__)

DEFAULT_EPMD_PORT: Final = 4369
_REREGISTER_EVERY: Final = 2.0  # seconds, like erl_epmd's reconnect timer


def default_epmd_port() -> int:
    """``$ERL_EPMD_PORT`` if set, else 4369."""
    value = os.environ.get("ERL_EPMD_PORT")
    return int(value) if value else DEFAULT_EPMD_PORT


async def _open(host: str, port: int, time_limit: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        async with asyncio.timeout(time_limit):
            return await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        raise EpmdError(f"cannot reach epmd at {host}:{port}: {exc!r}") from exc


async def _alive2(
    request: Alive2Req, host: str, port_epmd: int, time_limit: float
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await _open(host, port_epmd, time_limit)
    try:
        writer.write(request.to_bytes())
        buf = bytearray()
        async with asyncio.timeout(time_limit):
            while (parsed := parse_alive2_resp(buf)) is None:
                chunk = await reader.read(64)
                if not chunk:
                    raise EpmdError(f"epmd at {host}:{port_epmd} closed the connection during ALIVE2")
                buf += chunk
    except BaseException:
        writer.close()
        raise
    reply, _ = parsed
    if reply.result != 0:
        writer.close()
        raise EpmdError(
            f"epmd refused to register {request.name!r} (result {reply.result}; name already in use?)"
        )
    if reply.creation == 0:
        writer.close()
        raise EpmdError("epmd handed out the reserved creation 0")
    return reply.creation, reader, writer


class EpmdRegistration:
    """Our node's registration; alive as long as its socket to epmd is open.

    Create with ``register``. ``creation`` is the 32-bit creation from ALIVE2_X_RESP and never
    changes; if epmd restarts, the name is re-registered (every 2 s until it works) and the
    new creation is only logged, because pids already handed out carry the first one.
    """

    def __init__(
        self,
        request: Alive2Req,
        creation: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port_epmd: int,
    ) -> None:
        self.name = request.name
        self.port = request.port
        self.creation = creation
        self._request = request
        self._host = host
        self._port_epmd = port_epmd
        self._writer = writer
        self._closed = False
        self._watch = asyncio.get_running_loop().create_task(self._watch_loop(reader))

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    async def _watch_loop(self, reader: asyncio.StreamReader) -> None:
        while not self.closed:
            with contextlib.suppress(OSError):
                while await reader.read(64):
                    pass  # epmd never sends anything after the reply; EOF means it went away
            if self._is_closed():
                return
            log.warning("epmd connection for %s lost; re-registering", self.name)
            while not self._closed:
                try:
                    creation, reader, self._writer = await _alive2(
                        self._request, self._host, self._port_epmd, time_limit=5.0
                    )
                except EpmdError as exc:
                    log.debug("re-registering %s failed: %s", self.name, exc)
                    await asyncio.sleep(_REREGISTER_EVERY)
                    continue
                log.warning("%s re-registered with epmd (new creation %d ignored)", self.name, creation)
                break

    def _is_closed(self) -> bool:
        # A method call, so type checkers do not assume the flag kept its value across awaits.
        return self._closed

    async def close(self) -> None:
        """Unregister: close the socket to epmd (there is no explicit unregister request)."""
        if self._closed:
            return
        self._closed = True
        self._watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


async def register(
    name: str,
    port: int,
    *,
    host: str = "127.0.0.1",
    port_epmd: int | None = None,
    hidden: bool = False,
    time_limit: float = 5.0,
) -> EpmdRegistration:
    """Register ``name`` (the part before ``@``) as listening on ``port`` (ALIVE2_REQ, v6/v6).

    Args:
        name: the alive part of our node name.
        port: our distribution listener's TCP port.
        host: the epmd host; epmd accepts ALIVE2 only from its own host.
        port_epmd: the epmd port (default ``default_epmd_port()``).
        hidden: register with node type 72 'H' instead of 77 'M' (erl always uses 'M';
            visibility is decided in the handshake).
        time_limit: seconds to wait for epmd.

    Returns:
        The registration; keep it for the node's life and ``await close()`` it at shutdown.

    Raises:
        EpmdError: epmd unreachable, or it refused the name (already registered).
    """
    request = Alive2Req(port=port, name=name, node_type=NODE_TYPE_HIDDEN if hidden else NODE_TYPE_NORMAL)
    epmd = default_epmd_port() if port_epmd is None else port_epmd
    creation, reader, writer = await _alive2(request, host, epmd, time_limit)
    return EpmdRegistration(request, creation, reader, writer, host, epmd)


async def port_please2(
    host: str, name: str, *, port_epmd: int | None = None, time_limit: float = 5.0
) -> Port2Resp:
    """PORT_PLEASE2_REQ: the full reply for ``name`` on ``host``.

    Raises:
        EpmdError: epmd unreachable, the name is not registered, or the reply is malformed.
    """
    epmd = default_epmd_port() if port_epmd is None else port_epmd
    reader, writer = await _open(host, epmd, time_limit)
    try:
        writer.write(PortPlease2Req(name=name).to_bytes())
        buf = bytearray()
        async with asyncio.timeout(time_limit):
            while (parsed := parse_port2_resp(buf)) is None:
                chunk = await reader.read(1024)
                if not chunk:
                    raise EpmdError(f"epmd at {host}:{epmd} closed the connection during PORT_PLEASE2")
                buf += chunk
    except TimeoutError as exc:
        raise EpmdError(f"epmd at {host}:{epmd} did not answer PORT_PLEASE2 for {name!r}") from exc
    finally:
        writer.close()
    reply, _ = parsed
    if reply.result != 0:
        raise EpmdError(f"node {name!r} is not registered with epmd on {host} (result {reply.result})")
    return reply


async def port_please(host: str, name: str, *, port_epmd: int | None = None, time_limit: float = 5.0) -> int:
    """The distribution port of node ``name`` (alive part) on ``host``.

    Args:
        host: the node's host (as in ``name@host``).
        name: the alive part of the node name.
        port_epmd: the epmd port (default ``default_epmd_port()``).
        time_limit: seconds to wait for epmd.

    Returns:
        The TCP port the node accepts distribution connections on.

    Raises:
        EpmdError: epmd unreachable, the node is unknown, or it only speaks pre-OTP-23
            protocol versions (highest < 6).
    """
    reply = await port_please2(host, name, port_epmd=port_epmd, time_limit=time_limit)
    if reply.highest_version < 6:
        raise EpmdError(f"node {name!r} speaks distribution version {reply.highest_version} < 6 (pre OTP 23)")
    return reply.port


async def names(
    host: str = "127.0.0.1", *, port_epmd: int | None = None, time_limit: float = 5.0
) -> list[tuple[str, int]]:
    """NAMES_REQ: every ``(name, port)`` registered with epmd on ``host``.

    Raises:
        EpmdError: epmd unreachable or the reply is malformed.
    """
    epmd = default_epmd_port() if port_epmd is None else port_epmd
    reader, writer = await _open(host, epmd, time_limit)
    try:
        writer.write(NamesReq().to_bytes())
        async with asyncio.timeout(time_limit):
            data = await reader.read()  # epmd closes after the list
    except TimeoutError as exc:
        raise EpmdError(f"epmd at {host}:{epmd} did not answer NAMES") from exc
    finally:
        writer.close()
    return parse_names_resp(data).names


async def _answers(host: str, port: int) -> bool:
    try:
        _, writer = await _open(host, port, time_limit=1.0)
    except EpmdError:
        return False
    writer.close()
    return True


async def ensure_epmd(
    *, port: int | None = None, host: str = "127.0.0.1", use_system: bool = True, time_limit: float = 5.0
) -> EpmdServer | None:
    """Make sure an epmd listens on ``host:port``, as ``erl`` does at startup (§1.4).

    If one answers, nothing is started. Otherwise the system ``epmd -daemon`` is run when it
    is installed (and ``use_system``); it outlives us, like the one ``erl`` starts. Failing
    that, an embedded EPMD-compatible server is started in this process.

    Args:
        port: the epmd port (default ``default_epmd_port()``).
        host: where to probe (and bind the embedded server).
        use_system: allow running the system ``epmd`` binary.
        time_limit: seconds to wait for a started daemon to answer.

    Returns:
        The embedded server if one was started (the caller owns it: ``await server.close()``),
        else None.

    Raises:
        EpmdError: nothing could be started on that port.
    """
    epmd_port = default_epmd_port() if port is None else port
    if await _answers(host, epmd_port):
        return None
    binary = shutil.which("epmd") if use_system else None
    if binary is not None:
        proc = await asyncio.create_subprocess_exec(
            binary, "-daemon", "-port", str(epmd_port), stdin=asyncio.subprocess.DEVNULL
        )
        await proc.wait()  # -daemon forks; the parent exits at once
        loop = asyncio.get_running_loop()
        deadline = loop.time() + time_limit
        while loop.time() < deadline:
            if await _answers(host, epmd_port):
                log.info("started %s -daemon on port %d", binary, epmd_port)
                return None
            await asyncio.sleep(0.05)
        log.warning("%s -daemon did not answer on port %d; using the embedded epmd", binary, epmd_port)
    try:
        server = await EpmdServer.start(host=host, port=epmd_port)
    except OSError as exc:
        raise EpmdError(f"cannot start an embedded epmd on {host}:{epmd_port}: {exc!r}") from exc
    log.info("started the embedded epmd on %s:%d", host, server.port)
    return server
