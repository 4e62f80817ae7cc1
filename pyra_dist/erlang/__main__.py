"""``python -m pyra_dist.erlang``: run one Python node hosting Ra servers for Erlang clients.

Owns: the smallest runner of an ``ErlangEdge`` (distribution node + default system + rpc
services), printing ``ready <node>`` once Erlang can reach it and stopping cleanly on SIGTERM,
SIGINT or end of stdin. Used by the interop tests and by hand (``erl`` shells can then call
``ra:start_cluster(default, qs, {simple, fun erlang:'+'/2, 0}, [{qs, 'py1@127.0.0.1'}])``).

Must not: contain behaviour of its own beyond argument parsing and lifetime.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any


def _load(spec: str) -> Any:
    """``package.module:attribute`` -> the attribute."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


async def serve(
    name: str,
    cookie: str,
    data_dir: Path,
    *,
    hidden: bool,
    stdin_eof: bool,
    machines: list[str] = [],  # noqa: B006 (read only)
) -> None:
    """Run the node until a signal (or stdin EOF when ``stdin_eof``).

    Args:
        machines: ``ErlangModule=package.module:Factory`` registrations for ``{module, M, Config}``.
    """
    from erl_interop.node.node import Node
    from pyra_dist.erlang.machines import ErlangRegistry
    from pyra_dist.erlang.services import attach_erlang_edge
    from pyra_dist.erlang.snapshots import RaSnapshotCodec
    from pyra_dist.server.system import System

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if stdin_eof:
        fd = sys.stdin.fileno()
        loop.add_reader(fd, lambda: None if os.read(fd, 4096) else stop.set())
    async with Node(name, cookie=cookie, hidden=hidden) as node:
        system = await System.start("default", data_dir, str(node.name), snapshot_codec=RaSnapshotCodec())
        registry = ErlangRegistry()
        for registration in machines:
            module, _, factory = registration.partition("=")
            registry.register_machine(module, _load(factory))
        edge = attach_erlang_edge(system, node, registry)
        async with system:
            edge.install()
            print(f"ready {node.name}", flush=True)
            await stop.wait()
            edge.close()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the node."""
    parser = argparse.ArgumentParser(prog="python -m pyra_dist.erlang", description=__doc__)
    parser.add_argument("--name", required=True, help="node name, e.g. py1@127.0.0.1")
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--visible", action="store_true", help="connect as a visible (not hidden) node")
    parser.add_argument("--stdin-eof", action="store_true", help="also stop when stdin closes")
    parser.add_argument(
        "--machine",
        action="append",
        default=[],
        metavar="MOD=PKG.MODULE:FACTORY",
        help="run {module, MOD, Config} machines with the Python factory (repeatable)",
    )
    parser.add_argument("--log", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(
        serve(
            args.name,
            args.cookie,
            args.data_dir,
            hidden=not args.visible,
            stdin_eof=args.stdin_eof,
            machines=args.machine,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
