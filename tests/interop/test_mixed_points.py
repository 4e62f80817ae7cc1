"""Mixed clusters point by point (issue 6: transfer, failover, catch-up, failure detection, deletion).

Two real Ra 2.2.0 nodes (``$E1``, ``$E2``) and two ``python -m pyra_dist.erlang`` nodes (``$P1``,
``$P2``) run side by side; every test forms its own cluster from members on both kinds of node and
drives it with Ra 2.2.0's client from a real ``erl`` shell, so every answer below is what the ``ra``
module returns. Nodes are SIGKILLed (or SIGSTOPped) by pid and started again on their data dirs.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ra_differential import UNTIL_FUN, MixedTopology, client_shells, mixed_topology

from erl_interop.testing import ErlPeer

pytestmark = pytest.mark.erlang

SIMPLE = "{simple, fun erlang:'+'/2, 0}"
STATE = "{erlang, '+', [0]}"  # an MFA query: runs on either kind of node, apply('+', [0, S])

# LeaderAmong(Ids): poll ra:members(Ids) until one of Ids leads; {ok, Members, true}.
LEADER_AMONG = (
    "LeaderAmong = fun(Ids) -> Until(fun() -> case ra:members(Ids, 1000) of "
    "{ok, Ms, L} -> {ok, Ms, lists:member(L, Ids)}; Err -> Err end end, "
    "fun(R) -> element(1, R) == ok andalso element(3, R) end, 400) end."
)
# CommandVia(Ids, C): process_command through a list of servers; {ok, Reply, LeaderIsOneOfIds}.
COMMAND_VIA = (
    "CommandVia = fun(Ids, C) -> case ra:process_command(Ids, C, 10000) of "
    "{ok, R, L} -> {ok, R, lists:member(L, Ids)}; Err -> Err end end."
)
# FollowerView(Name, Nodes, PyNode): per Erlang member, its current term and leader and whether its
# aten_sink has heartbeat data for PyNode below aten's 0.99 "down" threshold.
FOLLOWER_VIEW = (
    "FollowerView = fun(Name, Nodes, PyNode) -> [begin "
    "{ok, S, _} = ra_server_proc:local_state_query({Name, N}, all, 5000), "
    "P = maps:get(PyNode, rpc:call(N, aten_sink, get_failure_probabilities, []), missing), "
    "{maps:get(current_term, S), maps:get(leader_id, S), is_float(P) andalso P < 0.99} end "
    "|| N <- Nodes] end."
)


@dataclass
class Mixed:
    """The topology plus a Ra client shell on the same cookie."""

    nodes: MixedTopology
    shell: ErlPeer

    def eval(self, expr: str, timeout: float = 60.0) -> str:
        """Evaluate ``expr`` (``$E1``.. and ``$P1``.. substituted) in the shell; the ``~p`` text."""
        return self.shell.eval(self.nodes.substitute(expr), timeout=timeout)

    def start_cluster(self, name: str, *nodes: str) -> str:
        """``ra:start_cluster`` of the ``simple`` '+' machine with a ``name`` member on each of ``nodes``."""
        ids = ", ".join(f"{{{name}, {n}}}" for n in nodes)
        return self.eval(f"ra:start_cluster(default, {name}, {SIMPLE}, [{ids}]).")

    def restart_erlang(self, k: int, cluster: str) -> None:
        """Start Ra node ``k`` again on its data dir and restart the server of ``cluster`` on it."""
        self.nodes.ra.restart(k)
        assert self.eval(f"ra:restart_server(default, {{{cluster}, $E{k}}}).") == "ok"

    def restart_python(self, k: int, cluster: str) -> None:
        """Start pyra node ``k`` again on its data dir and restart the server of ``cluster`` on it."""
        self.nodes.pyra.restart(k)
        assert self.eval(f"ra:restart_server(default, {{{cluster}, $P{k}}}).") == "ok"

    def caught_up(self, member: str, leader: str) -> tuple[str, str]:
        """Poll ``member``'s local state until it equals the leader's; both ``{{Index, Term}, S}`` texts."""
        want = self.eval(f"element(2, ra:local_query({leader}, {STATE})).")
        got = self.eval(
            f"Until(fun() -> ra:local_query({member}, {STATE}) end, "
            f"fun(R) -> element(1, R) == ok andalso element(2, R) == {want} end, 400), "
            f"element(2, ra:local_query({member}, {STATE}))."
        )
        return got, want


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mixed]:
    cookie = "c" + secrets.token_hex(8)
    prefix = "mp" + secrets.token_hex(3)
    data_dir: Path = tmp_path_factory.mktemp("mixed-points")
    with (
        mixed_topology(prefix, cookie, data_dir) as nodes,
        client_shells(prefix, cookie, kinds=("ra_client",)) as shells,
    ):
        m = Mixed(nodes, shells.ra_client)
        m.eval(UNTIL_FUN)
        # The shell keeps its bindings between expressions: helpers are funs defined here, once, so
        # that their variables are fresh in every call.
        m.eval(LEADER_AMONG)
        m.eval(COMMAND_VIA)
        m.eval(FOLLOWER_VIEW)
        yield m


def test_leadership_moves_from_an_erlang_leader_to_a_python_member_and_back(mixed: Mixed) -> None:
    assert mixed.start_cluster("tl", "$E1", "$P1", "$P2") == (
        mixed.nodes.substitute("{ok,[{tl,$P2},{tl,$P1},{tl,$E1}],[]}")
    )
    assert mixed.eval("ra:process_command({tl, $P1}, 5).") == mixed.nodes.substitute("{ok,5,{tl,$E1}}")
    # Erlang -> Python: the Erlang leader casts try_become_leader to the Python member.
    assert mixed.eval("ra:transfer_leadership({tl, $E1}, {tl, $P1}).") == "ok"
    assert mixed.eval(
        "Until(fun() -> ra:members({tl, $E1}) end, fun(R) -> element(3, R) == {tl, $P1} end, 400)."
    ) == mixed.nodes.substitute("{ok,[{tl,$E1},{tl,$P1},{tl,$P2}],{tl,$P1}}")
    assert mixed.eval("ra:process_command({tl, $E1}, 1, 10000).") == mixed.nodes.substitute("{ok,6,{tl,$P1}}")
    # Python -> Erlang.
    assert mixed.eval("ra:transfer_leadership({tl, $P1}, {tl, $E1}).") == "ok"
    assert mixed.eval(
        "Until(fun() -> ra:members({tl, $P2}) end, fun(R) -> element(3, R) == {tl, $E1} end, 400)."
    ) == mixed.nodes.substitute("{ok,[{tl,$E1},{tl,$P1},{tl,$P2}],{tl,$E1}}")
    assert mixed.eval("ra:process_command({tl, $P2}, 1, 10000).") == mixed.nodes.substitute("{ok,7,{tl,$E1}}")
    assert mixed.eval("ra:delete_cluster([{tl, $E1}, {tl, $P1}, {tl, $P2}]).") == (
        mixed.nodes.substitute("{ok,{tl,$E1}}")
    )


def test_delete_cluster_with_an_erlang_leader_stops_every_member_on_both_sides(mixed: Mixed) -> None:
    assert mixed.start_cluster("dc", "$E1", "$P1", "$P2") == (
        mixed.nodes.substitute("{ok,[{dc,$P2},{dc,$P1},{dc,$E1}],[]}")
    )
    assert mixed.eval("[element(2, ra:process_command({dc, $P2}, I)) || I <- [1, 2, 3]].") == "[1,3,6]"
    assert mixed.eval("ra:delete_cluster([{dc, $P1}, {dc, $E1}, {dc, $P2}]).") == (
        mixed.nodes.substitute("{ok,{dc,$E1}}")
    )
    # The Erlang leader terminates only once both Python followers acknowledged the delete's index.
    assert (
        mixed.eval(
            "Until(fun() -> [(catch ra:ping({dc, N}, 1000)) || N <- [$E1, $P1, $P2]] end, "
            "fun(R) -> R == [{error, noproc}, {error, noproc}, {error, noproc}] end, 400)."
        )
        == "[{error,noproc},{error,noproc},{error,noproc}]"
    )
    # Their data and directory entries are gone on both sides.
    assert mixed.eval("[ra:restart_server(default, {dc, N}) || N <- [$E1, $P1, $P2]].") == (
        "[{error,name_not_registered},{error,name_not_registered},{error,name_not_registered}]"
    )


def test_sigkill_of_a_python_leaders_node_elects_an_erlang_member_and_the_node_catches_up(
    mixed: Mixed,
) -> None:
    # The election is triggered on the first id: the Python member leads.
    assert mixed.start_cluster("kp", "$P1", "$E1", "$E2") == (
        mixed.nodes.substitute("{ok,[{kp,$E2},{kp,$E1},{kp,$P1}],[]}")
    )
    assert mixed.eval("ra:process_command({kp, $E1}, 5).") == mixed.nodes.substitute("{ok,5,{kp,$P1}}")
    mixed.nodes.pyra.kill(1)
    started = time.monotonic()
    # The Erlang followers' monitors on the leader fire (noconnection): one of them wins.
    assert mixed.eval("LeaderAmong([{kp, $E1}, {kp, $E2}]).") == mixed.nodes.substitute(
        "{ok,[{kp,$E1},{kp,$E2},{kp,$P1}],true}"
    )
    print(f"python leader killed -> erlang leader in {time.monotonic() - started:.2f} s")
    assert mixed.eval("CommandVia([{kp, $E1}, {kp, $E2}], 1).") == "{ok,6,true}"
    mixed.restart_python(1, "kp")
    leader = mixed.eval("element(3, ra:members([{kp, $E1}, {kp, $E2}])).")
    got, want = mixed.caught_up("{kp, $P1}", leader)
    assert (got, want.endswith(",6}")) == (want, True)
    assert mixed.eval("ra:delete_cluster([{kp, $E1}, {kp, $E2}, {kp, $P1}]).") == f"{{ok,{leader}}}"


def test_sigkill_of_an_erlang_leaders_node_elects_a_python_member_and_the_node_catches_up(
    mixed: Mixed,
) -> None:
    assert mixed.start_cluster("ke", "$E1", "$P1", "$P2") == (
        mixed.nodes.substitute("{ok,[{ke,$P2},{ke,$P1},{ke,$E1}],[]}")
    )
    assert mixed.eval("ra:process_command({ke, $P1}, 5).") == mixed.nodes.substitute("{ok,5,{ke,$E1}}")
    mixed.nodes.sync_ra_directory(mixed.shell, 1)
    mixed.nodes.ra.kill(1)
    started = time.monotonic()
    assert mixed.eval("LeaderAmong([{ke, $P1}, {ke, $P2}]).") == mixed.nodes.substitute(
        "{ok,[{ke,$E1},{ke,$P1},{ke,$P2}],true}"
    )
    print(f"erlang leader killed -> python leader in {time.monotonic() - started:.2f} s")
    assert mixed.eval("CommandVia([{ke, $P1}, {ke, $P2}], 1).") == "{ok,6,true}"
    mixed.restart_erlang(1, "ke")
    leader = mixed.eval("element(3, ra:members([{ke, $P1}, {ke, $P2}])).")
    got, want = mixed.caught_up("{ke, $E1}", leader)
    assert (got, want.endswith(",6}")) == (want, True)
    assert mixed.eval("ra:delete_cluster([{ke, $E1}, {ke, $P1}, {ke, $P2}]).") == f"{{ok,{leader}}}"


def test_python_followers_detect_a_dead_erlang_leader_by_its_monitor_not_by_silence(mixed: Mixed) -> None:
    assert mixed.start_cluster("fd", "$E1", "$P1", "$P2") == (
        mixed.nodes.substitute("{ok,[{fd,$P2},{fd,$P1},{fd,$E1}],[]}")
    )
    assert mixed.eval("ra:process_command({fd, $P1}, 5).") == mixed.nodes.substitute("{ok,5,{fd,$E1}}")
    mixed.nodes.sync_ra_directory(mixed.shell, 1)
    beam = mixed.nodes.ra.peers[0].proc
    assert beam is not None
    # A frozen leader is silent but its connection stays up: Ra followers keep following it (an
    # idle Ra leader sends nothing either), and so must the Python ones, for longer than any of
    # Ra's election timers (at most 2 s, ra-internals §8.1).
    os.kill(beam.pid, signal.SIGSTOP)
    try:
        frozen_until = time.monotonic() + 3.0
        seen: set[str] = set()
        while time.monotonic() < frozen_until:
            seen.add(mixed.eval("[ra:ping({fd, N}, 1000) || N <- [$P1, $P2]]."))
            time.sleep(0.25)
        assert seen == {"[{pong,follower},{pong,follower}]"}
    finally:
        # Dead for real now: the connection drops, the followers' monitors fire (noconnection).
        mixed.nodes.ra.kill(1)
    started = time.monotonic()
    assert mixed.eval("LeaderAmong([{fd, $P1}, {fd, $P2}]).") == mixed.nodes.substitute(
        "{ok,[{fd,$E1},{fd,$P1},{fd,$P2}],true}"
    )
    print(f"frozen erlang leader killed -> python leader in {time.monotonic() - started:.2f} s")
    mixed.restart_erlang(1, "fd")
    leader = mixed.eval("element(3, ra:members([{fd, $P1}, {fd, $P2}])).")
    got, want = mixed.caught_up("{fd, $E1}", leader)
    assert got == want
    assert mixed.eval("ra:delete_cluster([{fd, $E1}, {fd, $P1}, {fd, $P2}]).") == f"{{ok,{leader}}}"


def test_erlang_followers_never_see_an_idle_python_leaders_node_as_down(mixed: Mixed) -> None:
    assert mixed.start_cluster("hb", "$P1", "$E1", "$E2") == (
        mixed.nodes.substitute("{ok,[{hb,$E2},{hb,$E1},{hb,$P1}],[]}")
    )
    assert mixed.eval("ra:process_command({hb, $E2}, 5).") == mixed.nodes.substitute("{ok,5,{hb,$P1}}")
    # What each Erlang follower believes (current term, leader) and what its aten_sink makes of the
    # Python node's heartbeats: present, and below aten's 0.99 "down" threshold.
    view = "FollowerView(hb, [$E1, $E2], $P1)."
    first = mixed.eval(view)
    assert first == mixed.nodes.substitute("[{1,{hb,$P1},true},{1,{hb,$P1},true}]")
    idle_until = time.monotonic() + 10.0
    seen: set[str] = set()
    while time.monotonic() < idle_until:
        seen.add(mixed.eval(view))
        time.sleep(0.5)
    assert seen == {first}
    assert mixed.eval("ra:process_command({hb, $E1}, 1).") == mixed.nodes.substitute("{ok,6,{hb,$P1}}")
    assert mixed.eval("ra:delete_cluster([{hb, $P1}, {hb, $E1}, {hb, $E2}]).") == (
        mixed.nodes.substitute("{ok,{hb,$P1}}")
    )
