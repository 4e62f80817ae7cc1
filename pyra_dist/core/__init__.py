"""pyra_dist.core: Ra 2.2.0's Raft server as a pure, sans-IO state machine.

Owns: the Raft algorithm with Ra's semantics. Must not: import asyncio/socket/os/time/random/threading
or erl_interop (tests/test_layering.py); time and randomness are injected.

Public API (stable; see each module's docstring):

* ``pyra_dist.types``: ``ServerId``, ``Entry``, commands (``UsrCommand``, ``Noop``, ``ClusterChange``,
  ``ClusterDelete``), reply modes, ``SnapshotMeta``, ``Role``.
* ``core.messages``: Ra's server-to-server records (``AppendEntriesRpc`` ... ``InstallSnapshotResult``,
  ``TryBecomeLeader``), field order = Ra's tuple order.
* ``core.events``: the ``Event`` union (inputs), incl. ``PeerMessage(sender, msg, call)``,
  ``CommandRequest`` (and ``CommandBatch``, several at once), ``TimerFired``, ``Tick``,
  ``LogWritten(from_index, to_index, term)``.
* ``core.effects``: the ``Effect`` union (outputs) and the interpreter contract (ordering,
  synchronous ``PersistMeta``/``InstallSnapshot``, async ``AppendToLog`` -> ``LogWritten``).
* ``core.log_view``: ``LogView`` Protocol (read-only), ``InMemoryLogView``, ``SnapshotCodec``.
* ``core.machine``: the ``ra_machine`` behaviour (``Machine``), ``ApplyMeta``, machine effects.
* ``core.server.RaftCore``::

      core = RaftCore(CoreConfig(server_id=s1, cluster=(s1, s2, s3), machine=KvMachine(),
                                 rng=random.Random(seed)), log=InMemoryLogView(), meta=(0, None, 0))
      effects = core.start()            # once, after construction
      effects = core.handle(event)      # per input
      core.role, core.term, core.leader_id, core.commit_index, core.last_applied,
      core.cluster, core.machine_state, core.overview()

Failure detection follows Ra (ra-internals §8.2): followers do NOT time out on leader silence; the
driver must feed ``PeerDown`` (leader process monitor) and ``NodeDown``/``NodeUp`` (aten) events, and
``PeerCallFailed`` when a gen call to a peer (vote, pre-vote, snapshot chunk) ends without a result.
Timers are the core's gen_statem state timeouts (``StartTimer``/``CancelTimer``/``TimerFired``); a
0 ms ``TimerKind.FLUSH_COMMANDS`` timer stands for Ra's self-cast ``flush_commands``.
The full driver contract, deliberate differences from Ra 2.2.0 and findings: docs/internals/core.md.
"""

from __future__ import annotations

from pyra_dist.core.effects import Effect
from pyra_dist.core.events import Event
from pyra_dist.core.log_view import InMemoryLogView, LogView, PickleSnapshotCodec, SnapshotCodec
from pyra_dist.core.machine import ApplyMeta, Machine, MachineConfig
from pyra_dist.core.server import RaftCore
from pyra_dist.core.state import CoreConfig

__all__ = [
    "ApplyMeta",
    "CoreConfig",
    "Effect",
    "Event",
    "InMemoryLogView",
    "LogView",
    "Machine",
    "MachineConfig",
    "PickleSnapshotCodec",
    "RaftCore",
    "SnapshotCodec",
]
