"""EPMD: register our node, look peers up, and run an embedded epmd when none is available.

Owns: the public EPMD surface (re-exports only). Must not: run code at import.
"""

from __future__ import annotations

from erl_interop.epmd.client import (
    DEFAULT_EPMD_PORT,
    EpmdRegistration,
    default_epmd_port,
    ensure_epmd,
    names,
    port_please,
    port_please2,
    register,
)
from erl_interop.epmd.server import EpmdServer

__all__ = [
    "DEFAULT_EPMD_PORT",
    "EpmdRegistration",
    "EpmdServer",
    "default_epmd_port",
    "ensure_epmd",
    "names",
    "port_please",
    "port_please2",
    "register",
]
