"""pyra_dist: Ra's Multi-Raft, rebuilt in Python.

Owns: the public surface of the package (re-exports only). Must not: run code at import: names are
resolved lazily (PEP 562), so ``import pyra_dist.types`` from the sans-IO core does not pull in the
asyncio server, the storage engine or the API.

Usage::

    from pyra_dist import ra, System, ServerId, KvMachine
    system = await ra.start_system(data_dir="/tmp/d", node="py1@localhost")
    async with system:
        await ra.start_cluster(system, "kv", KvMachine(), [ServerId("kv", "py1@localhost")])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyra_dist import ra
    from pyra_dist.core.machine import ApplyMeta, Machine, MachineConfig
    from pyra_dist.machines import KvMachine, SimpleMachine
    from pyra_dist.server.errors import RaError, RaTimeout
    from pyra_dist.server.system import ServerConfig, System
    from pyra_dist.server.transport import LocalNetwork
    from pyra_dist.types import ServerId

_EXPORTS: dict[str, tuple[str, str | None]] = {
    "ra": ("pyra_dist.ra", None),
    "System": ("pyra_dist.server.system", "System"),
    "ServerConfig": ("pyra_dist.server.system", "ServerConfig"),
    "LocalNetwork": ("pyra_dist.server.transport", "LocalNetwork"),
    "ServerId": ("pyra_dist.types", "ServerId"),
    "Machine": ("pyra_dist.core.machine", "Machine"),
    "MachineConfig": ("pyra_dist.core.machine", "MachineConfig"),
    "ApplyMeta": ("pyra_dist.core.machine", "ApplyMeta"),
    "KvMachine": ("pyra_dist.machines", "KvMachine"),
    "SimpleMachine": ("pyra_dist.machines", "SimpleMachine"),
    "RaError": ("pyra_dist.server.errors", "RaError"),
    "RaTimeout": ("pyra_dist.server.errors", "RaTimeout"),
}


def __getattr__(name: str) -> object:
    """Resolve a public name on first use (PEP 562)."""
    try:
        module_name, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'pyra_dist' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


__all__ = [
    "ApplyMeta",
    "KvMachine",
    "LocalNetwork",
    "Machine",
    "MachineConfig",
    "RaError",
    "RaTimeout",
    "ServerConfig",
    "ServerId",
    "SimpleMachine",
    "System",
    "ra",
]
