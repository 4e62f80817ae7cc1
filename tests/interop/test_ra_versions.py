"""pyra's Ra version policy against real peers (issue 6, point 7; docs/ra-versions.md).

A real OTP 25 node sends a running three-server pyra cluster what only Ra main (3.x) sends:
``info_rpc`` (three times: one log line), a pre-vote of protocol version 2, a ``{0, init}``
snapshot phase, the ``election_timeout`` transfer cast and an append_entries_rpc whose cluster
change carries ``voter_status``, all with a far higher term. Nothing is answered, no server's
term or leader moves, ``ra:members``/``ra:process_command`` answer exactly as before, and each
refusal is logged once with the sender and the outcome. The rpcs Ra main makes before sending a
snapshot get the answers a Ra 2.2.0 node gives (checked against Ra's own ``ra_machine`` on the
erl node). The log rate limit is unit-tested with an injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from erl_interop.node.node import Node
from erl_interop.term import Atom, Term, binary_to_term
from erl_interop.testing import ErlPeer, ra_ebin_dirs
from pyra_dist import ra
from pyra_dist.core.machine import Machine
from pyra_dist.erlang.kv_machine import PyraKv
from pyra_dist.erlang.machines import ErlangRegistry
from pyra_dist.erlang.records import UnsupportedRaVersion, rpc_from_term
from pyra_dist.erlang.services import attach_erlang_edge
from pyra_dist.erlang.snapshots import RaSnapshotCodec
from pyra_dist.erlang.versions import RefusalLogLimiter
from pyra_dist.server.system import System
from pyra_dist.types import ServerId

A = Atom
SPEAKS = "pyra speaks Ra 2.2.0 (protocol 1)"
DROPPED = "dropped a message Ra 2.2.0 would not handle: "


class PyraKvV3(PyraKv):
    """``pyra_vtest``: a machine whose code is at version 3 (its Erlang twin is compiled below)."""

    def version(self) -> int:
        return 3


def _vtest(config: Any) -> Machine:
    return PyraKvV3(config)


# A module with version() -> 3 compiled on the erl node from forms (no file, no erlc).
COMPILE_VTEST = (
    "{ok, pyra_vtest, VBin} = compile:forms([begin {ok, VT, _} = erl_scan:string(VS), "
    "{ok, VF} = erl_parse:parse_form(VT), VF end || VS <- "
    '["-module(pyra_vtest).", "-export([version/0]).", "version() -> 3."]]), '
    '{module, pyra_vtest} = code:load_binary(pyra_vtest, "pyra_vtest.erl", VBin).'
)

MACHINE_SPECS = (
    "Specs = [{machine, pyra_vtest, #{}}, {machine, pyra_kv, #{}}, {machine, no_such_module, #{}}, "
    "{machine, ra_machine_simple, #{simple_fun => fun erlang:'+'/2, initial_state => 0}}, "
    "{machine, ra_machine_simple, #{simple_fun => fun(X, Y) -> X + Y end, initial_state => 0}}]."
)

# What Ra main's sender does before a snapshot (ra_snapshot:context/2, ra_server_proc:send_snapshots).
MAIN_CONTEXT = (
    "try erpc:call(Py, ra_log_snapshot, context, []) "
    "catch error:{exception, undef, _} -> falls_back_to_2_2_0_transfer end."
)
MAIN_COUNTERS = (
    "try erpc:call(Py, ra_counters, counters, [{v1, Py}, [last_applied]]) "
    "catch error:{exception, undef, _} -> undef end."
)

MAIN_MESSAGES = [
    "Me = {s9, node()}.",
    "[{v1, Py} ! {'$gen_cast', {info_rpc, Me, 100, [machine_version]}} || _ <- [1, 2, 3]].",
    "R1 = make_ref(), {v2, Py} ! {'$gen_call', {self(), R1}, "
    "{pre_vote_rpc, 2, 0, 100, make_ref(), Me, 1000, 100}}.",
    "R2 = make_ref(), {v3, Py} ! {'$gen_call', {self(), R2}, {install_snapshot_rpc, 100, Me, "
    "#{index => 1000, term => 100, machine_version => 0, "
    "cluster => #{Me => #{voter_status => #{membership => voter}}}}, {0, init}, []}}.",
    "{Follower, Py} ! {'$gen_cast', election_timeout}.",
    "{v2, Py} ! {'$gen_cast', {append_entries_rpc, 100, Me, 0, 0, 0, [{1, 100, {'$ra_cluster_change', "
    "#{ts => 1}, #{Me => #{next_index => 1, match_index => 0, commit_index_sent => 0, query_index => 0, "
    "status => normal, voter_status => #{membership => voter}}}, noreply}}]}}.",
]


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if DROPPED in r.getMessage()]


@pytest.mark.erlang
async def test_ra_main_messages_leave_a_python_cluster_unchanged_and_are_logged_once_each(
    tmp_path: Path, cookie: str, node_name: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pyra_dist.erlang")
    with ErlPeer(node_name("erl"), cookie, long_names=True, code_path=ra_ebin_dirs()) as peer:
        erl_node = peer.node
        async with Node(f"{node_name('py')}@127.0.0.1", cookie=cookie) as node:
            py = str(node.name)
            registry = ErlangRegistry()
            registry.register_machine("pyra_kv", PyraKv)
            registry.register_machine("pyra_vtest", _vtest)
            system = await System.start("default", tmp_path / "py", py, snapshot_codec=RaSnapshotCodec())
            edge = attach_erlang_edge(system, node, registry)
            try:
                async with system:
                    edge.install()
                    ids = [ServerId(f"v{i}", py) for i in (1, 2, 3)]
                    started, _ = await ra.start_cluster(system, "versions", PyraKv(), ids, timeout=15)
                    assert sorted(started) == ids
                    _, leader = await ra.process_command(system, ids[0], (A("put"), A("a"), 1), timeout=15)

                    def views() -> dict[ServerId, tuple[int, ServerId | None]]:
                        cores = {i: system.process(i.name).core for i in ids}  # type: ignore[union-attr]
                        return {i: (c.current_term, c.leader_id) for i, c in cores.items()}

                    for _ in range(100):  # every follower has heard from the leader
                        if all(view[1] == leader for view in views().values()):
                            break
                        await asyncio.sleep(0.1)
                    before = views()
                    follower = next(i for i in ids if i != leader)

                    async def erl(expr: str) -> Term:
                        return binary_to_term((await asyncio.to_thread(peer.eval_result, expr)).etf)

                    await erl(f"Py = '{py}', Follower = {follower.name}.")
                    for expr in MAIN_MESSAGES:
                        await erl(expr)
                    unanswered = await erl(
                        "[receive {R, Reply} -> {answered, Reply} after 1500 -> no_reply end"
                        " || R <- [R1, R2]]."
                    )
                    assert unanswered == [A("no_reply"), A("no_reply")]
                    for _ in range(100):
                        if len(_refusals(caplog)) >= 5:
                            break
                        await asyncio.sleep(0.1)

                    assert views() == before
                    py_t = A(py)
                    assert await erl("rpc:call(Py, ra, members, [{v1, Py}]).") == (
                        A("ok"),
                        [(A(i.name), py_t) for i in ids],
                        (A(leader.name), py_t),
                    )
                    assert await erl("rpc:call(Py, ra, process_command, [{v2, Py}, {put, b, 2}]).") == (
                        A("ok"),
                        A("ok"),
                        (A(leader.name), py_t),
                    )
                    assert views() == before

                    me = f"{{s9,'{erl_node}'}}"
                    lines = _refusals(caplog)
                    assert lines[:4] == [
                        f"{{v1,{py}}}: {DROPPED}info_rpc for [machine_version] (Ra main machine version "
                        f"discovery) from {me}: {SPEAKS}; not answered (the leader keeps the effective "
                        "machine version)",
                        f"{{v2,{py}}}: {DROPPED}pre_vote_rpc protocol version 2 from {me}: {SPEAKS}; "
                        "vote refused (not answered)",
                        f"{{v3,{py}}}: {DROPPED}install_snapshot_rpc carrying chunk state {{0,init}} "
                        f"(Ra main live-index snapshot phase) from {me}: {SPEAKS}; "
                        "snapshot refused (chunk not answered)",
                        f"{follower}: {DROPPED}election_timeout cast (Ra main leadership "
                        f"transfer): {SPEAKS}; ignored (pyra takes transfers as try_become_leader)",
                    ]
                    # The append_entries_rpc: the refused entry and why (the transport may decode entries
                    # on its own fast path, so only the part records.py words is compared).
                    assert len(lines) == 5
                    assert lines[4].startswith(f"{{v2,{py}}}: {DROPPED}")
                    assert (
                        "entry 1 carrying a cluster map value with voter_status (Ra main membership)"
                        in lines[4]
                    )

                    # Ra main's pre-snapshot rpcs get a 2.2.0 node's answers.
                    assert await erl(MAIN_CONTEXT) == A("falls_back_to_2_2_0_transfer")
                    assert await erl(MAIN_COUNTERS) == A("undef")
                    await erl(COMPILE_VTEST)
                    await erl(MACHINE_SPECS)
                    on_ra = await erl("[ra_machine:version(S) || S <- Specs].")
                    on_pyra = await erl("[erpc:call(Py, ra_machine, version, [S]) || S <- Specs].")
                    assert (on_ra, on_pyra) == ([3, 0, 0, 0, 0], [3, 0, 0, 0, 0])
                    assert await erl("erpc:call(Py, ra_machine, version, [pyra_vtest]).") == 3  # main's form
            finally:
                # The aten emitter runs in the node's task group: stop it even when an assertion
                # failed, or leaving the node would wait for it forever.
                edge.close()


# ---------------------------------------------------------------------------------------------
# The refusal log's rate limit (versions.RefusalLogLimiter), with an injected clock
# ---------------------------------------------------------------------------------------------

PY = "py1@127.0.0.1"
RECEIVER = ServerId("s1", PY)


def _info_rpc_from(name: str) -> UnsupportedRaVersion:
    with pytest.raises(UnsupportedRaVersion) as refused:
        rpc_from_term((A("info_rpc"), (A(name), A("erl@127.0.0.1")), 1, [A("machine_version")]))
    return refused.value


def _record(*args: object) -> logging.LogRecord:
    return logging.LogRecord("pyra_dist.erlang", logging.WARNING, __file__, 1, "%s: dropped: %s", args, None)


def test_repeated_refusals_are_logged_once_per_interval_with_the_count_of_the_repeats() -> None:
    now = [0.0]
    limiter = RefusalLogLimiter(PY, clock=lambda: now[0], interval_s=60.0)
    refusal = _info_rpc_from("s9")
    passed = []
    for t in (0.0, 1.0, 2.0, 59.0, 61.0, 62.0):
        now[0] = t
        record = _record(RECEIVER, refusal)
        if limiter.filter(record):
            passed.append((t, record.getMessage()))
    assert passed == [
        (0.0, f"{RECEIVER}: dropped: {refusal}"),
        (61.0, f"{RECEIVER}: dropped: {refusal} (3 more refused since the last report)"),
    ]


def test_refusals_from_other_senders_other_nodes_and_other_records_are_not_limited() -> None:
    limiter = RefusalLogLimiter(PY, clock=lambda: 0.0)
    refusal = _info_rpc_from("s9")
    assert limiter.filter(_record(RECEIVER, refusal))
    assert limiter.filter(_record(RECEIVER, _info_rpc_from("s8")))
    assert limiter.filter(_record(ServerId("s1", "py2@127.0.0.1"), refusal))
    assert limiter.filter(_record(RECEIVER, "not a refusal"))
    assert limiter.filter(_record(RECEIVER, "not a refusal"))
    assert not limiter.filter(_record(RECEIVER, refusal))
