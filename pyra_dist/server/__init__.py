"""The I/O side of pyra: asyncio tasks that drive Raft cores with real storage, timers and transports.

Owns: re-exports only. Must not: run code at import.
"""

from __future__ import annotations

from pyra_dist.server.process import ServerProcess
from pyra_dist.server.system import ServerConfig, System, new_uid
from pyra_dist.server.transport import (
    EventSink,
    LocalNetwork,
    LocalPid,
    LocalTransport,
    NodeOps,
    PeerTransport,
    RaEvent,
)

__all__ = [
    "EventSink",
    "LocalNetwork",
    "LocalPid",
    "LocalTransport",
    "NodeOps",
    "PeerTransport",
    "RaEvent",
    "ServerConfig",
    "ServerProcess",
    "System",
    "new_uid",
]
