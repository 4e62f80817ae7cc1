"""Visible Python nodes and ``global``: ``global:sync()`` must not hang on the Erlang peers.

Two Erlang nodes (OTP 25, then OTP 28) and one visible Python node, connected both ways (the
Python node initiates one connection and accepts the other). ``global:sync()`` returns,
global names registered on one Erlang node are seen by the other, ``global:trans`` (which
multi-calls ``set_lock`` on every visible node, the Python one included) completes, and a
hidden Python node stays out of ``nodes()``.
"""

# ruff: noqa: UP031  (Erlang source with braces reads better with %-formatting)

from __future__ import annotations

import itertools
import os
import secrets

import pytest

from erl_interop import Atom, SyncNode
from erl_interop.testing import ErlPeer, otp28_erl

pytestmark = pytest.mark.erlang

_names = itertools.count()
SYNC = "catch gen_server:call(global_name_server, {sync, nodes()}, 5000)."


@pytest.mark.parametrize("runtime", ["otp25", "otp28"])
def test_visible_python_node_lets_global_sync_return_on_every_peer(runtime: str) -> None:
    cookie = "g" + secrets.token_hex(8)
    tag = f"{os.getpid()}x{next(_names)}"
    erl = otp28_erl() if runtime == "otp28" else None
    with (
        ErlPeer(f"ga{tag}", cookie, erl=erl) as a,
        ErlPeer(f"gb{tag}", cookie, erl=erl) as b,
        SyncNode(f"pyvis{tag}", cookie=cookie, hidden=False) as node,
    ):
        py = str(node.name)
        assert a.eval("net_adm:ping('%s')." % py) == "pong"  # Erlang initiates
        assert node.ping(b.node) is True  # Python initiates
        assert a.eval("net_adm:ping('%s')." % b.node) == "pong"
        assert sorted(a.eval("nodes().").strip("[]").split(",")) == sorted([py, b.node])
        assert a.eval(SYNC) == "ok"
        assert b.eval(SYNC) == "ok"
        assert a.eval("global:register_name(gname, self()).") == "yes"
        assert b.eval(SYNC) == "ok"
        assert b.eval("node(global:whereis_name(gname)).") == a.node
        assert b.eval("global:trans({glock, self()}, fun() -> inside end).") == "inside"
        assert node.call((Atom("global_name_server"), a.node), Atom("get_known")) == [Atom(b.node)]
        # Losing the Python node never makes global split the Erlang nodes (we are not "known").
        assert node.disconnect(a.node) is True
        assert a.eval("lists:member('%s', nodes())." % b.node) == "true"
        assert b.eval(SYNC) == "ok"


def test_hidden_python_node_is_not_in_nodes_and_sync_returns() -> None:
    cookie = "h" + secrets.token_hex(8)
    tag = f"{os.getpid()}x{next(_names)}"
    with ErlPeer(f"gh{tag}", cookie) as a, SyncNode(f"pyhid{tag}", cookie=cookie) as node:
        py = str(node.name)
        assert a.eval("net_adm:ping('%s')." % py) == "pong"
        assert a.eval("nodes().") == "[]"
        assert a.eval("nodes(hidden).") == "[%s]" % py
        assert a.eval(SYNC) == "ok"
