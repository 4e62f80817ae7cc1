"""SafetyChecker: each property fires on exactly the observation that breaks it."""

from __future__ import annotations

from collections.abc import Callable

from pyra_dist.testing.invariants import SafetyChecker, Violation
from pyra_dist.types import Entry, Noop, ServerId, UsrCommand

S1, S2, S3 = ServerId("s1", "n1"), ServerId("s2", "n2"), ServerId("s3", "n3")


def terms(log: dict[int, int]) -> Callable[[int], int | None]:
    return log.get


def e(index: int, term: int, data: object = None) -> Entry:
    return Entry(index, term, Noop(0) if data is None else UsrCommand(data))


def test_second_vote_in_one_term_is_an_election_safety_violation() -> None:
    c = SafetyChecker()
    c.vote_granted(S1, 3, S2)
    c.vote_granted(S1, 3, S2)  # a duplicate of the same vote is fine
    c.vote_granted(S1, 4, S3)
    assert c.violations == []
    c.vote_granted(S1, 3, S3)
    assert c.violations == [Violation("election_safety", "s1@n1 voted for s2@n2 and s3@n3 in term 3")]


def test_two_leaders_in_one_term_is_an_election_safety_violation() -> None:
    c = SafetyChecker()
    c.leader_elected(S1, 2, terms({}), 0)
    c.leader_elected(S2, 3, terms({}), 0)
    c.leader_elected(S3, 2, terms({}), 0)
    assert c.violations == [Violation("election_safety", "two leaders in term 2: s1@n1 and s3@n3")]


def test_leader_without_a_committed_entry_violates_leader_completeness() -> None:
    c = SafetyChecker()
    c.applied(S1, 1, 1, "a", durable_majority=True)
    c.leader_elected(S2, 2, terms({1: 1}), 0)
    c.leader_elected(S3, 3, terms({}), 1)  # covered by its snapshot
    assert c.violations == []
    c.leader_elected(S1, 4, terms({1: 2}), 0)
    assert c.violations == [
        Violation("leader_completeness", "s1@n1 leads term 4 without committed entry 1/1 (has term 2)")
    ]


def test_same_index_and_term_with_another_command_or_prefix_violates_log_matching() -> None:
    c = SafetyChecker()
    c.entries_written(S1, (e(1, 1), e(2, 1, "x")), 0)
    c.entries_written(S2, (e(2, 1, "x"),), 1)
    assert c.violations == []
    c.entries_written(S3, (e(2, 1, "x"),), None)  # previous entry compacted: commands only
    assert c.violations == []
    c.entries_written(S3, (e(2, 1, "x"),), 0)
    assert [v.invariant for v in c.violations] == ["log_matching"]


def test_rewriting_an_entry_at_or_below_the_commit_index_is_a_violation() -> None:
    c = SafetyChecker()
    c.commit_index(S1, 3, None)
    c.log_rewritten(S1, 2, {2: 1, 3: 1}, {2: 1, 3: 1, 4: 2})  # same terms: fine
    c.log_rewritten(S1, 4, {4: 1}, {4: 2})  # above commit: fine
    assert c.violations == []
    c.log_rewritten(S1, 2, {2: 1, 3: 1, 4: 1}, {2: 1})
    assert c.violations == [
        Violation(
            "committed_entry_rewritten", "s1@n1 replaced entry 3/1 with None at or below its commit index 3"
        )
    ]


def test_commit_index_going_back_is_a_violation_until_a_restart() -> None:
    c = SafetyChecker()
    c.commit_index(S1, 5, None)
    c.restarted(S1)
    c.commit_index(S1, 2, None)
    assert c.violations == []
    c.commit_index(S1, 1, None)
    assert c.violations == [Violation("commit_monotonic", "s1@n1 commit index went back from 2 to 1")]


def test_leader_commit_marks_entries_committed_and_conflicting_commit_is_caught() -> None:
    c = SafetyChecker()
    c.commit_index(S1, 2, terms({1: 1, 2: 1}))
    assert c.committed == {1: 1, 2: 1}
    c.commit_index(S2, 2, terms({1: 1, 2: 2}))
    assert c.violations == [Violation("state_machine_safety", "s2@n2 commits 2/2, committed as 1")]


def test_different_commands_applied_at_one_index_violate_state_machine_safety() -> None:
    c = SafetyChecker()
    c.applied(S1, 1, 1, "a", durable_majority=True)
    c.applied(S2, 1, 1, "a", durable_majority=None)
    assert c.violations == []
    c.applied(S3, 1, 1, "b", durable_majority=None)
    assert c.violations == [Violation("state_machine_safety", "s3@n3 applied 1/1 'b'; another applied 1 'a'")]


def test_apply_without_a_durable_majority_and_out_of_order_applies_are_caught() -> None:
    c = SafetyChecker()
    c.applied(S1, 2, 1, "a", durable_majority=False)
    c.applied(S1, 2, 1, "a", durable_majority=None)
    assert c.violations == [
        Violation("commit_durability", "s1@n1 applied 2/1 not durable on a majority"),
        Violation("apply_order", "s1@n1 applied 2 after 2"),
    ]


def test_acknowledged_command_must_be_committed_and_stay_committed() -> None:
    c = SafetyChecker()
    c.applied(S1, 1, 1, "a", durable_majority=True)
    c.acknowledge(("c0", 1), 1, 1)
    c.check_acknowledged()
    assert c.violations == []
    c.acknowledge(("c0", 2), 2, 1)
    assert c.violations == [Violation("acknowledged_lost", "('c0', 2) acknowledged at 2/1 but not committed")]
