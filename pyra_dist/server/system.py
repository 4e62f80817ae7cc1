"""A Ra system: one data directory, one shared WAL, and the servers that live in it.

Owns: ``System`` (Ra's ``ra_system``: the system directory ``<data_dir>/<node>/``, the storage shared
by every server of the system, the directory of servers (name -> uid, persisted), the running
``ServerProcess``es and the ``TaskGroup`` that owns their tasks, the node-level ``TimerService`` and
tick, the leaderboard, and the node's ``PeerTransport``) and ``ServerConfig`` (what a server is
started with, persisted in ``<uid>/config`` so that ``restart_server`` can bring it back).

Must not: decide Raft or interpret effects (``effects.py``), hold globals (two systems in one
interpreter are independent; ``LocalNetwork`` is passed in), or create a timer per server.

Lifecycle (R7)::

    system = await System.start(name="default", data_dir=path, node="py1@localhost")
    async with system:                      # owns the TaskGroup; leaving stops every server
        await ra.start_cluster(system, "kv", KvMachine(), ids)

Failure detection (ra-internals §8.2): there is no heartbeat while idle. A follower monitors its
leader's process (``MonitorServer``); stopping or killing a server fires those monitors with
``PeerDown``, and a system leaving the network fires ``NodeDown`` plus ``noconnection`` monitors.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import pickle
import random
import re
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from pyra_dist.core.events import Tick
from pyra_dist.core.log_view import PickleSnapshotCodec, SnapshotCodec
from pyra_dist.core.machine import Machine
from pyra_dist.core.server import RaftCore
from pyra_dist.core.state import CoreConfig
from pyra_dist.log.config import SystemConfig
from pyra_dist.log.core_view import EntryCodec
from pyra_dist.server import errors
from pyra_dist.server.codec import EncodedCommands, FastPickleEntryCodec, SharedEncodingCodec
from pyra_dist.server.effects import EffectInterpreter, LogWriter, MetaWriter
from pyra_dist.server.process import ServerProcess
from pyra_dist.server.storage import ServerStorage, SystemStorage
from pyra_dist.server.timers import LoopClock, TimerService
from pyra_dist.server.transport import LocalNetwork, LocalTransport, PeerTransport
from pyra_dist.types import Role, ServerId

_log = logging.getLogger("pyra_dist.server")
_T = TypeVar("_T")

_UID_RE = re.compile(r"^[A-Za-z0-9_=-]+$")
CONFIG_FILE = "config"


def _write_config(config: ServerConfig, server_dir: Path) -> None:
    """Persist ``config`` atomically as ``<uid>/config`` (temp file, fsync, rename)."""
    server_dir.mkdir(parents=True, exist_ok=True)
    tmp = server_dir / (CONFIG_FILE + ".tmp")
    with open(tmp, "wb") as f:
        f.write(config.to_bytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, server_dir / CONFIG_FILE)


_UID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_uid(cluster_name: str, rng: random.Random | None = None) -> str:
    """Ra's ``ra:new_uid/1``: up to 6 base64url characters of the cluster name, upper-cased, then 12
    random characters from ``[A-Z0-9]`` (ra-internals §1.1).

    Args:
        cluster_name: the cluster's name.
        rng: the source of the random part (uniqueness only, not secrecy); default: ``secrets``.
    """
    prefix = base64.urlsafe_b64encode(cluster_name.encode()).decode().rstrip("=")[:6].upper()
    if rng is None:
        return prefix + "".join(secrets.choice(_UID_ALPHABET) for _ in range(12))
    return prefix + "".join(rng.choices(_UID_ALPHABET, k=12))


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """What one server is started with (Ra's server config map, ra-internals §5.1, §7.7).

    ``machine`` is a ``pyra_dist.core.machine.Machine`` instance; it is persisted with pickle when
    possible (module-level classes), otherwise ``restart_server`` needs it passed again.
    """

    server_id: ServerId
    uid: str
    cluster_name: str
    initial_members: tuple[ServerId, ...]
    machine: Machine
    machine_args: Mapping[str, object] = field(default_factory=dict)
    broadcast_time_ms: int = 100
    tick_timeout_ms: int = 1000
    await_condition_timeout_ms: int = 30_000
    max_pipeline_count: int = 4096
    snapshot_interval: int = 4096

    # The keys restart_server may change (Ra 2.2.0's mutable config keys).
    MUTABLE = ("cluster_name", "broadcast_time_ms", "tick_timeout_ms", "await_condition_timeout_ms",
               "max_pipeline_count")

    def to_bytes(self) -> bytes:
        """The persisted form (pickle of a plain dict; the machine is ``None`` if it cannot be pickled)."""
        try:
            machine: bytes | None = pickle.dumps(self.machine)
        except (pickle.PicklingError, AttributeError, TypeError):
            machine = None
        data: dict[str, object] = {
            "server_id": (self.server_id.name, self.server_id.node),
            "uid": self.uid,
            "cluster_name": self.cluster_name,
            "initial_members": [(m.name, m.node) for m in self.initial_members],
            "machine": machine,
            "machine_args": dict(self.machine_args),
            "broadcast_time_ms": self.broadcast_time_ms,
            "tick_timeout_ms": self.tick_timeout_ms,
            "await_condition_timeout_ms": self.await_condition_timeout_ms,
            "max_pipeline_count": self.max_pipeline_count,
            "snapshot_interval": self.snapshot_interval,
        }
        return pickle.dumps(data)

    @staticmethod
    def name_in(raw: bytes) -> str:
        """The server name stored in a persisted config (without restoring the machine)."""
        data: dict[str, Any] = pickle.loads(raw)
        return str(data["server_id"][0])

    @classmethod
    def from_bytes(cls, raw: bytes, machine: Machine | None) -> ServerConfig:
        """Read a persisted config; ``machine`` overrides (or replaces an unpicklable) stored machine.

        Raises:
            ValueError: the stored machine could not be restored and none was given.
        """
        data: dict[str, Any] = pickle.loads(raw)
        if machine is None:
            if data["machine"] is None:
                raise ValueError("the machine of this server could not be persisted; pass machine=")
            machine = pickle.loads(data["machine"])
            if not isinstance(machine, Machine):
                raise ValueError(f"stored machine is not a Machine: {machine!r}")
        return cls(
            server_id=ServerId(*data["server_id"]),
            uid=data["uid"],
            cluster_name=data["cluster_name"],
            initial_members=tuple(ServerId(*m) for m in data["initial_members"]),
            machine=machine,
            machine_args=data["machine_args"],
            broadcast_time_ms=data["broadcast_time_ms"],
            tick_timeout_ms=data["tick_timeout_ms"],
            await_condition_timeout_ms=data["await_condition_timeout_ms"],
            max_pipeline_count=data["max_pipeline_count"],
            snapshot_interval=data["snapshot_interval"],
        )


@dataclass(slots=True)
class LeaderboardEntry:
    """What this node last learned about a cluster (Ra's ``ra_leaderboard``)."""

    leader: ServerId | None
    members: tuple[ServerId, ...]


class System:
    """One Ra system on one node. Create with ``await System.start(...)``, then ``async with``.

    Args:
        config: storage configuration (``data_dir``, WAL keys, ...).
        node: this node's name (server ids of this system are ``ServerId(name, node)``).
        network: the ``LocalNetwork`` to join; a private one if None.
        entry_codec: how log entries are stored (pickle; the Erlang edge passes an ETF codec).
        snapshot_codec: how machine states are stored and sent (pickle; the edge passes ETF).
        transport_factory: builds the system's ``PeerTransport`` (default: ``LocalTransport`` only).
    """

    def __init__(
        self,
        config: SystemConfig,
        node: str,
        network: LocalNetwork | None = None,
        *,
        entry_codec: EntryCodec | None = None,
        snapshot_codec: SnapshotCodec | None = None,
        transport_factory: Callable[[System], PeerTransport] | None = None,
    ) -> None:
        self.config = config

        self._snapshot_codec: SnapshotCodec = (
            snapshot_codec if snapshot_codec is not None else PickleSnapshotCodec()
        )
        self.node = node
        self.name = config.name
        self.network = network if network is not None else LocalNetwork()
        if self.network.encoded is None:
            self.network.encoded = EncodedCommands()
        self._entry_codec: EntryCodec = (
            entry_codec
            if entry_codec is not None
            else SharedEncodingCodec(FastPickleEntryCodec(), self.network.encoded)
        )
        # ``local`` reaches systems of this interpreter; ``transport`` is what servers and the API use:
        # the same object unless ``transport_factory`` wraps it (the Erlang-distribution edge does, to
        # route ids on remote nodes over distribution and everything else to ``local``).
        self.local = LocalTransport(node, self.network)
        self.transport: PeerTransport = (
            transport_factory(self) if transport_factory is not None else self.local
        )
        self.dir = config.system_dir(node)
        self.leaderboard: dict[str, LeaderboardEntry] = {}
        self._storage: SystemStorage | None = None
        self._names: dict[str, str] = {}
        self._processes: dict[str, ServerProcess] = {}
        self._server_storage: dict[ServerProcess, ServerStorage] = {}
        self._leaders: set[ServerProcess] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._timers: TimerService | None = None
        self._interpreter: EffectInterpreter | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        # Data deletions of servers that applied a cluster deletion: close() waits for them, as
        # they need the executor and the storage it shuts down.
        self._deletions: set[asyncio.Task[None]] = set()
        self._tick_s = 1.0
        self._rng = random.Random()
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        name: str = "default",
        data_dir: Path | str | None = None,
        node: str = "pyra@localhost",
        *,
        network: LocalNetwork | None = None,
        config: SystemConfig | None = None,
        entry_codec: EntryCodec | None = None,
        snapshot_codec: SnapshotCodec | None = None,
        transport_factory: Callable[[System], PeerTransport] | None = None,
    ) -> System:
        """Open a system's storage (recovering the WAL) and return it; enter it with ``async with``.

        Args:
            name: the system name (Ra's ``default``).
            data_dir: the base directory; the system lives in ``data_dir/node``. Ignored if
                ``config`` is given.
            node: the node name.
            network: the ``LocalNetwork`` shared with other in-process nodes.
            config: a full ``SystemConfig``. Without one, the system gets the log package's defaults
                (Ra 2.2.0's) except ``wal_pre_allocate``, which is on: WAL files are reserved ahead
                in chunks, so a sync of a small batch does not also commit a size change (about
                0.1-0.2 ms less per replicated command on this VM, see ``bench/latency.py``).
            entry_codec: see the class docstring.
            snapshot_codec: see the class docstring.
            transport_factory: see the class docstring.

        Returns:
            The opened (not yet entered) system.
        """
        if config is None:
            config = SystemConfig(
                name=name, data_dir=Path(data_dir) if data_dir is not None else None, wal_pre_allocate=True
            )
        system = cls(
            config,
            node,
            network,
            entry_codec=entry_codec,
            snapshot_codec=snapshot_codec,
            transport_factory=transport_factory,
        )
        await asyncio.to_thread(system._open_storage)
        return system

    def _open_storage(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # The directory (Ra's names.dets) is rebuilt from the servers' own config files, so there is
        # no second file to keep consistent with them.
        for config_file in self.dir.glob(f"*/{CONFIG_FILE}"):
            name = ServerConfig.name_in(config_file.read_bytes())
            self._names[name] = config_file.parent.name
        self._storage = SystemStorage.open(self.config, self.node, self._entry_codec, self._snapshot_codec)

    async def __aenter__(self) -> System:
        if self._storage is None:
            raise errors.SystemNotStarted("call `await System.start(...)` first")
        loop = asyncio.get_running_loop()
        self._timers = TimerService(LoopClock(loop))
        self._interpreter = EffectInterpreter(
            self.transport,
            self._timers,
            self,
            commit_only_aer_hold_s=self.transport.commit_only_aer_hold_s,
        )
        # Meta syncs (votes) run here so that one server's fsync does not stall the others.
        # Blocking file work (vote syncs, server recovery, config writes) runs here so that one
        # server's fsync never stalls the loop; syncs of different files proceed in parallel.
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"pyra-io-{self.node}")
        self._storage.attach(loop, self._executor)
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self.network.join(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
        tg, self._tg = self._tg, None
        if tg is not None:
            await tg.__aexit__(exc_type, exc, tb)

    async def close(self) -> None:
        """Stop every server (data kept), leave the network, close the WAL. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for name in list(self._processes):
            await self.stop_server(name)
        if self._deletions:
            await asyncio.gather(*self._deletions, return_exceptions=True)
        self.network.leave(self)
        self.local.close()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        if self._timers is not None:
            self._timers.close()
        if self._storage is not None:
            await asyncio.to_thread(self._storage.close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def crash(self) -> None:
        """Simulate this node dying: every server is killed (no orderly stop), the node leaves the
        network (peers see ``nodedown``/``noconnection``), storage is closed without flushing anything
        that was not already durable. The system is closed (and exited) afterwards."""
        self.network.leave(self)
        self.local.close()
        for name in list(self._processes):
            await self.kill_server(name)
        await self.__aexit__(None, None, None)

    @property
    def running(self) -> bool:
        """Whether servers can be started (entered and not closed)."""
        return self._tg is not None and not self._closed

    # -- directory ------------------------------------------------------------------------------

    def process(self, name: str) -> ServerProcess | None:
        """The running process registered under ``name``, if any."""
        return self._processes.get(name)

    def processes(self) -> list[ServerProcess]:
        """Every running process."""
        return list(self._processes.values())

    def registered_names(self) -> dict[str, str]:
        """Every server name this system knows (running or not) and its uid."""
        return dict(self._names)

    # -- servers --------------------------------------------------------------------------------

    async def start_server(self, config: ServerConfig) -> None:
        """Start a brand-new server (Ra's ``start_server_rpc``).

        Raises:
            SystemNotStarted: the system is not entered or already closed.
            InvalidUid: the uid has characters outside ``[A-Za-z0-9_=-]``.
            AlreadyStarted: a server with this name is running.
            NotNew: this name already has data on this node (use ``restart_server``).
        """
        self._check_running()
        if not _UID_RE.match(config.uid):
            raise errors.InvalidUid(f"invalid uid {config.uid!r}")
        name = config.server_id.name
        if config.server_id.node != self.node:
            raise ValueError(f"{config.server_id} does not belong to node {self.node}")
        if name in self._processes:
            raise errors.AlreadyStarted(f"{config.server_id} is already running", server_id=config.server_id)
        if name in self._names:
            raise errors.NotNew(f"{config.server_id} already has data here", server_id=config.server_id)
        server_dir = self.dir / config.uid
        self._names[name] = config.uid
        try:
            await self._launch(config, server_dir, write_config=True)
        except BaseException:
            if name not in self._processes:
                self._names.pop(name, None)
            raise

    async def restart_server(self, name: str, machine: Machine | None = None, **mutable: object) -> None:
        """Restart a stopped server from its data (Ra's ``restart_server_rpc``).

        Args:
            name: the server name on this node.
            machine: the machine, if the persisted one cannot be restored (unpicklable).
            mutable: new values for Ra's mutable config keys (``ServerConfig.MUTABLE``).

        Raises:
            NameNotRegistered: this node never started a server called ``name``.
            AlreadyStarted: it is running.
        """
        self._check_running()
        uid = self._names.get(name)
        server_id = ServerId(name, self.node)
        if uid is None:
            raise errors.NameNotRegistered(f"{server_id} is not registered", server_id=server_id)
        if name in self._processes:
            raise errors.AlreadyStarted(f"{server_id} is already running", server_id=server_id)
        server_dir = self.dir / uid
        raw = await self._in_thread(lambda: (server_dir / CONFIG_FILE).read_bytes())
        config = ServerConfig.from_bytes(raw, machine)
        unknown = set(mutable) - set(ServerConfig.MUTABLE)
        if unknown:
            raise ValueError(f"not mutable on restart: {sorted(unknown)}")
        if mutable:
            config = replace(config, **mutable)  # type: ignore[arg-type]
        await self._launch(config, server_dir)

    async def _in_thread(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _launch(self, config: ServerConfig, server_dir: Path, write_config: bool = False) -> None:
        assert self._storage is not None and self._tg is not None and self._interpreter is not None
        storage_system = self._storage

        def open_server() -> ServerStorage:
            if write_config:
                _write_config(config, server_dir)
            return storage_system.open_server(config.uid, server_dir)

        storage = await self._in_thread(open_server)
        meta = storage.meta
        assert storage.log is not None
        core_config = CoreConfig(
            server_id=config.server_id,
            cluster=config.initial_members,
            machine=config.machine,
            rng=random.Random(self._rng.getrandbits(64)),
            machine_args=config.machine_args,
            broadcast_time_ms=config.broadcast_time_ms,
            await_condition_timeout_ms=config.await_condition_timeout_ms,
            max_pipeline_count=config.max_pipeline_count,
            snapshot_interval=config.snapshot_interval,
            low_priority_flush_size=self.config.low_priority_commands_flush_size,
            snapshot_chunk_size=self.config.snapshot_chunk_size,
            snapshot_codec=self._snapshot_codec,
        )
        voted_for = ServerId(*meta.voted_for) if meta.voted_for is not None else None
        core = RaftCore(core_config, storage.log, (meta.current_term, voted_for, meta.last_applied))
        initial = core.start()
        process = ServerProcess(config.server_id, config.uid, config.cluster_name, core, self._interpreter)
        process.members = tuple(core.members)
        storage.bind(process.deliver_now)
        self._server_storage[process] = storage
        self._processes[config.server_id.name] = process
        entry = self.leaderboard.setdefault(config.cluster_name, LeaderboardEntry(None, process.members))
        entry.members = process.members
        process.task = self._tg.create_task(process.run(initial), name=f"ra-server-{config.server_id}")
        self.transport.server_started(process)
        self._tick_s = config.tick_timeout_ms / 1000.0

    async def stop_server(self, name: str) -> None:
        """Stop a running server; its data is kept (Ra's ``stop_server``; ``ok`` if not running)."""
        process = self._processes.get(name)
        if process is None or process.task is None:
            return
        process.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await process.task

    async def kill_server(self, name: str) -> None:
        """Stop a server abruptly: its task is cancelled wherever it is and its in-memory state is
        dropped; only what the log and meta already made durable survives a later restart."""
        await self.stop_server(name)

    async def force_delete_server(self, name: str) -> None:
        """Stop the server (if running) and delete its data and directory entry (Ra's
        ``force_delete_server``)."""
        await self.stop_server(name)
        uid = self._names.pop(name, None)
        if uid is None:
            return
        assert self._storage is not None
        storage = self._storage
        await self._in_thread(lambda: storage.forget_server(uid))
        await self._in_thread(lambda: shutil.rmtree(self.dir / uid, True))

    # -- ServerHooks (called by the effect interpreter) -------------------------------------------

    def log_of(self, process: ServerProcess) -> LogWriter:
        """The log of ``process``."""
        log = self._server_storage[process].log
        assert log is not None
        return log

    def meta_of(self, process: ServerProcess) -> MetaWriter:
        """The meta store of ``process`` (vote syncs run on the system's executor)."""
        return self._server_storage[process]

    def role_changed(self, process: ServerProcess, role: Role, leader: ServerId | None) -> None:
        """Keep the leaderboard and the set of ticked servers (leaders) current."""
        entry = self.leaderboard.setdefault(process.cluster_name, LeaderboardEntry(None, process.members))
        if role == Role.LEADER:
            entry.leader = process.server_id
            self._leaders.add(process)
            self._arm_tick()
        else:
            self._leaders.discard(process)
            if leader is not None:
                entry.leader = leader

    def members_changed(self, process: ServerProcess, members: tuple[ServerId, ...]) -> None:
        """Keep the leaderboard's member list current."""
        entry = self.leaderboard.setdefault(process.cluster_name, LeaderboardEntry(None, members))
        entry.members = members

    def process_stopped(self, process: ServerProcess, reason: object, delete_data: bool = False) -> None:
        """Forget a stopped process and fire the monitors on it; after ``delete_cluster`` (a ``Stop`` with
        ``delete_data``) also delete its data, as Ra's servers do when they apply the delete."""
        name = process.server_id.name
        if self._processes.get(name) is process:
            del self._processes[name]
        self._leaders.discard(process)
        storage = self._server_storage.pop(process, None)
        if storage is not None:
            storage.close()
        self.transport.server_down(process.server_id, reason)
        if delete_data and self._tg is not None and not self._closed:
            task = self._tg.create_task(self.force_delete_server(name), name=f"ra-delete-{process.server_id}")
            self._deletions.add(task)
            task.add_done_callback(self._deletions.discard)

    # -- the node-level tick -----------------------------------------------------------------------

    def _arm_tick(self) -> None:
        # One handle for the whole node, armed only while some server here leads (idle followers
        # cost nothing; Ra's leaders tick every tick_timeout, ra-internals §7.7).
        if self._tick_handle is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._tick_handle = loop.call_later(self._tick_s, self._tick)

    def _tick(self) -> None:
        self._tick_handle = None
        if not self._leaders:
            return
        now = self.now_ms()
        tick = Tick(system_time=now)
        for process in list(self._leaders):
            try:
                process.handle_now(tick)
            except Exception:
                # The core crashed handling the tick outside its task: stop that server, as if it
                # had crashed in its own loop, and keep ticking the others.
                _log.exception("%s: server crashed on tick", process.server_id)
                if process.task is not None:
                    process.task.cancel()
        self._arm_tick()

    def new_uid(self, cluster_name: str) -> str:
        """A fresh uid for a server of ``cluster_name`` (``new_uid`` with the system's seeded rng:
        reading the OS entropy pool per server is slow on some hosts)."""
        return new_uid(cluster_name, self._rng)

    def now_ms(self) -> int:
        """The wall clock in ms (Ra's ``erlang:system_time(millisecond)`` stamped into commands)."""
        return time.time_ns() // 1_000_000

    # -- status ------------------------------------------------------------------------------------

    def overview(self) -> dict[str, object]:
        """Ra's ``ra:overview/1``-like map: node, servers with role/term/indexes, WAL status."""
        servers: dict[str, object] = {}
        for name, process in sorted(self._processes.items()):
            core = process.core
            core_overview: dict[str, Any] = getattr(core, "overview", dict)()
            servers[name] = {
                "uid": process.uid,
                "cluster_name": process.cluster_name,
                "state": process.role.value,
                # The core's view: a follower learns its leader from AERs without a role change.
                "leader": core_overview.get("leader_id", process.leader_id),
                "members": process.members,
                "overview": core_overview,
            }
        return {
            "node": self.node,
            "system": self.name,
            "data_dir": str(self.dir),
            "servers": servers,
            "registered": dict(self._names),
            "leaderboard": {k: (v.leader, v.members) for k, v in self.leaderboard.items()},
            "timers": len(self._timers) if self._timers is not None else 0,
        }

    def _check_running(self) -> None:
        if not self.running:
            raise errors.SystemNotStarted(f"system {self.name} on {self.node} is not running")
