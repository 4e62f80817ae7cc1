"""A small embedded EPMD-compatible server, used when no epmd runs and none can be started.

Owns: an asyncio TCP server speaking the subset of the EPMD protocol nodes use: ALIVE2
(registration lives as long as the registering connection; accepted from loopback peers
only, like epmd), PORT_PLEASE2 and NAMES. Creations start at a random non-zero 32-bit value
and increase by one per registration, as OTP 23+ epmd does (reference §1.1).
Must not: parse bytes itself (``protocol.py``), or serve DUMP/KILL/STOP (they are answered by
closing the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from typing import assert_never

from erl_interop.epmd.protocol import (
    Alive2Req,
    Alive2Resp,
    NamesReq,
    NamesResp,
    Port2Resp,
    PortPlease2Req,
    UnsupportedReq,
    parse_request,
)
from erl_interop.errors import EpmdError

__all__ = ["EpmdServer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Registration:
    request: Alive2Req
    creation: int


class EpmdServer:
    """The embedded epmd. Start with ``await EpmdServer.start(host, port)``; stop with ``close()``."""

    def __init__(self, server: asyncio.Server, first_creation: int) -> None:
        self._server = server
        self._registered: dict[str, _Registration] = {}
        self._next_creation = first_creation
        self._connections: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, host: str = "127.0.0.1", port: int = 4369) -> EpmdServer:
        """Bind and serve.

        Args:
            host: address to bind.
            port: port to bind (0 picks a free one; see ``.port``).

        Returns:
            The running server.

        Raises:
            OSError: the port is taken.
        """
        holder: list[EpmdServer] = []

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await holder[0]._serve(reader, writer)

        server = await asyncio.start_server(on_connect, host, port)
        self = cls(server, first_creation=secrets.randbelow(0xFFFF0000) + 1)
        holder.append(self)
        return self

    @property
    def port(self) -> int:
        """The bound port."""
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def registered(self) -> list[tuple[str, int]]:
        """``(name, port)`` of the currently registered nodes."""
        return [(name, reg.request.port) for name, reg in self._registered.items()]

    def _creation(self) -> int:
        creation = self._next_creation
        self._next_creation = creation % 0xFFFFFFFF + 1  # never 0
        return creation

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_one(reader, writer)
        except (OSError, EpmdError, asyncio.IncompleteReadError) as exc:
            log.debug("embedded epmd: dropping a client: %r", exc)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = bytearray()
        while (parsed := parse_request(buf)) is None:
            chunk = await reader.read(1024)
            if not chunk:
                return
            buf += chunk
        request, _ = parsed
        match request:
            case Alive2Req():
                await self._alive2(request, reader, writer)
            case PortPlease2Req(name=name):
                reg = self._registered.get(name)
                if reg is None:
                    writer.write(Port2Resp(result=1).to_bytes())
                else:
                    r = reg.request
                    writer.write(
                        Port2Resp(
                            result=0,
                            port=r.port,
                            node_type=r.node_type,
                            protocol=r.protocol,
                            highest_version=r.highest_version,
                            lowest_version=r.lowest_version,
                            name=r.name,
                            extra=r.extra,
                        ).to_bytes()
                    )
                await writer.drain()
            case NamesReq():
                writer.write(NamesResp(epmd_port=self.port, names=self.registered()).to_bytes())
                await writer.drain()
            case UnsupportedReq(tag=tag):
                log.debug("embedded epmd: unsupported request %d", tag)
            case _:
                assert_never(request)

    async def _alive2(
        self, request: Alive2Req, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        if not peer or not ipaddress.ip_address(peer[0]).is_loopback:
            log.warning("embedded epmd: refusing ALIVE2 for %s from non-local %r", request.name, peer)
            return
        if request.name in self._registered:
            writer.write(Alive2Resp(result=1, creation=0, extended=request.highest_version >= 6).to_bytes())
            await writer.drain()
            return
        creation = self._creation()
        self._registered[request.name] = registration = _Registration(request, creation)
        try:
            writer.write(
                Alive2Resp(result=0, creation=creation, extended=request.highest_version >= 6).to_bytes()
            )
            await writer.drain()
            while await reader.read(1024):
                pass  # the registration lasts as long as this connection
        finally:
            if self._registered.get(request.name) is registration:
                del self._registered[request.name]

    async def close(self) -> None:
        """Stop listening and drop every registration."""
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.wait_closed()
