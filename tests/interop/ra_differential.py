"""Differential harness: the answers real Ra 2.2.0 servers give to the ``ra`` client are the spec.

Owns: the client scenarios (Erlang expressions evaluated in a real shell node that calls servers
on three "server nodes"), the answers a real Ra 2.2.0 cluster gave to each of them (recorded from
live runs, normalised only for node names, pids, references and shell funs), the topology that
starts the real Ra side, and the comparison that tells where another implementation differs.

Must not: mock anything. Every answer checked here comes from a real ``erl``/``elixir`` node
running Ra 2.2.0's client code (or, for the bare scenarios, no Ra code at all) against real
servers. The pyra side plugs in by providing the three server node names (Python nodes).

Run ``python tests/interop/ra_differential.py`` to print the live answers of real Ra for every
scenario (use it to review or refresh the expectations below after a deliberate change).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from erl_interop.testing import ErlPeer, EvalError, ra_ebin_dirs
from pyra_dist.erlang.kv_machine import ERLANG_SOURCE as KV_ERLANG_SOURCE

ShellKind = Literal["ra_client", "bare", "elixir"]


@dataclass(frozen=True, slots=True)
class Step:
    """One client call and the answer real Ra 2.2.0 gave.

    ``expr`` is evaluated in the shell node; ``$N1``, ``$N2``, ``$N3`` stand for the server
    nodes' names (quoted atoms; Elixir: ``:"name"``). ``expect`` is the ``~p`` (Elixir:
    ``inspect``) text of the value, normalised by :func:`normalise`; an expression that
    raised is recorded as ``raise {Class,Reason}``.
    """

    expr: str
    expect: str


@dataclass(frozen=True, slots=True)
class Scenario:
    """An ordered list of steps run in one shell against one cluster (steps depend on order)."""

    name: str
    shell: ShellKind
    steps: tuple[Step, ...]


# A shell-side poll used by steps whose answer settles asynchronously (a follower applying a
# commit it learns from the next AER, a leadership change, a server stopping). Polls every
# 50 ms, at most N times, and returns the last answer either way so a miss shows in the diff.
UNTIL_FUN = (
    "Until = fun U(F, P, 0) -> F(); U(F, P, N) -> R = F(), case P(R) of true -> R; "
    "false -> timer:sleep(50), U(F, P, N - 1) end end."
)

QUICKSTART = Scenario(
    "quickstart",
    "ra_client",
    (
        Step(UNTIL_FUN, "#Fun<erl_eval>"),
        # Ra's README quick start: started ids come back reversed (ra_lib:partition_parallel),
        # the election is triggered on the first id, so $N1 leads term 1.
        Step(
            "ra:start_cluster(default, qs, {simple, fun erlang:'+'/2, 0}, "
            "[{qs, $N1}, {qs, $N2}, {qs, $N3}]).",
            "{ok,[{qs,$N3},{qs,$N2},{qs,$N1}],[]}",
        ),
        Step("ra:process_command({qs, $N1}, 5).", "{ok,5,{qs,$N1}}"),
        # A follower redirects; the client reports the leader that answered.
        Step("ra:process_command({qs, $N2}, 7).", "{ok,12,{qs,$N1}}"),
        Step("ra:members({qs, $N3}).", "{ok,[{qs,$N1},{qs,$N2},{qs,$N3}],{qs,$N1}}"),
        Step("ra:members({local, {qs, $N3}}).", "{ok,[{qs,$N1},{qs,$N2},{qs,$N3}],{qs,$N3}}"),
        Step("ra:initial_members({qs, $N2}).", "{ok,[{qs,$N1},{qs,$N2},{qs,$N3}],{qs,$N1}}"),
        Step("ra:local_query({qs, $N1}, fun(S) -> S end).", "{ok,{{3,1},12},{qs,$N1}}"),
        Step("ra:leader_query({qs, $N3}, fun(S) -> S end).", "{ok,{{3,1},12},{qs,$N1}}"),
        Step("ra:consistent_query({qs, $N2}, fun(S) -> S end).", "{ok,12,{qs,$N1}}"),
        # A follower's local query is answered from its own state with the leader it knows.
        Step(
            "Until(fun() -> ra:local_query({qs, $N2}, fun(S) -> S end) end, "
            "fun(R) -> element(2, element(2, R)) == 12 end, 200).",
            "{ok,{{3,1},12},{qs,$N1}}",
        ),
        Step("K = 3, ra:local_query({qs, $N1}, fun(S) -> S * K end).", "{ok,{{3,1},36},{qs,$N1}}"),
        Step("ra:local_query({qs, $N1}, {erlang, '-', [100]}).", "{ok,{{3,1},88},{qs,$N1}}"),
        Step("ra:leader_query({qs, $N2}, {erlang, '-', [100]}).", "{ok,{{3,1},88},{qs,$N1}}"),
        Step("ra:consistent_query({qs, $N3}, {erlang, '-', [100]}).", "{ok,88,{qs,$N1}}"),
        # Queries that raise: the class is dropped, the reason comes back as {error, R}.
        Step("ra:local_query({qs, $N1}, fun(_) -> exit(boom) end).", "{error,boom}"),
        Step("ra:local_query({qs, $N2}, fun(_) -> error(boom) end).", "{error,boom}"),
        Step("ra:local_query({qs, $N1}, fun(_) -> throw(boom) end).", "{error,boom}"),
        Step("ra:leader_query({qs, $N2}, fun(_) -> exit(boom) end).", "{error,boom}"),
        Step("ra:local_query({qs, $N1}, {erlang, element, [1]}).", "{error,badarg}"),
        # pipeline_command: the leader notifies applied, a follower that knows the leader rejects.
        Step(
            "ok = ra:pipeline_command({qs, $N1}, 1, 42, normal), receive E1 -> E1 after 5000 -> none end.",
            "{ra_event,{qs,$N1},{applied,[{42,13}]}}",
        ),
        Step(
            "ok = ra:pipeline_command({qs, $N2}, 1, 43, normal), receive E2 -> E2 after 5000 -> none end.",
            "{ra_event,{qs,$N2},{rejected,{not_leader,{qs,$N1},43}}}",
        ),
        # Without correlation a follower forwards the command to the leader (low priority).
        Step("ra:pipeline_command({qs, $N2}, 2).", "ok"),
        Step(
            "Until(fun() -> ra:leader_query({qs, $N1}, fun(S) -> S end) end, "
            "fun(R) -> element(2, element(2, R)) == 15 end, 200).",
            "{ok,{{5,1},15},{qs,$N1}}",
        ),
        Step(
            "ok = ra:pipeline_command({qs, $N1}, 1, 44), receive E4 -> E4 after 5000 -> none end.",
            "{ra_event,{qs,$N1},{applied,[{44,16}]}}",
        ),
        Step("ra:add_member({qs, $N1}, {qs, $N2}).", "{error,already_member}"),
        Step("ra:remove_member({qs, $N3}, {qs4, $N2}).", "{error,not_member}"),
        Step("ra:ping({qs, $N1}, 1000).", "{pong,leader}"),
        Step("ra:ping({qs, $N2}, 1000).", "{pong,follower}"),
        Step("ra:transfer_leadership({qs, $N2}, {qs, $N1}).", "already_leader"),
        Step("ra:transfer_leadership({qs, $N1}, {qs9, $N1}).", "{error,unknown_member}"),
        Step("ra:transfer_leadership({qs, $N3}, {qs, $N2}).", "ok"),
        Step(
            "Until(fun() -> ra:ping({qs, $N2}, 1000) end, fun(R) -> R == {pong, leader} end, 200).",
            "{pong,leader}",
        ),
        Step("ra:process_command({qs, $N1}, 4, 10000).", "{ok,20,{qs,$N2}}"),
        Step("ra:local_query({qs, $N2}, fun(S) -> S end).", "{ok,{{8,2},20},{qs,$N2}}"),
        # Voters only grant a pre-vote to a log at least as up to date as theirs: let $N3 catch
        # up first, or the election it starts may fail and leave $N2 leading.
        Step(
            "Until(fun() -> ra:local_query({qs, $N3}, fun(S) -> S end) end, "
            "fun(R) -> element(2, element(2, R)) == 20 end, 200).",
            "{ok,{{8,2},20},{qs,$N2}}",
        ),
        Step("ra:trigger_election({qs, $N3}).", "ok"),
        # The leader answers a pre-vote by re-sending AERs, which can reach the candidate before
        # the other follower's grant and end its pre-vote (the same race exists in Ra): retry.
        Step(
            "Until(fun() -> case ra:ping({qs, $N3}, 1000) of {pong, leader} = P -> P; P -> "
            "ra:trigger_election({qs, $N3}), timer:sleep(100), P end end, "
            "fun(R) -> R == {pong, leader} end, 100).",
            "{pong,leader}",
        ),
        Step("ra:process_command({qs, $N1}, 1, 10000).", "{ok,21,{qs,$N3}}"),
        Step("ra:members({qs, $N2}).", "{ok,[{qs,$N1},{qs,$N2},{qs,$N3}],{qs,$N3}}"),
        # A list of servers is tried in order; errors move on to the next one.
        Step("ra:process_command([{nosuch, $N1}, {qs, $N2}], 1).", "{ok,22,{qs,$N3}}"),
        Step("ra:delete_cluster([{qs, $N1}, {qs, $N2}, {qs, $N3}]).", "{ok,{qs,$N3}}"),
        Step(
            "Until(fun() -> [(catch ra:ping({qs, N}, 1000)) || N <- [$N1, $N2, $N3]] end, "
            "fun(R) -> R == [{error, noproc}, {error, noproc}, {error, noproc}] end, 200).",
            "[{error,noproc},{error,noproc},{error,noproc}]",
        ),
    ),
)

ERRORS = Scenario(
    "errors",
    "ra_client",
    (
        Step("ra:process_command({nosuch, $N1}, 1).", "{error,noproc}"),
        Step("ra:process_command({qs, 'nonode@127.0.0.1'}, 1).", "{error,nodedown}"),
        Step("ra:members({nosuch, $N1}).", "{error,noproc}"),
        Step("ra:members({local, {nosuch, $N1}}).", "{error,noproc}"),
        Step("ra:local_query({nosuch, $N1}, fun(S) -> S end).", "{error,noproc}"),
        Step("ra:leader_query({nosuch, $N1}, fun(S) -> S end).", "{error,noproc}"),
        Step("ra:consistent_query({nosuch, $N1}, fun(S) -> S end).", "{error,noproc}"),
        Step("ra:add_member({nosuch, $N1}, {nosuch, $N2}).", "{error,noproc}"),
        Step("ra:ping({nosuch, $N1}, 1000).", "{error,noproc}"),
        Step("ra:pipeline_command({nosuch, $N1}, 1).", "ok"),
        Step(
            "ra:process_command([{nosuch, $N1}, {nosuch, $N2}], 1).",
            "{error,{no_more_servers_to_try,[{error,noproc},{error,noproc}]}}",
        ),
        Step(
            "ra:trigger_election({nosuch, $N1}).",
            "raise {exit,{noproc,{gen_statem,call,[{nosuch,$N1},trigger_election,5000]}}}",
        ),
        Step("ra:stop_server(default, {nosuch, $N1}).", "ok"),
        Step("ra:restart_server(default, {nosuch, $N1}).", "{error,name_not_registered}"),
        Step(
            "ra:start_server(nosys, c1, {c1, $N1}, {simple, fun erlang:'+'/2, 0}, [{c1, $N1}]).",
            "{error,system_not_started}",
        ),
        # A machine module the server's node does not have.
        Step(
            "ra:start_server(default, c2, {c2, $N2}, {module, nosuch_mod, #{}}, [{c2, $N2}]).",
            "{error,{shutdown,{failed_to_start_child,c2,undef}}}",
        ),
        Step(
            "ra:start_cluster(default, c3, {module, nosuch_mod, #{}}, [{c3, $N2}, {c3, $N3}]).",
            "{error,cluster_not_formed}",
        ),
    ),
)

MEMBERSHIP = Scenario(
    "membership",
    "ra_client",
    (
        Step(UNTIL_FUN, "#Fun<erl_eval>"),
        Step("M = {simple, fun erlang:'+'/2, 0}.", "{simple,fun erlang:'+'/2,0}"),
        # Ra's README dynamic membership: one member, then add_member + start_server per joiner.
        Step("ra:start_cluster(default, mb, M, [{mb, $N1}]).", "{ok,[{mb,$N1}],[]}"),
        Step("ra:process_command({mb, $N1}, 10).", "{ok,10,{mb,$N1}}"),
        Step("ra:add_member({mb, $N1}, {mb, $N2}).", "{ok,{3,1},{mb,$N1}}"),
        # The joiner is not running, so the change cannot commit: one change at a time.
        Step("ra:add_member({mb, $N1}, {mb, $N3}).", "{error,cluster_change_not_permitted}"),
        Step("ra:remove_member({mb, $N1}, {mb, $N2}).", "{error,cluster_change_not_permitted}"),
        Step("ra:start_server(default, mb, {mb, $N2}, M, [{mb, $N1}]).", "ok"),
        Step("ra:process_command({mb, $N2}, 1, 10000).", "{ok,11,{mb,$N1}}"),
        Step("ra:add_member({mb, $N2}, {mb, $N3}).", "{ok,{5,1},{mb,$N1}}"),
        Step("ra:start_server(default, mb, {mb, $N3}, M, [{mb, $N1}, {mb, $N2}]).", "ok"),
        Step("ra:process_command({mb, $N3}, 1, 10000).", "{ok,12,{mb,$N1}}"),
        Step("ra:members({mb, $N3}).", "{ok,[{mb,$N1},{mb,$N2},{mb,$N3}],{mb,$N1}}"),
        Step(
            "Until(fun() -> ra:members({local, {mb, $N3}}) end, "
            "fun(R) -> length(element(2, R)) == 3 end, 200).",
            "{ok,[{mb,$N1},{mb,$N2},{mb,$N3}],{mb,$N3}}",
        ),
        Step(
            "Until(fun() -> ra:local_query({mb, $N3}, fun(S) -> S end) end, "
            "fun(R) -> element(2, element(2, R)) == 12 end, 200).",
            "{ok,{{6,1},12},{mb,$N1}}",
        ),
        Step(
            "ra:start_server(default, mb, {mb, $N3}, M, [{mb, $N1}]).",
            "{error,{shutdown,{failed_to_start_child,mb,{already_started,<pid>}}}}",
        ),
        Step("ra:leave_and_terminate(default, {mb, $N1}, {mb, $N3}).", "ok"),
        Step("ra:members({mb, $N2}).", "{ok,[{mb,$N1},{mb,$N2}],{mb,$N1}}"),
        Step("ra:ping({mb, $N3}, 1000).", "{error,noproc}"),
        Step("ra:remove_member({mb, $N1}, {mb, $N2}).", "{ok,{8,1},{mb,$N1}}"),
        Step("ra:members({mb, $N1}).", "{ok,[{mb,$N1}],{mb,$N1}}"),
        Step("ra:process_command({mb, $N1}, 1).", "{ok,13,{mb,$N1}}"),
        Step("ra:stop_server(default, {mb, $N2}).", "ok"),
        Step("ra:force_delete_server(default, {mb, $N2}).", "ok"),
        Step("ra:restart_server(default, {mb, $N2}).", "{error,name_not_registered}"),
        Step("ra:delete_cluster([{mb, $N1}]).", "{ok,{mb,$N1}}"),
    ),
)

MINORITY = Scenario(
    "minority",
    "ra_client",
    (
        Step(UNTIL_FUN, "#Fun<erl_eval>"),
        Step(
            "ra:start_cluster(default, mn, {simple, fun erlang:'+'/2, 0}, "
            "[{mn, $N1}, {mn, $N2}, {mn, $N3}]).",
            "{ok,[{mn,$N3},{mn,$N2},{mn,$N1}],[]}",
        ),
        Step("ra:process_command({mn, $N1}, 1).", "{ok,1,{mn,$N1}}"),
        Step("ra:stop_server(default, {mn, $N2}).", "ok"),
        Step("ra:stop_server(default, {mn, $N3}).", "ok"),
        Step("ra:ping({mn, $N2}, 1000).", "{error,noproc}"),
        # No quorum: the command is appended but cannot commit; the leader stays leader.
        Step("ra:process_command({mn, $N1}, 1, 1000).", "{timeout,{mn,$N1}}"),
        Step("ra:consistent_query({mn, $N1}, fun(S) -> S end, 1000).", "{timeout,{mn,$N1}}"),
        Step("ra:members({mn, $N1}).", "{ok,[{mn,$N1},{mn,$N2},{mn,$N3}],{mn,$N1}}"),
        Step("ra:local_query({mn, $N1}, fun(S) -> S end).", "{ok,{{2,1},1},{mn,$N1}}"),
        Step("ra:restart_server(default, {mn, $N2}).", "ok"),
        Step("ra:restart_server(default, {mn, $N2}).", "{error,{already_started,<pid>}}"),
        # Quorum is back: the timed-out command commits before this one.
        Step("ra:process_command({mn, $N1}, 1, 10000).", "{ok,3,{mn,$N1}}"),
        Step("ra:restart_server(default, {mn, $N3}).", "ok"),
        Step("ra:delete_cluster([{mn, $N1}, {mn, $N2}, {mn, $N3}]).", "{ok,{mn,$N1}}"),
    ),
)

# Shells without Ra's code call the same API through rpc on a server node (issue 5, 3c).
BARE_RPC = Scenario(
    "bare_rpc",
    "bare",
    (
        Step(
            "rpc:call($N1, ra, start_cluster, [default, rp, {simple, fun erlang:'+'/2, 0}, "
            "[{rp, $N1}, {rp, $N2}, {rp, $N3}]]).",
            "{ok,[{rp,$N3},{rp,$N2},{rp,$N1}],[]}",
        ),
        Step("rpc:call($N1, ra, process_command, [{rp, $N1}, 5]).", "{ok,5,{rp,$N1}}"),
        Step("rpc:call($N2, ra, process_command, [{rp, $N2}, 7]).", "{ok,12,{rp,$N1}}"),
        Step("rpc:call($N3, ra, members, [{rp, $N3}]).", "{ok,[{rp,$N1},{rp,$N2},{rp,$N3}],{rp,$N1}}"),
        Step(
            "rpc:call($N1, ra, leader_query, [{rp, $N1}, {erlang, '-', [100]}]).",
            "{ok,{{3,1},88},{rp,$N1}}",
        ),
        Step("rpc:call($N1, ra, process_command, [{nosuch, $N1}, 5]).", "{error,noproc}"),
        Step("rpc:call($N1, ra, delete_cluster, [[{rp, $N1}, {rp, $N2}, {rp, $N3}]]).", "{ok,{rp,$N1}}"),
    ),
)

# Elixir's iex calls the Erlang API with Elixir syntax (issue 5, 3e).
ELIXIR = Scenario(
    "elixir",
    "elixir",
    (
        Step(
            ":ra.start_cluster(:default, :ex, {:simple, &:erlang.+/2, 0}, "
            "[{:ex, $N1}, {:ex, $N2}, {:ex, $N3}])",
            "{:ok, [ex: $N3, ex: $N2, ex: $N1], []}",
        ),
        Step(":ra.process_command({:ex, $N1}, 5)", "{:ok, 5, {:ex, $N1}}"),
        Step(":ra.process_command({:ex, $N3}, 7)", "{:ok, 12, {:ex, $N1}}"),
        Step(":ra.local_query({:ex, $N1}, fn s -> s * 2 end)", "{:ok, {{3, 1}, 24}, {:ex, $N1}}"),
        Step(":ra.consistent_query({:ex, $N2}, fn s -> s end)", "{:ok, 12, {:ex, $N1}}"),
        Step(":ra.members({:ex, $N2})", "{:ok, [ex: $N1, ex: $N2, ex: $N3], {:ex, $N1}}"),
        Step(":ra.delete_cluster([{:ex, $N1}, {:ex, $N2}, {:ex, $N3}])", "{:ok, {:ex, $N1}}"),
    ),
)


def _erlang_string(text: str) -> str:
    """``text`` as an Erlang string literal on one line."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


# Compiles pyra_kv (the Erlang twin of pyra_dist.erlang.kv_machine.PyraKv) in the shell and loads
# it on every server node that runs Erlang code; Python nodes have the twin registered instead.
COMPILE_KV = (
    "KvForms = fun KF([], Acc, []) -> lists:reverse(Acc); KF([{dot, _} = D | T], Acc, Cur) -> "
    "{ok, F} = erl_parse:parse_form(lists:reverse([D | Cur])), KF(T, [F | Acc], []); "
    "KF([H | T], Acc, Cur) -> KF(T, Acc, [H | Cur]) end, "
    f"{{ok, KvToks, _}} = erl_scan:string({_erlang_string(KV_ERLANG_SOURCE)}), "
    "{ok, pyra_kv, KvBin} = compile:forms(KvForms(KvToks, [], [])), "
    '_ = [catch rpc:call(N, code, load_binary, [pyra_kv, "pyra_kv.erl", KvBin]) || N <- [$N1, $N2, $N3]], ok.'
)

# One machine in both languages, snapshots every 2 entries: a member joining late gets the state
# by install_snapshot_rpc (in the mixed topology: Erlang leader -> Python follower first, then,
# after a leadership transfer, Python leader -> a fresh Erlang member).
KV_SNAPSHOTS = Scenario(
    "kv_snapshots",
    "ra_client",
    (
        Step(UNTIL_FUN, "#Fun<erl_eval>"),
        Step(COMPILE_KV, "ok"),
        Step(
            'KvConf = fun(Id, Ms) -> U = ra:new_uid(<<"kv">>), #{id => Id, uid => U, cluster_name => kv, '
            "log_init_args => #{uid => U, snapshot_interval => 2}, initial_members => Ms, "
            "machine => {module, pyra_kv, #{}}} end.",
            "#Fun<erl_eval>",
        ),
        Step(
            "ra:start_cluster(default, [KvConf({kv, $N1}, [{kv, $N1}, {kv, $N2}]), "
            "KvConf({kv, $N2}, [{kv, $N1}, {kv, $N2}])]).",
            "{ok,[{kv,$N2},{kv,$N1}],[]}",
        ),
        Step(
            "[element(2, ra:process_command({kv, $N2}, {put, K, K * 10})) || K <- lists:seq(1, 8)].",
            "[ok,ok,ok,ok,ok,ok,ok,ok]",
        ),
        Step("ra:process_command({kv, $N1}, {get, 3}).", "{ok,30,{kv,$N1}}"),
        Step("ra:process_command({kv, $N2}, {frob, 3}).", "{ok,{error,unknown_command},{kv,$N1}}"),
        Step("ra:add_member({kv, $N1}, {kv, $N3}).", "{ok,{12,1},{kv,$N1}}"),
        Step("ra:start_server(default, KvConf({kv, $N3}, [{kv, $N1}, {kv, $N2}])).", "ok"),
        Step(
            "Until(fun() -> ra:local_query({kv, $N3}, fun(S) -> lists:sort(maps:to_list(S)) end) end, "
            "fun(R) -> element(1, R) == ok andalso element(1, element(2, R)) == {12, 1} end, 200).",
            "{ok,{{12,1},[{1,10},{2,20},{3,30},{4,40},{5,50},{6,60},{7,70},{8,80}]},{kv,$N1}}",
        ),
        Step("ra:transfer_leadership({kv, $N1}, {kv, $N2}).", "ok"),
        Step(
            "Until(fun() -> ra:ping({kv, $N2}, 1000) end, fun(R) -> R == {pong, leader} end, 200).",
            "{pong,leader}",
        ),
        # A new leader refuses membership changes until its noop is applied; a consistent query
        # is parked until then too (ra-internals §2.4, §3.4), without adding an entry.
        Step("ra:consistent_query({kv, $N2}, fun(S) -> maps:size(S) end).", "{ok,8,{kv,$N2}}"),
        Step("ra:leave_and_terminate(default, {kv, $N2}, {kv, $N1}).", "ok"),
        Step("ra:force_delete_server(default, {kv, $N1}).", "ok"),
        Step(
            "[element(2, ra:process_command({kv, $N3}, {put, K, K})) || K <- lists:seq(11, 14)].",
            "[ok,ok,ok,ok]",
        ),
        Step("ra:process_command({kv, $N3}, {delete, 1}).", "{ok,ok,{kv,$N2}}"),
        Step("ra:add_member({kv, $N2}, {kv, $N1}).", "{ok,{20,2},{kv,$N2}}"),
        Step("ra:start_server(default, KvConf({kv, $N1}, [{kv, $N2}, {kv, $N3}])).", "ok"),
        Step(
            "Until(fun() -> ra:local_query({kv, $N1}, fun(S) -> lists:sort(maps:to_list(S)) end) end, "
            "fun(R) -> element(1, R) == ok andalso element(1, element(2, R)) == {20, 2} end, 200).",
            "{ok,{{20,2},[{2,20},{3,30},{4,40},{5,50},{6,60},{7,70},{8,80},{11,11},{12,12},{13,13},{14,14}]},"
            "{kv,$N2}}",
        ),
        Step("ra:process_command({kv, $N1}, {get, 13}).", "{ok,13,{kv,$N2}}"),
        Step("ra:delete_cluster([{kv, $N1}, {kv, $N2}, {kv, $N3}]).", "{ok,{kv,$N2}}"),
    ),
)


# Destructive, so last: the leader's node is SIGKILLed (issue 5 tests: failover, nothing
# acknowledged lost; the new leader is one of the survivors, which one is not deterministic).
FAILOVER = Scenario(
    "failover",
    "ra_client",
    (
        Step(UNTIL_FUN, "#Fun<erl_eval>"),
        Step(
            "ra:start_cluster(default, fo, {simple, fun erlang:'+'/2, 0}, "
            "[{fo, $N1}, {fo, $N2}, {fo, $N3}]).",
            "{ok,[{fo,$N3},{fo,$N2},{fo,$N1}],[]}",
        ),
        Step("ra:process_command({fo, $N2}, 5).", "{ok,5,{fo,$N1}}"),
        Step("!kill $N1", "killed"),
        Step("ra:ping({fo, $N1}, 1000).", "{error,nodedown}"),
        Step("ra:process_command({fo, $N1}, 1).", "{error,nodedown}"),
        # A survivor notices (monitor DOWN noconnection) and wins an election.
        Step(
            "Until(fun() -> case ra:members([{fo, $N2}, {fo, $N3}], 1000) of "
            "{ok, Ms, L} -> {ok, Ms, lists:member(L, [{fo, $N2}, {fo, $N3}])}; E -> E end end, "
            "fun(R) -> element(1, R) == ok end, 200).",
            "{ok,[{fo,$N1},{fo,$N2},{fo,$N3}],true}",
        ),
        Step(
            "case ra:process_command({fo, $N3}, 1, 10000) of "
            "{ok, R, L} -> {ok, R, lists:member(L, [{fo, $N2}, {fo, $N3}])}; E -> E end.",
            "{ok,6,true}",
        ),
        Step(
            "element(2, ra:consistent_query([{fo, $N2}, {fo, $N3}], fun(S) -> S end)).",
            "6",
        ),
    ),
)

SCENARIOS: tuple[Scenario, ...] = (
    QUICKSTART,
    ERRORS,
    MEMBERSHIP,
    MINORITY,
    BARE_RPC,
    ELIXIR,
    KV_SNAPSHOTS,
    FAILOVER,
)


_PID = re.compile(r"<\d+\.\d+\.\d+>|#PID<\d+\.\d+\.\d+>")
_REF = re.compile(r"#Ref<[\d.]+>|#Reference<[\d.]+>")
_SHELL_FUN = re.compile(r"#Fun<erl_eval\.[\d.]+>|#Function<[\w./]+>")


def node_atom(node: str, shell: ShellKind) -> str:
    """How a node name is written as an atom in the shell's language."""
    return f':"{node}"' if shell == "elixir" else f"'{node}'"


def substitute(expr: str, nodes: Sequence[str], shell: ShellKind) -> str:
    """Replace ``$N1``.. with the server nodes' atoms."""
    for i in reversed(range(len(nodes))):
        expr = expr.replace(f"$N{i + 1}", node_atom(nodes[i], shell))
    return expr


def normalise(text: str, nodes: Sequence[str], shell: ShellKind) -> str:
    """Make an answer comparable across runs: node atoms -> ``$Nk``, pids, refs, shell funs.

    Nothing else is touched: indexes, terms, error atoms and tuple shapes must match exactly.
    """
    for i in reversed(range(len(nodes))):
        text = text.replace(node_atom(nodes[i], shell), f"$N{i + 1}")
    text = _PID.sub("<pid>", text)
    text = _REF.sub("#Ref<>", text)
    return _SHELL_FUN.sub("#Fun<erl_eval>", text)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one step answered in this run, next to what Ra 2.2.0 answered."""

    step: Step
    actual: str

    @property
    def ok(self) -> bool:
        return self.actual == self.step.expect


KILL = "!kill "
"""A step whose ``expr`` is ``!kill $Nk`` SIGKILLs server node k (the OS process) and answers ``killed``."""
RESTART = "!restart "
"""``!restart $Nk`` starts server node k again on the same data dir and answers ``restarted``."""


def run_scenario(
    shell: ErlPeer,
    nodes: Sequence[str],
    scenario: Scenario,
    timeout: float = 60.0,
    kill: Callable[[int], None] | None = None,
    restart: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Evaluate every step of ``scenario`` in ``shell`` against servers on ``nodes``.

    Args:
        shell: a started real peer of the scenario's shell kind.
        nodes: the three server nodes' full names (``$N1``..``$N3``).
        scenario: the steps to run, in order.
        timeout: per-step limit in seconds.
        kill: SIGKILLs server node ``k`` (1-based), for ``!kill $Nk`` steps.
        restart: starts server node ``k`` again (same name, same data dir), for ``!restart $Nk``.

    Returns:
        One outcome per step, in order (steps after a failure still run: later answers help
        to locate a divergence).
    """
    outcomes: list[Outcome] = []
    for step in scenario.steps:
        if step.expr.startswith(KILL):
            if kill is None:
                raise ValueError(f"scenario {scenario.name} kills nodes: pass kill=")
            kill(int(step.expr.removeprefix(KILL).strip().removeprefix("$N")))
            outcomes.append(Outcome(step, "killed"))
            continue
        if step.expr.startswith(RESTART):
            if restart is None:
                raise ValueError(f"scenario {scenario.name} restarts nodes: pass restart=")
            restart(int(step.expr.removeprefix(RESTART).strip().removeprefix("$N")))
            outcomes.append(Outcome(step, "restarted"))
            continue
        expr = substitute(step.expr, nodes, scenario.shell)
        try:
            text = shell.eval(expr, timeout=timeout)
        except EvalError as exc:
            text = f"raise {exc.text}"
        outcomes.append(Outcome(step, normalise(text, nodes, scenario.shell)))
    return outcomes


def report(scenario: Scenario, outcomes: Sequence[Outcome]) -> str:
    """A readable diff: every step, with ``!!`` and both answers where they differ."""
    lines = [f"scenario {scenario.name}:"]
    for o in outcomes:
        if o.ok:
            lines.append(f"   ok  {o.step.expr}\n        -> {o.actual}")
        else:
            lines.append(f"   !!  {o.step.expr}")
            lines.append(f"        ra 2.2.0: {o.step.expect}\n        this run: {o.actual}")
    return "\n".join(lines)


def assert_same_as_ra(scenario: Scenario, outcomes: Sequence[Outcome]) -> None:
    """Raise AssertionError with :func:`report` unless every answer equals Ra 2.2.0's."""
    if not all(o.ok for o in outcomes):
        raise AssertionError(report(scenario, outcomes))


@dataclass
class Shells:
    """The client-side peers by shell kind, all on the servers' cookie."""

    peers: dict[ShellKind, ErlPeer] = field(default_factory=dict)

    @property
    def ra_client(self) -> ErlPeer:
        return self.for_kind("ra_client")

    def for_kind(self, kind: ShellKind) -> ErlPeer:
        """The shell that runs scenarios of ``kind``.

        Raises:
            KeyError: that shell was not started.
        """
        return self.peers[kind]


def _start_all(peers: Sequence[ErlPeer]) -> None:
    # Boot in parallel: each erl takes about a second of mostly idle waiting.
    with concurrent.futures.ThreadPoolExecutor(len(peers)) as pool:
        for fut in [pool.submit(p.start) for p in peers]:
            fut.result()


ALL_SHELLS: tuple[ShellKind, ...] = ("ra_client", "bare", "elixir")


@contextlib.contextmanager
def client_shells(prefix: str, cookie: str, kinds: Sequence[ShellKind] = ALL_SHELLS) -> Iterator[Shells]:
    """Start client shells: ``ra_client`` (erl with Ra's code), ``bare`` (erl without Ra), ``elixir``.

    Args:
        prefix: unique node-name prefix.
        cookie: distribution cookie shared with the servers.
        kinds: which shells to start.
    """
    make: dict[ShellKind, ErlPeer] = {
        "ra_client": ErlPeer(f"{prefix}sh", cookie, long_names=True, code_path=ra_ebin_dirs()),
        "bare": ErlPeer(f"{prefix}bare", cookie, long_names=True),
        "elixir": ErlPeer(f"{prefix}ex", cookie, long_names=True, code_path=ra_ebin_dirs(), elixir=True),
    }
    shells = Shells({k: make[k] for k in kinds})
    try:
        _start_all(list(shells.peers.values()))
        yield shells
    finally:
        for p in shells.peers.values():
            p.stop()


@dataclass
class RaCluster:
    """Three real Ra 2.2.0 nodes, each with the default system started on its own data dir."""

    peers: list[ErlPeer] = field(default_factory=list)

    @property
    def nodes(self) -> list[str]:
        return [p.node for p in self.peers]

    def kill(self, k: int) -> None:
        """SIGKILL node ``k`` (1-based)."""
        self.peers[k - 1].kill()

    def restart(self, k: int) -> None:
        """Start node ``k`` again with the same name, arguments and data dir; Ra servers stay
        stopped until ``ra:restart_server`` (as after a real node restart)."""
        old = self.peers[k - 1]
        old.kill()
        peer = ErlPeer(
            old.name, old.cookie, long_names=True, code_path=old.code_path, extra_args=old.extra_args
        )
        self.peers[k - 1] = peer
        peer.start()
        _start_ra(peer)


def _start_ra(peer: ErlPeer) -> None:
    peer.eval("{ok, _} = application:ensure_all_started(ra).")
    peer.eval("{ok, _} = ra_system:start_default().")


@contextlib.contextmanager
def ra_cluster(
    prefix: str, cookie: str, data_dir: Path, size: int = 3, names: Sequence[str] = ()
) -> Iterator[RaCluster]:
    """Start ``size`` real Ra 2.2.0 nodes (long names) with ``ra_system:start_default()``.

    Args:
        prefix: unique node-name prefix.
        cookie: distribution cookie.
        data_dir: parent of the Ra data dirs (Ra appends the node name).
        size: number of nodes.
        names: node names (without host) instead of ``{prefix}ra1``...
    """
    names = list(names) or [f"{prefix}ra{i + 1}" for i in range(size)]
    cluster = RaCluster(
        [
            ErlPeer(
                names[i],
                cookie,
                long_names=True,
                code_path=ra_ebin_dirs(),
                extra_args=["-ra", "data_dir", f'"{data_dir}"'],
            )
            for i in range(len(names))
        ]
    )
    try:
        _start_all(cluster.peers)
        for p in cluster.peers:
            _start_ra(p)
        yield cluster
    finally:
        for p in cluster.peers:
            p.stop()


@dataclass
class PyraCluster:
    """Pyra nodes (``python -m pyra_dist.erlang``), each hosting the default system."""

    cookie: str
    data_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)

    def spawn(self, short: str) -> subprocess.Popen[bytes]:
        """Start the node ``short@127.0.0.1`` (not waiting for it)."""
        name = f"{short}@127.0.0.1"
        with open(self.data_dir / f"{short}.log", "ab") as log:
            return subprocess.Popen(
                [
                    *(sys.executable, "-m", "pyra_dist.erlang", "--name", name, "--cookie", self.cookie),
                    *("--data-dir", str(self.data_dir), "--stdin-eof"),
                    *("--log", os.environ.get("PYRA_LOG", "INFO")),
                    *("--machine", "pyra_kv=pyra_dist.erlang.kv_machine:PyraKv"),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )

    def wait_ready(self, k: int) -> None:
        """Wait for node ``k`` (1-based) to print ``ready``."""
        proc, name = self.procs[k - 1], self.nodes[k - 1]
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        if line != f"ready {name}":
            raise RuntimeError(f"pyra node {name} did not start: {line!r}")

    def kill(self, k: int) -> None:
        """SIGKILL node ``k`` (1-based), only that child, by pid."""
        self.procs[k - 1].kill()
        self.procs[k - 1].wait(10)

    def restart(self, k: int) -> None:
        """Start node ``k`` again on the same data dir (its servers wait for ``ra:restart_server``)."""
        self.kill(k)
        self.procs[k - 1] = self.spawn(self.nodes[k - 1].split("@")[0])
        self.wait_ready(k)


@contextlib.contextmanager
def pyra_cluster(
    prefix: str, cookie: str, data_dir: Path, size: int = 3, names: Sequence[str] = ()
) -> Iterator[PyraCluster]:
    """Start ``size`` pyra nodes (long names) as child processes and wait until they are ready.

    Each is stopped by closing its stdin (orderly) and killed by pid if it lingers.

    Args:
        prefix: unique node-name prefix.
        cookie: distribution cookie.
        data_dir: parent of the systems' data dirs.
        size: number of nodes.
        names: node names (without host) instead of ``{prefix}py1``...
    """
    cluster = PyraCluster(cookie, data_dir)
    try:
        for short in list(names) or [f"{prefix}py{i + 1}" for i in range(size)]:
            cluster.procs.append(cluster.spawn(short))
            cluster.nodes.append(f"{short}@127.0.0.1")
        for k in range(1, len(cluster.nodes) + 1):
            cluster.wait_ready(k)
        yield cluster
    finally:
        for proc in cluster.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in cluster.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@dataclass
class MixedCluster:
    """One real Ra 2.2.0 node (``$N1``) and two pyra nodes (``$N2``, ``$N3``) in one cluster."""

    ra: RaCluster
    pyra: PyraCluster

    @property
    def nodes(self) -> list[str]:
        return [*self.ra.nodes, *self.pyra.nodes]

    def kill(self, k: int) -> None:
        """SIGKILL node ``k`` (1 is the Ra node)."""
        if k == 1:
            self.ra.kill(1)
        else:
            self.pyra.kill(k - 1)

    def restart(self, k: int) -> None:
        """Start node ``k`` again on the same data dir."""
        if k == 1:
            self.ra.restart(1)
        else:
            self.pyra.restart(k - 1)


@contextlib.contextmanager
def mixed_cluster(prefix: str, cookie: str, data_dir: Path) -> Iterator[MixedCluster]:
    """Start one Ra node and two pyra nodes (issue 6: members of one Raft group across languages).

    Names ``{prefix}n1`` (Ra), ``{prefix}n2``, ``{prefix}n3`` (pyra) keep Ra's member order (ids
    sort by node name) the same as in the all-Ra and all-pyra topologies.
    """
    with (
        ra_cluster(prefix, cookie, data_dir, names=[f"{prefix}n1"]) as ra,
        pyra_cluster(prefix, cookie, data_dir, names=[f"{prefix}n2", f"{prefix}n3"]) as py,
    ):
        yield MixedCluster(ra, py)


# A machine that asks for a snapshot at every index, so that a joining member gets an
# install_snapshot_rpc (compiled on the Ra nodes by the capture, never stored as a .beam).
CAPTURE_MACHINE_SRC = """
-module(pyra_capture_machine).
-export([init/1, apply/3]).
init(_) -> 0.
apply(#{index := I}, C, S) -> S2 = S + C, {S2, S2, [{release_cursor, I, S2}]}.
"""

# Tracing collector: keeps what a Ra server process sends to other nodes (casts, calls, replies to
# aliases) and every gen call/cast/reply it receives, in order. ``set_on_spawn`` also covers the
# processes a Ra server spawns for vote calls and snapshot sending (ra-internals §1.3).
_CAPTURE_SETUP = (
    "CapCol = fun C(Acc) -> receive "
    "{trace, _, send, M, To} when is_tuple(To); is_reference(To); is_pid(To), node(To) =/= node() -> "
    "C([{send, To, M} | Acc]); "
    "{trace, _, 'receive', M} when element(1, M) == '$gen_call'; element(1, M) == '$gen_cast' -> "
    "C([{recv, M} | Acc]); "
    "{trace, _, 'receive', {[alias | _], _} = M} -> C([{recv, M} | Acc]); "
    "{dump, From} -> From ! {dump, lists:reverse(Acc)}, C(Acc); "
    "_ -> C(Acc) end end, "
    'CapConf = fun(Id, Members) -> U = ra:new_uid(<<"cap">>), #{id => Id, uid => U, cluster_name => cap, '
    "log_init_args => #{uid => U, snapshot_interval => 2}, initial_members => Members, "
    "machine => {module, pyra_capture_machine, #{}}} end, "
    "CapTrace = fun(N) -> rpc:call(N, erlang, trace, [rpc:call(N, erlang, whereis, [cap]), true, "
    "[send, 'receive', set_on_spawn, {tracer, rpc:call(N, erlang, whereis, [cap_col])}]]) end, "
    "[rpc:call(N, erlang, register, [cap_col, erlang:spawn(N, fun() -> CapCol([]) end)]) "
    "|| N <- [$N1, $N2, $N3]]."
)

# Every Ra 2.2.0 exchange once: election (pre-vote, vote), replication, commands through a
# follower (redirect), pipelined commands (notify, low/normal, no correlation), a consistent query
# (heartbeats), a member joining late (cluster change + install_snapshot), queries, a leadership
# transfer (try_become_leader), a removal and a cluster deletion.
_CAPTURE_RUN = (
    "[ok = ra:start_server(default, CapConf({cap, N}, [{cap, $N1}, {cap, $N2}])) || N <- [$N1, $N2]].",
    "[CapTrace(N) || N <- [$N1, $N2]].",
    "ok = ra:trigger_election({cap, $N1}), "
    "Until(fun() -> ra:members({cap, $N1}, 500) end, fun(R) -> element(1, R) == ok end, 200).",
    "[ra:process_command({cap, $N2}, I) || I <- lists:seq(1, 6)].",
    "ok = ra:pipeline_command({cap, $N1}, 10, 42, normal), ok = ra:pipeline_command({cap, $N1}, 11, 43), "
    "ok = ra:pipeline_command({cap, $N1}, 12), "
    "(fun Co(Seen) -> case lists:sort(Seen) of [42, 43] -> Seen; _ -> receive {ra_event, _, {applied, L}} "
    "-> Co(Seen ++ [Corr || {Corr, _} <- L]) after 5000 -> Seen end end end)([]).",
    "ra:consistent_query({cap, $N1}, fun(S) -> S end).",
    "ra:add_member({cap, $N1}, {cap, $N3}).",
    "ok = ra:start_server(default, CapConf({cap, $N3}, [{cap, $N1}, {cap, $N2}])), "
    "CapTrace($N3), ra:process_command({cap, $N1}, 1).",
    "ra:local_query({cap, $N2}, {erlang, '+', [0]}).",
    "ra:leader_query({cap, $N2}, {erlang, '+', [0]}).",
    "ra:members({cap, $N3}).",
    "ok = ra:transfer_leadership({cap, $N1}, {cap, $N2}), "
    "Until(fun() -> ra:ping({cap, $N2}, 1000) end, fun(R) -> R == {pong, leader} end, 200), "
    "ra:remove_member({cap, $N2}, {cap, $N3}).",
    "ra:delete_cluster([{cap, $N1}, {cap, $N2}]), "
    "Until(fun() -> [(catch ra:ping({cap, N}, 1000)) || N <- [$N1, $N2]] end, "
    "fun(R) -> R == [{error, noproc}, {error, noproc}] end, 200).",
)


def capture_ra_wire(shell: ErlPeer, nodes: Sequence[str], workdir: Path) -> bytes:
    """Run a Ra 2.2.0 cluster through every exchange and capture its servers' traffic.

    The shell must have Ra's client code; the three ``nodes`` run real Ra with the default system.
    Each server process is traced (sends to other nodes, received calls, casts and call replies).

    Args:
        shell: a started ``ra_client`` shell.
        nodes: the three Ra nodes.
        workdir: scratch directory for the capture machine's source.

    Returns:
        ``term_to_binary([{Node, [{send, To, Msg} | {recv, Msg}]}])`` as produced by OTP.
    """
    src = workdir / "pyra_capture_machine.erl"
    src.write_text(CAPTURE_MACHINE_SRC)
    shell.eval(UNTIL_FUN)
    all_nodes = substitute("[$N1, $N2, $N3]", nodes, "ra_client")
    shell.eval(
        f'{{ok, pyra_capture_machine, CapBin}} = compile:file("{src}", [binary]), '
        f"[{{module, pyra_capture_machine}} = rpc:call(N, code, load_binary, "
        f'[pyra_capture_machine, "{src}", CapBin]) || N <- {all_nodes}].'
    )
    shell.eval(substitute(_CAPTURE_SETUP, nodes, "ra_client"))
    for expr in _CAPTURE_RUN:
        shell.eval(substitute(expr, nodes, "ra_client"))
    dump = substitute(
        "[{N, begin {cap_col, N} ! {dump, self()}, receive {dump, L} -> L after 10000 -> timeout end end} "
        "|| N <- [$N1, $N2, $N3]].",
        nodes,
        "ra_client",
    )
    return shell.eval_result(dump).etf


def main(argv: Sequence[str]) -> int:
    """Print the live answers for every (or the named) scenario.

    ``--pyra`` runs them on three pyra nodes, ``--mixed`` on one Ra node ($N1) and two pyra nodes.
    """
    pyra = "--pyra" in argv
    wanted = {a for a in argv if not a.startswith("--")}
    cookie = "c" + secrets.token_hex(8)
    prefix = "d" + secrets.token_hex(3)
    failed = 0
    keep = os.environ.get("PYRA_KEEP_DIR")  # keep the nodes' logs and data for a post-mortem
    with contextlib.ExitStack() as stack:
        tmp = tempfile.mkdtemp(dir=keep) if keep else stack.enter_context(tempfile.TemporaryDirectory())
        servers: RaCluster | PyraCluster | MixedCluster
        if pyra:
            servers = stack.enter_context(pyra_cluster(prefix, cookie, Path(tmp)))
        elif "--mixed" in argv:
            servers = stack.enter_context(mixed_cluster(prefix, cookie, Path(tmp)))
        else:
            servers = stack.enter_context(ra_cluster(prefix, cookie, Path(tmp)))
        shells = stack.enter_context(client_shells(prefix, cookie))
        for scenario in SCENARIOS:
            if wanted and scenario.name not in wanted:
                continue
            outcomes = run_scenario(
                shells.for_kind(scenario.shell),
                servers.nodes,
                scenario,
                kill=servers.kill,
                restart=servers.restart,
            )
            failed += sum(not o.ok for o in outcomes)
            print(report(scenario, outcomes), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


@dataclass
class MixedTopology:
    """Real Ra 2.2.0 nodes (``$E1``, ``$E2``..) next to pyra nodes (``$P1``, ``$P2``..), no cluster formed.

    Tests form clusters with any mix of members, SIGKILL nodes of either kind and start them again
    on their data dirs (``RaCluster.restart`` / ``PyraCluster.restart``; servers then need
    ``ra:restart_server``).
    """

    ra: RaCluster
    pyra: PyraCluster

    def substitute(self, expr: str) -> str:
        """Replace ``$Ek`` / ``$Pk`` with the quoted node atoms (Erlang syntax)."""
        for tag, nodes in (("$E", self.ra.nodes), ("$P", self.pyra.nodes)):
            for i in reversed(range(len(nodes))):
                expr = expr.replace(f"{tag}{i + 1}", node_atom(nodes[i], "ra_client"))
        return expr

    def sync_ra_directory(self, shell: ErlPeer, k: int) -> None:
        """Flush Ra node ``k``'s server directory to disk (``names.dets`` auto-saves every 500 ms) so
        that ``ra:restart_server`` finds its servers after a SIGKILL (see docs/internals/erlang-edge.md)."""
        shell.eval(self.substitute(f"ok = rpc:call($E{k}, dets, sync, [ra_directory_reverse])."))


@contextlib.contextmanager
def mixed_topology(
    prefix: str, cookie: str, data_dir: Path, erlang: int = 2, python: int = 2
) -> Iterator[MixedTopology]:
    """Start ``erlang`` Ra 2.2.0 nodes ``{prefix}e1``.. and ``python`` pyra nodes ``{prefix}p1``...

    Args:
        prefix: unique node-name prefix.
        cookie: distribution cookie.
        data_dir: parent of every node's data dir.
        erlang: number of Ra nodes.
        python: number of pyra nodes.
    """
    with (
        ra_cluster(prefix, cookie, data_dir, names=[f"{prefix}e{i + 1}" for i in range(erlang)]) as ra,
        pyra_cluster(prefix, cookie, data_dir, names=[f"{prefix}p{i + 1}" for i in range(python)]) as py,
    ):
        yield MixedTopology(ra, py)
