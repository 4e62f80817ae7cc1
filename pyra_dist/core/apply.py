"""Applying committed entries to the machine and interpreting machine effects.

Owns: the apply loop (``last_applied`` up to ``commit_index``), what each command kind does when
applied (ra-internals §3.5), client replies/notifications of applied commands, machine version
upgrades (§6.6) and the role filter of machine effects (§6.4: leader-only unless noted). Must not:
apply anything above the commit index, or above the local log (entries are applied from the log).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from pyra_dist.core.effects import (
    CancelTimer,
    Effect,
    Notify,
    Reply,
    StartTimer,
    WrapReply,
    WriteSnapshot,
)
from pyra_dist.core.events import MachineTimer
from pyra_dist.core.machine import (
    RA_NO_REPLY,
    Append,
    ApplyMeta,
    ApplyResult,
    Aux,
    Checkpoint,
    Demonitor,
    GarbageCollection,
    LogRead,
    Machine,
    MachineEffectT,
    MachineVersionChange,
    ModCall,
    Monitor,
    ReleaseCursor,
    ReplyTo,
    SendMsg,
    Timer,
)
from pyra_dist.core.state import CoreBase
from pyra_dist.types import (
    AwaitConsensus,
    ClusterChange,
    ClusterDelete,
    Entry,
    Index,
    Noop,
    NotifyReply,
    Role,
    SnapshotMeta,
    UsrCommand,
)

_APPLY_BATCH = 256


class ApplyMixin(CoreBase):
    """Apply loop and machine-effect interpreter (mixed into ``RaftCore``)."""

    def apply_committed(self, effects: list[Effect]) -> None:
        """Apply every committed entry present in the local log, in index order.

        Replies go out only from the leader (Ra: the leader answers ``from``); notifications are
        batched per pid in apply order (``{applied, [{Corr, Reply}, ...]}``).
        """
        # Notifications are grouped per pid in apply order, one ra_event per pid per batch, as Ra's
        # leader does: a pipelining client receives {applied, [{Corr, Reply}, ...]} (§4.4).
        notify: list[tuple[object, list[tuple[object, object]]]] = []
        applied_before = self.last_applied
        # Entries are applied from the local log, including its unwritten tail: a committed entry is
        # durable on a majority already, so applying it before our own fsync is safe (Ra does this).
        target = min(self.commit_index, self.log.last_index)
        while self.last_applied < target and self._may_apply():
            start = self.last_applied + 1
            batch = self.log.fetch(start, min(target, start + _APPLY_BATCH - 1))
            if not batch or batch[0].index != start:
                break
            for entry in batch:
                self._apply_entry(entry, notify, effects)
                if self.apply_blocked or self.stopping is not None:  # _may_apply(), inlined
                    break
        if self.role == Role.LEADER and not self.replaying:
            for pid, corrs in notify:
                effects.append(Notify(pid=pid, leader=self.id, correlations=tuple(corrs)))
        if self.last_applied > applied_before and not self.replaying and self._has_aux():
            # Ra feeds ``eval`` to the aux handler after entries were applied (ra-internals §6.2).
            self.handle_aux_cast("eval", effects)
        self.after_apply(effects)

    def _has_aux(self) -> bool:
        return type(self.machine).handle_aux is not Machine.handle_aux

    def _may_apply(self) -> bool:
        return not self.apply_blocked and self.stopping is None

    def after_apply(self, effects: list[Effect]) -> None:
        """Hook for the leader (consistent queries, self-removal); no-op in other roles."""

    def _apply_entry(
        self, entry: Entry, notify: list[tuple[object, list[tuple[object, object]]]], effects: list[Effect]
    ) -> None:
        cmd = entry.command
        # Only the leader answers clients; followers apply silently. During recovery nothing is
        # emitted at all (ra-internals §7.6: effects of re-applied entries are discarded).
        leader = self.role == Role.LEADER and not self.replaying
        if isinstance(cmd, UsrCommand):
            # The hot path (every command, on every replica): _run_apply inlined, no list for an
            # apply without effects.
            meta = ApplyMeta(entry.index, entry.term, cmd.ts, self.effective_machine_version, cmd.from_)
            result: ApplyResult = self.machine.apply(meta, cmd.data, self.machine_state)
            if len(result) == 2:
                self.machine_state, reply = result
                mac_effects: Sequence[MachineEffectT] = ()
            else:
                self.machine_state, reply, mac_effects = result
            self.last_applied = entry.index
            if leader and reply != RA_NO_REPLY:
                mode = cmd.reply_mode
                if isinstance(mode, AwaitConsensus) and cmd.from_ is not None:
                    effects.append(Reply(to=cmd.from_, reply=WrapReply(reply=reply)))
                elif isinstance(mode, NotifyReply):
                    target = mode.pid
                    for pid, corrs in notify:
                        # Identity first: a pipelining client's commands share one pid object.
                        if pid is target or pid == target:
                            corrs.append((mode.correlation, reply))
                            break
                    else:
                        notify.append((mode.pid, [(mode.correlation, reply)]))
            if mac_effects and not self.replaying:
                self.run_machine_effects(list(mac_effects), effects)
        elif isinstance(cmd, Noop):
            # The noop of a new term carries the leader's machine version: applying it is where every
            # replica switches versions at the same index (§6.6).
            self.last_applied = entry.index
            self._maybe_upgrade_machine(entry, cmd.machine_version, effects)
            if entry.term == self.current_term and self.role == Role.LEADER:
                # The new leader's noop is applied: membership changes are allowed again (§3.4).
                self.cluster_change_permitted = self._latest_change_applied()
        elif isinstance(cmd, ClusterChange):
            self.last_applied = entry.index
            # Committed: this configuration becomes the base; older change records are history.
            self.cluster_changes = [(i, m) for (i, m) in self.cluster_changes if i > entry.index]
            self.base_members = cmd.members
            if self.role == Role.LEADER:
                self.cluster_change_permitted = self._latest_change_applied()
            if leader and isinstance(cmd.reply_mode, AwaitConsensus) and cmd.from_ is not None:
                effects.append(Reply(to=cmd.from_, reply=WrapReply(reply="ok")))
        elif isinstance(cmd, ClusterDelete):
            self.last_applied = entry.index
            if leader and cmd.from_ is not None:
                effects.append(Reply(to=cmd.from_, reply=WrapReply(reply="ok")))
            if not self.replaying:
                if self.role != Role.LEADER:
                    # Before the eol effects, as Ra 2.2.0's evaluate_commit_index_follower does.
                    self.delete_applied_as_follower(effects)
                self.run_machine_effects(list(self.machine.state_enter("eol", self.machine_state)), effects)
                self.stopping = "delete"
        else:
            assert_never(cmd)

    def delete_applied_as_follower(self, effects: list[Effect]) -> None:
        """Hook (follower.py): a non-leader applied ``'$ra_cluster'`` delete (ra-internals §3.5)."""

    def _latest_change_applied(self) -> bool:
        """True if no cluster change above ``last_applied`` is pending and our noop is applied."""
        return not any(i > self.last_applied for i, _ in self.cluster_changes) and self.noop_applied()

    def noop_applied(self) -> bool:
        """True once the current leader's noop is applied (overridden by the leader mixin)."""
        return True

    def _run_apply(self, meta: ApplyMeta, command: object) -> tuple[object, list[MachineEffectT]]:
        result: ApplyResult = self.machine.apply(meta, command, self.machine_state)
        if len(result) == 3:
            self.machine_state, reply, mac_effects = result
            return reply, list(mac_effects)
        self.machine_state, reply = result
        return reply, []

    def _maybe_upgrade_machine(self, entry: Entry, version: int, effects: list[Effect]) -> None:
        """ra-internals §3.5/§6.6: a noop with a higher machine version switches the machine module."""
        old = self.effective_machine_version
        if version <= old:
            return
        if version > self.config.machine.version():
            # We do not understand this version: stop applying until restarted with newer code.
            self.apply_blocked = True
            return
        self.machine = self.config.machine.which_module(version)
        self.effective_machine_version = version
        meta = ApplyMeta(
            index=entry.index, term=entry.term, system_time=0, machine_version=version, from_=None
        )
        _, mac_effects = self._run_apply(meta, MachineVersionChange(old=old, new=version))
        if not self.replaying:
            self.run_machine_effects(mac_effects, effects)

    # -- machine effects ---------------------------------------------------------------------------

    def run_machine_effects(self, mac_effects: list[MachineEffectT], effects: list[Effect]) -> None:
        """Interpret machine effects: leader-only ones are dropped on other roles (ra-internals §6.4)."""
        # Side effects (messages, monitors, timers, appends) happen once, on the leader; snapshots
        # (release_cursor), aux and gc are local housekeeping that every replica performs.
        leader = self.role == Role.LEADER
        for eff in mac_effects:
            match eff:
                case SendMsg() | ModCall() | Monitor() | Demonitor():
                    if leader:
                        self.pass_through(eff, effects)
                case GarbageCollection():
                    self.pass_through(eff, effects)
                case Append(command=command, reply_mode=mode):
                    if leader:
                        self.append_usr(UsrCommand(data=command, reply_mode=mode, ts=self.now_ms), effects)
                case ReleaseCursor(index=index, state=state):
                    self._release_cursor(index, state, effects)
                case Checkpoint():
                    # main-only (checkpoints); 2.2.0 has no such effect: nothing to do.
                    pass
                case Timer(name=name, ms=ms):
                    if leader:
                        key = MachineTimer(name=name)
                        timer: Effect = (
                            CancelTimer(key=key) if ms is None else StartTimer(key=key, after_ms=ms)
                        )
                        effects.append(timer)
                case LogRead(indexes=indexes, fun=fun, local=local):
                    if leader or local is not None:
                        data = [
                            e.command.data
                            for i in indexes
                            for e in self.log.fetch(i, i)
                            if isinstance(e.command, UsrCommand)
                        ]
                        self.run_machine_effects(list(fun(data)), effects)
                case Aux(command=command):
                    self.handle_aux_cast(command, effects)
                case ReplyTo(from_=from_, reply=reply):
                    if leader:
                        effects.append(Reply(to=from_, reply=WrapReply(reply=reply)))
                case _:
                    assert_never(eff)

    def append_usr(self, command: UsrCommand, effects: list[Effect]) -> Index:
        """Append a user command as leader (leader.py); returns its index."""
        raise NotImplementedError

    def handle_aux_cast(self, command: object, effects: list[Effect]) -> None:
        """Feed ``command`` to the machine's aux handler as a cast."""
        result = self.machine.handle_aux(self.role.value, "cast", command, self.aux_state, self.machine_state)
        self.aux_state = result[-1]

    def _release_cursor(self, index: Index, state: object, effects: list[Effect]) -> None:
        """2.2.0 (ra-internals §6.5): snapshot at ``index`` once it is ``snapshot_interval`` past the last."""
        # One snapshot at a time (Ra ignores release cursors while one is being written), and only of
        # applied state: the state handed over belongs to index, which must be committed.
        if self.snapshot_in_progress is not None or index > self.last_applied:
            return
        if index <= self.log.snapshot_index() + self.config.snapshot_interval:
            return
        term = self.log.term_at(index)
        if term is None:
            return
        # The committed configuration (an uncommitted change above may still be overwritten).
        meta = SnapshotMeta(
            index=index, term=term, cluster=self.base_members, machine_version=self.effective_machine_version
        )
        self.snapshot_in_progress = index
        effects.append(WriteSnapshot(meta=meta, state=state))


__all__ = ["ApplyMixin"]
