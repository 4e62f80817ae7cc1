"""The simulator's register machine and the mapping from checker inputs to machine commands."""

from __future__ import annotations

from pyra_dist.core.machine import ApplyMeta, MachineConfig, ReleaseCursor
from pyra_dist.testing.models import Cas, KvOp, Read, Write
from pyra_dist.testing.workload import RecordingMachine, RegisterKvMachine, command_for


def meta(index: int) -> ApplyMeta:
    return ApplyMeta(index=index, term=1, system_time=0, machine_version=0)


def run(m: RegisterKvMachine, index: int, command: object, state: object) -> tuple[object, object, object]:
    result = m.apply(meta(index), command, state)
    assert len(result) == 3
    return result[0], result[1], result[2]


def test_register_machine_puts_gets_and_compares_without_mutating_old_states() -> None:
    m = RegisterKvMachine(release_every=0)
    s0 = m.init(MachineConfig(name="s1"))
    s1, r1, e1 = run(m, 1, ("put", "k", 5), s0)
    s2, r2, _ = run(m, 2, ("cas", "k", 5, 6), s1)
    s3, r3, _ = run(m, 3, ("cas", "k", 5, 7), s2)
    _, r4, _ = run(m, 4, ("get", "k"), s3)
    assert (s0, s1, s2, s3) == ({}, {"k": 5}, {"k": 6}, {"k": 6})
    assert (r1, r2, r3, r4, e1) == ("ok", True, False, 6, [])


def test_register_machine_releases_the_cursor_every_n_indexes() -> None:
    m = RegisterKvMachine(release_every=2)
    _, _, effects = run(m, 4, ("put", "k", 1), {})
    assert effects == [ReleaseCursor(4, {"k": 1})]
    assert m.apply(meta(5), ("get", "k"), {}) == ({}, None, [])


def test_recording_machine_reports_every_apply() -> None:
    seen: list[tuple[int, object, object]] = []
    m = RecordingMachine(RegisterKvMachine(), lambda mt, c, r: seen.append((mt.index, c, r)))
    m.apply(meta(1), ("put", "k", 1), {})
    assert seen == [(1, ("put", "k", 1), "ok")]


def test_checker_inputs_map_to_machine_commands() -> None:
    assert command_for(KvOp("k", Read())) == ("get", "k")
    assert command_for(KvOp("k", Write(3))) == ("put", "k", 3)
    assert command_for(KvOp("k", Cas(None, 4))) == ("cas", "k", None, 4)
