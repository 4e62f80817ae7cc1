"""Deliberately broken cores are caught by the simulator within a bounded number of seeds.

Each broken core is a `RaftCore` subclass that breaks one rule at the ``handle`` boundary; the
simulator must report a violation of the expected kind among the first ``SEEDS`` histories.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from pyra_dist.core.effects import AppendToLog, Effect, OkReply, PersistMeta, Reply, SendRpc
from pyra_dist.core.events import Event, PeerMessage, QueryRequest
from pyra_dist.core.log_view import LogView
from pyra_dist.core.messages import AppendEntriesReply, AppendEntriesRpc, RequestVoteRpc
from pyra_dist.core.server import RaftCore
from pyra_dist.core.state import CoreConfig
from pyra_dist.testing.faults import Fault, FaultConfig
from pyra_dist.testing.network import NetworkConfig
from pyra_dist.testing.sim import PROFILES, Meta, RunSummary, SimConfig, main, run_seeds
from pyra_dist.types import Role

# Upper bound on the seeds each broken core may survive; runs stop at the first failure, so a
# core that is caught early costs only a few histories.
SEEDS = 200


class CommitWithoutMajority(RaftCore):
    """A leader commits whatever it has written itself, without waiting for followers."""

    def handle(self, event: Event) -> list[Effect]:
        effects = super().handle(event)
        written, _ = self.log.last_written()
        if self.role == Role.LEADER and written > self.commit_index:
            self.commit_index = written
            self.apply_committed(effects)
        return effects


class VoteTwiceInOneTerm(RaftCore):
    """A server forgets whom it voted for when a second candidate of the same term asks."""

    def handle(self, event: Event) -> list[Effect]:
        if (
            isinstance(event, PeerMessage)
            and isinstance(event.msg, RequestVoteRpc)
            and event.msg.term == self.current_term
            and self.voted_for not in (None, event.msg.candidate_id)
        ):
            self.voted_for = None
        return super().handle(event)


class ApplyBeforeCommit(RaftCore):
    """A follower applies every entry it has, committed or not."""

    def handle(self, event: Event) -> list[Effect]:
        effects = super().handle(event)
        last = self.log.last_index
        if self.role == Role.FOLLOWER and last > self.commit_index:
            self.commit_index = last
            self.apply_committed(effects)
        return effects


class TruncateOnDuplicateAppend(RaftCore):
    """PySyncObj's bug: an old (duplicated or reordered) append cuts the log after its last entry."""

    def handle(self, event: Event) -> list[Effect]:
        effects = super().handle(event)
        if isinstance(event, PeerMessage) and isinstance(event.msg, AppendEntriesRpc) and event.msg.entries:
            end = event.msg.entries[-1].index
            if self.role == Role.FOLLOWER and self.log.last_index > end:
                effects.append(self.log.truncate(end))
        return effects


class VoteBeforePersisting(RaftCore):
    """The vote result leaves before the ``PersistMeta`` that records the vote (breaks R3)."""

    def handle(self, event: Event) -> list[Effect]:
        effects = super().handle(event)
        persist = [e for e in effects if isinstance(e, PersistMeta)]
        return [e for e in effects if not isinstance(e, PersistMeta)] + persist


class AckBeforeWritten(RaftCore):
    """A follower acknowledges appended entries at once instead of after ``LogWritten``."""

    def handle(self, event: Event) -> list[Effect]:
        effects = super().handle(event)
        if (
            isinstance(event, PeerMessage)
            and isinstance(event.msg, AppendEntriesRpc)
            and any(isinstance(e, AppendToLog) for e in effects)
        ):
            last_index, last_term = self.log.last_index_term()
            reply = AppendEntriesReply(self.current_term, True, last_index + 1, last_index, last_term)
            effects.append(SendRpc(to=event.msg.leader_id, rpc=reply))
        return effects


class ConsistentQueryWithoutHeartbeats(RaftCore):
    """A leader answers consistent queries from its own state, without confirming it still leads."""

    def handle(self, event: Event) -> list[Effect]:
        if isinstance(event, QueryRequest) and event.kind == "consistent" and self.role == Role.LEADER:
            return [
                Reply(to=event.from_, reply=OkReply(value=event.query(self.machine_state), leader=self.id))
            ]
        return super().handle(event)


def _first_failure(core: type[RaftCore], config: SimConfig | None = None) -> RunSummary:
    def factory(cfg: CoreConfig, log: LogView, meta: Meta) -> RaftCore:
        return core(cfg, log, meta)

    return run_seeds(range(SEEDS), config=config, core_factory=factory, stop_at_first_failure=True)


def _kinds(summary: RunSummary) -> set[str]:
    assert summary.failures, "the broken core was not caught"
    return {v.invariant for v in summary.failures[0].violations}


def test_commit_without_majority_is_caught() -> None:
    kinds = _kinds(_first_failure(CommitWithoutMajority))
    assert kinds & {"commit_durability", "state_machine_safety", "linearizability", "acknowledged_lost"}


# Two candidates in one term are rare with pre-vote; elections triggered every 10-60 ms make them common.
ELECTION_STORM = replace(
    PROFILES["ci"],
    faults=FaultConfig(min_interval_ms=10, max_interval_ms=60, weights=((Fault.TRIGGER_ELECTION, 1),)),
)


def test_two_votes_in_one_term_are_caught() -> None:
    kinds = _kinds(_first_failure(VoteTwiceInOneTerm, ELECTION_STORM))
    assert "election_safety" in kinds


def test_apply_before_commit_is_caught() -> None:
    kinds = _kinds(_first_failure(ApplyBeforeCommit))
    assert kinds & {"commit_durability", "state_machine_safety", "linearizability"}


# Stale appends need duplicated and reordered messages: 30 % duplicates, delays spread over 1-60 ms.
DUPLICATE_STORM = replace(
    PROFILES["ci"], network=NetworkConfig(drop=0.02, duplicate=0.3, min_delay_ms=1, max_delay_ms=60)
)


def test_truncating_below_the_commit_index_is_caught() -> None:
    kinds = _kinds(_first_failure(TruncateOnDuplicateAppend, DUPLICATE_STORM))
    assert kinds & {"committed_entry_rewritten", "commit_durability"}


def test_cli_reports_the_failing_seed_with_a_replay_command(capsys: pytest.CaptureFixture[str]) -> None:
    def factory(cfg: CoreConfig, log: LogView, meta: Meta) -> RaftCore:
        return CommitWithoutMajority(cfg, log, meta)

    assert main(["--seeds", "5", "--servers", "3"], core_factory=factory) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAILED seed=")
    seed = int(out[0].split("seed=")[1].split()[0])
    assert f"  replay: python -m pyra_dist.testing.sim --seed {seed} --seeds 1 --servers 3 --trace" in out
    assert re.fullmatch(r"sim: histories=5 steps=\d+ violations=[1-9]\d* seconds=.*", out[-1])


def test_vote_sent_before_it_is_durable_is_caught() -> None:
    assert "durable_before_reply" in _kinds(_first_failure(VoteBeforePersisting))


def test_append_acknowledged_before_it_is_written_is_caught() -> None:
    assert "durable_before_reply" in _kinds(_first_failure(AckBeforeWritten))


# A deposed leader keeps serving reads only while it is cut off from the others and clients still
# reach it: isolate leaders often, read only through consistent queries, one key, four clients.
LEADER_ISOLATION = replace(
    PROFILES["ci"],
    duration_ms=3000,
    clients=4,
    keys=1,
    consistent_reads=1.0,
    faults=FaultConfig(
        min_interval_ms=300, max_interval_ms=1200, weights=((Fault.ISOLATE_LEADER, 3), (Fault.HEAL, 1))
    ),
)


def test_stale_consistent_query_is_caught_by_the_linearizability_check() -> None:
    kinds = _kinds(_first_failure(ConsistentQueryWithoutHeartbeats, LEADER_ISOLATION))
    assert kinds == {"linearizability"}


def test_correct_core_passes_the_leader_isolation_profile() -> None:
    summary = run_seeds(range(20), config=LEADER_ISOLATION)
    assert summary.failures == []
