"""SimCluster and its command line: determinism, safety over many seeds, failure reporting."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from pyra_dist.core.effects import Effect, PersistLastApplied
from pyra_dist.core.events import Event
from pyra_dist.core.log_view import LogView
from pyra_dist.core.server import RaftCore
from pyra_dist.core.state import CoreConfig
from pyra_dist.testing.faults import Fault, FaultConfig
from pyra_dist.testing.linearizability import CheckOutcome
from pyra_dist.testing.sim import PROFILES, Meta, SimCluster, SimConfig, main, run_seeds

# Sized so that the CI run (below) stays within the directory's time budget on a loaded 2-core box:
# short histories (1.2 s of faults, then 2.6 s to settle, 2 clients), about 450 steps each.
CI_SEEDS = 2000
CI_PROFILE = PROFILES["ci"]


def test_same_seed_gives_the_same_history_byte_for_byte() -> None:
    runs = [SimCluster(7, SimConfig(servers=5), trace=True).run() for _ in range(2)]
    assert runs[0].trace == runs[1].trace
    assert runs[0].trace_hash == runs[1].trace_hash
    assert len(runs[0].trace) > 100
    other = SimCluster(8, SimConfig(servers=5), trace=True).run()
    assert other.trace_hash != runs[0].trace_hash


def test_untraced_run_hashes_like_a_traced_one_of_the_same_seed() -> None:
    a = SimCluster(3, trace=False).run()
    b = SimCluster(3, trace=False).run()
    assert (a.trace_hash, a.steps, a.operations) == (b.trace_hash, b.steps, b.operations)


def test_fault_free_history_completes_operations_and_is_linearizable() -> None:
    result = SimCluster(1, SimConfig(faults=None)).run()
    assert result.violations == ()
    assert result.linearizable is CheckOutcome.OK
    assert result.operations >= 20


def test_thousands_of_seeded_histories_pass_every_safety_check() -> None:
    summary = run_seeds(range(CI_SEEDS), config=CI_PROFILE)
    assert [(r.seed, r.violations) for r in summary.failures] == []
    assert summary.histories == CI_SEEDS
    assert summary.unknown == 0


def test_cli_prints_one_summary_line_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "3", "--seed", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert re.fullmatch(r"sim: histories=3 steps=\d+ violations=0 seconds=\d+\.\d seeds/s=\d+\.\d", out[0]), (
        out[0]
    )


@pytest.mark.slow
def test_soak_of_twenty_thousand_histories_passes() -> None:
    summary = run_seeds(range(100_000, 120_000))
    assert [(r.seed, r.violations) for r in summary.failures] == []


def test_members_joining_behind_a_snapshot_catch_up_without_violations() -> None:
    """Regression (finding F1): a joined member whose next index is below the leader's snapshot got
    an append with a gap (prev 0, entries after the snapshot) and crashed; it must get a snapshot."""
    joins = replace(
        PROFILES["ci"],
        faults=FaultConfig(min_interval_ms=150, max_interval_ms=400, weights=((Fault.JOIN, 1),)),
    )
    installs = 0
    for seed in range(12):
        result = SimCluster(seed, replace(joins, servers=3), trace=True).run()
        assert result.violations == ()
        installs += sum("InstallSnapshotRpc" in line for line in result.trace)
    assert installs > 0


F4_SEEDS = (107, 163, 735)  # --profile chaos, 7 servers: replays of unwritten overwrites after a crash


class CappedLastApplied(RaftCore):
    """The fix proposed for finding F4: never persist ``last_applied`` above the last written index."""

    def handle(self, event: Event) -> list[Effect]:
        written, _ = self.log.last_written()
        return [
            PersistLastApplied(min(e.index, written)) if isinstance(e, PersistLastApplied) else e
            for e in super().handle(event)
        ]


def _capped(cfg: CoreConfig, log: LogView, meta: Meta) -> RaftCore:
    return CappedLastApplied(cfg, log, meta)


def test_restart_never_reapplies_an_entry_that_was_overwritten_before_the_crash() -> None:
    """Regression for finding F4 (fixed in the core at 93d3881)."""
    summary = run_seeds(F4_SEEDS, config=PROFILES["chaos"])
    assert [(r.seed, r.violations) for r in summary.failures] == []


def test_capping_persisted_last_applied_at_the_written_index_removes_finding_f4() -> None:
    summary = run_seeds(F4_SEEDS, config=PROFILES["chaos"], core_factory=_capped)
    assert [(r.seed, r.violations) for r in summary.failures] == []
