"""The linearizability checker against hand-made histories and a brute-force oracle."""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from pyra_dist.testing.history import UNKNOWN, HistoryRecorder, Operation, Unknown, to_porcupine_json
from pyra_dist.testing.linearizability import CheckOutcome, check_linearizability
from pyra_dist.testing.models import Cas, KvModel, KvOp, Read, RegisterInput, RegisterModel, Write

Op = Operation[RegisterInput, object]


def op(i: int, inp: RegisterInput, call: int, ret: int | None, out: object = None) -> Op:
    return Operation(op_id=i, client=i, input=inp, call=call, output=UNKNOWN if ret is None else out, ret=ret)


def test_empty_history_is_linearizable() -> None:
    result = check_linearizability(RegisterModel(), [])
    assert (result.outcome, result.steps, result.partitions) == (CheckOutcome.OK, 0, 1)


def test_sequential_write_then_read_of_written_value_is_linearizable() -> None:
    h = [op(0, Write(1), 1, 2), op(1, Read(), 3, 4, 1)]
    assert check_linearizability(RegisterModel(), h).outcome is CheckOutcome.OK


def test_read_after_completed_write_returning_old_value_is_illegal() -> None:
    h = [op(0, Write(1), 1, 2), op(1, Read(), 3, 4, None)]
    result = check_linearizability(RegisterModel(), h)
    assert result.outcome is CheckOutcome.ILLEGAL
    assert result.failing == h
    assert result.longest == [h[0]]


def test_read_concurrent_with_write_may_return_either_value() -> None:
    for seen in (None, 1):
        h = [op(0, Write(1), 1, 4), op(1, Read(), 2, 3, seen)]
        assert check_linearizability(RegisterModel(), h).outcome is CheckOutcome.OK


def test_read_of_a_value_never_written_is_illegal() -> None:
    h = [op(0, Write(1), 1, 4), op(1, Read(), 2, 3, 7)]
    assert check_linearizability(RegisterModel(), h).outcome is CheckOutcome.ILLEGAL


def test_two_reads_disagreeing_on_order_of_concurrent_writes_is_illegal() -> None:
    # Both writes are still running, but once a reader saw 2 after 1, nobody may see 1 again.
    h = [
        op(0, Write(1), 0, 20),
        op(1, Write(2), 0, 20),
        op(2, Read(), 11, 12, 1),
        op(3, Read(), 13, 14, 2),
        op(4, Read(), 15, 16, 1),
    ]
    assert check_linearizability(RegisterModel(), h).outcome is CheckOutcome.ILLEGAL
    assert check_linearizability(RegisterModel(), h[:4]).outcome is CheckOutcome.OK


def test_indeterminate_write_may_have_taken_effect() -> None:
    h = [op(0, Write(5), 1, None), op(1, Read(), 3, 4, 5)]
    assert check_linearizability(RegisterModel(), h).outcome is CheckOutcome.OK


def test_indeterminate_write_may_never_have_taken_effect() -> None:
    h = [op(0, Write(5), 1, None), op(1, Read(), 3, 4, None)]
    assert check_linearizability(RegisterModel(), h).outcome is CheckOutcome.OK


def test_indeterminate_write_cannot_take_effect_before_it_was_invoked() -> None:
    h = [op(0, Read(), 1, 2, 5), op(1, Write(5), 3, None)]
    assert check_linearizability(RegisterModel(), h).outcome is CheckOutcome.ILLEGAL


def test_indeterminate_write_cannot_be_seen_then_unseen() -> None:
    h = [op(0, Write(5), 1, None), op(1, Read(), 3, 4, 5), op(2, Read(), 5, 6, None)]
    assert check_linearizability(RegisterModel(), h).outcome is CheckOutcome.ILLEGAL


def test_cas_succeeds_only_when_expected_value_matches() -> None:
    good = [op(0, Write(1), 1, 2), op(1, Cas(1, 2), 3, 4, True), op(2, Read(), 5, 6, 2)]
    bad = [op(0, Write(1), 1, 2), op(1, Cas(0, 2), 3, 4, True)]
    failed = [op(0, Write(1), 1, 2), op(1, Cas(0, 2), 3, 4, False), op(2, Read(), 5, 6, 1)]
    assert check_linearizability(RegisterModel(), good).outcome is CheckOutcome.OK
    assert check_linearizability(RegisterModel(), bad).outcome is CheckOutcome.ILLEGAL
    assert check_linearizability(RegisterModel(), failed).outcome is CheckOutcome.OK


def test_kv_model_checks_each_key_alone_and_reports_only_the_failing_key() -> None:
    a = Operation
    h: list[Operation[KvOp, object]] = [
        a(op_id=0, client=0, input=KvOp("x", Write(1)), call=1, output=None, ret=2),
        a(op_id=1, client=1, input=KvOp("y", Write(2)), call=1, output=None, ret=2),
        a(op_id=2, client=0, input=KvOp("x", Read()), call=3, output=1, ret=4),
        a(op_id=3, client=1, input=KvOp("y", Read()), call=3, output=1, ret=4),
    ]
    result = check_linearizability(KvModel(), h)
    assert (result.outcome, result.partitions) == (CheckOutcome.ILLEGAL, 2)
    assert result.failing == [h[1], h[3]]
    assert check_linearizability(KvModel(), h[:3]).outcome is CheckOutcome.OK


def _wide_history(n: int) -> list[Op]:
    # n concurrent writes and a read that saw none of them complete: hard for the search.
    return [op(i, Write(i), 0, 100) for i in range(n)] + [op(n, Read(), 101, 102, -1)]


def test_step_budget_exhausted_gives_unknown_not_a_verdict() -> None:
    result = check_linearizability(RegisterModel(), _wide_history(8), max_steps=50)
    assert (result.outcome, result.steps) == (CheckOutcome.UNKNOWN, 51)


def test_deadline_exhausted_gives_unknown() -> None:
    ticks = itertools.count()

    def clock() -> float:
        return float(next(ticks))

    result = check_linearizability(
        RegisterModel(), _wide_history(12), max_steps=None, timeout=0.5, clock=clock
    )
    assert result.outcome is CheckOutcome.UNKNOWN
    assert result.steps == 1024


def test_explain_names_the_prefix_and_the_operation_that_cannot_follow() -> None:
    h = [op(0, Write(1), 1, 2), op(1, Read(), 3, 4, None)]
    text = check_linearizability(RegisterModel(), h).explain(RegisterModel())
    assert text == (
        "linearizability: ILLEGAL part with 2 operations\n"
        "  longest linearizable prefix:\n"
        "    c0 [1,2] Write(value=1) -> None\n"
        "  cannot be placed after it:\n"
        "    c1 [3,4] Read() -> None"
    )


def test_recorder_orders_events_by_a_logical_counter() -> None:
    rec = HistoryRecorder[RegisterInput, object]()
    w = rec.invoke(0, Write(1))
    r = rec.invoke(1, Read())
    rec.ok(w, None)
    lost = rec.invoke(2, Write(9))
    rec.fail(lost)
    rec.ok(r, 1)
    t = rec.invoke(0, Write(2))
    rec.info(t)
    pending = rec.invoke(1, Read())
    assert rec.is_open(pending)
    assert rec.history() == [
        op(0, Write(1), 1, 3, None),
        op(1, Read(), 2, 6, 1),
        Operation(op_id=3, client=0, input=Write(2), call=7, output=UNKNOWN, ret=None),
        Operation(op_id=4, client=1, input=Read(), call=8, output=UNKNOWN, ret=None),
    ]


def test_recorder_refuses_a_second_open_call_from_one_client() -> None:
    rec = HistoryRecorder[RegisterInput, object]()
    rec.invoke(0, Read())
    try:
        rec.invoke(0, Read())
    except ValueError as e:
        assert str(e) == "client 0 already has an open operation"
    else:
        raise AssertionError("expected ValueError")


def test_porcupine_export_puts_indeterminate_returns_after_everything() -> None:
    h = [op(0, Write(1), 1, 2), op(1, Read(), 3, None)]
    text = to_porcupine_json(h, encode=repr)
    assert text == (
        '[{"Call": 1, "ClientId": 0, "Input": "Write(value=1)", "Output": "None", "Return": 2}, '
        '{"Call": 3, "ClientId": 1, "Input": "Read()", "Output": null, "Return": 4}]'
    )


# --- Brute-force oracle -------------------------------------------------------------------------


def _oracle(history: Sequence[Op]) -> bool:
    """Try every subset of indeterminate ops and every real-time-respecting order."""
    model = RegisterModel()
    definite = [o for o in history if o.ret is not None]
    maybe = [o for o in history if o.ret is None]
    for k in range(len(maybe) + 1):
        for chosen in itertools.combinations(maybe, k):
            ops = definite + list(chosen)
            for order in itertools.permutations(ops):
                if not _respects_real_time(order):
                    continue
                state: Hashable = model.init()
                for o in order:
                    legal, state = model.step(state, o.input, o.output)
                    if not legal:
                        break
                else:
                    return True
    return False


def _respects_real_time(order: Sequence[Op]) -> bool:
    for i, later in enumerate(order):
        for earlier in order[i + 1 :]:
            # `earlier` is placed after `later`, which is wrong if it returned before `later` was called.
            if earlier.ret is not None and earlier.ret < later.call:
                return False
    return True


_values = st.sampled_from([None, 0, 1])


@st.composite
def _histories(draw: st.DrawFn) -> list[Op]:
    n = draw(st.integers(min_value=0, max_value=6))
    ops: list[Op] = []
    for i in range(n):
        kind = draw(st.sampled_from(["r", "w", "c"]))
        inp: RegisterInput
        out: object | Unknown
        if kind == "r":
            inp, out = Read(), draw(_values)
        elif kind == "w":
            inp, out = Write(draw(_values)), None
        else:
            inp, out = Cas(draw(_values), draw(_values)), draw(st.booleans())
        call = draw(st.integers(min_value=0, max_value=8))
        ret: int | None = None if draw(st.integers(0, 5)) == 0 else call + draw(st.integers(0, 4))
        ops.append(
            Operation(
                op_id=i, client=i, input=inp, call=call, output=UNKNOWN if ret is None else out, ret=ret
            )
        )
    return ops


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_histories())
def test_checker_agrees_with_brute_force_oracle(history: list[Op]) -> None:
    result = check_linearizability(RegisterModel(), history)
    assert result.outcome is (CheckOutcome.OK if _oracle(history) else CheckOutcome.ILLEGAL)
