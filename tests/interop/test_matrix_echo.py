"""The echo example (issue 2 point 10) run as a subprocess and used from erl (OTP 25, 28) and iex."""

# ruff: noqa: UP031  (Erlang source with braces reads better with %-formatting)

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from erl_interop.testing import ErlPeer, otp28_erl

pytestmark = pytest.mark.erlang

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "echo_node.py"
_names = itertools.count()


class EchoProcess:
    """``python examples/echo_node.py`` as a child process, killed by pid on close."""

    def __init__(self, name: str, cookie: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--name", name, "--cookie", cookie],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.node = ""
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(30):
            self.close()
            raise RuntimeError(f"echo node did not start: {self.lines[-20:]}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("echo node ") and line.rstrip().endswith(" ready"):
                self.node = line.split()[2]
                self.ready.set()

    def terminate(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def echo_node() -> Iterator[tuple[EchoProcess, str]]:
    cookie = "e" + secrets.token_hex(8)
    proc = EchoProcess(f"echo{os.getpid()}x{next(_names)}", cookie)
    try:
        yield proc, cookie
    finally:
        proc.close()


@pytest.mark.parametrize("runtime", ["otp25", "otp28"])
def test_echo_example_answers_erl(echo_node: tuple[EchoProcess, str], runtime: str) -> None:
    proc, cookie = echo_node
    n = proc.node
    erl = otp28_erl() if runtime == "otp28" else None
    with ErlPeer(f"user{os.getpid()}x{next(_names)}", cookie, erl=erl) as peer:
        peer.eval("{echo, '%s'} ! {self(), hello}." % n)
        assert peer.eval("receive {echo, _} = Echoed -> Echoed after 10000 -> timeout end.") == "{echo,hello}"
        assert peer.eval("gen_server:call({echo, '%s'}, ping)." % n) == "{echo,ping}"
        assert peer.eval("rpc:call('%s', echo, echo, [42])." % n) == "42"
        assert (
            peer.eval("rpc:call('%s', echo, fail, [oops])." % n)
            == "{badrpc,{'EXIT',{oops,[{echo,fail,1,[]}]}}}"
        )
        assert (
            peer.eval("try erpc:call('%s', echo, fail, [why]) catch error:{exception, R, _} -> R end." % n)
            == "why"
        )


def test_echo_example_answers_iex(echo_node: tuple[EchoProcess, str]) -> None:
    proc, cookie = echo_node
    n = proc.node
    with ErlPeer(f"iex{os.getpid()}x{next(_names)}", cookie, elixir=True) as peer:
        peer.eval("send({:echo, :'%s'}, {self(), :hello})" % n)
        assert peer.eval("receive do {:echo, _} = m -> m after 10000 -> :timeout end") == "{:echo, :hello}"
        assert peer.eval("GenServer.call({:echo, :'%s'}, :ping)" % n) == "{:echo, :ping}"
        assert peer.eval(":rpc.call(:'%s', :echo, :echo, [42])" % n) == "42"
        assert (
            peer.eval(":rpc.call(:'%s', :echo, :fail, [:oops])" % n)
            == "{:badrpc, {:EXIT, {:oops, [{:echo, :fail, 1, []}]}}}"
        )


def test_echo_example_stops_cleanly_on_sigterm() -> None:
    proc = EchoProcess(f"echostop{os.getpid()}x{next(_names)}", "s" + secrets.token_hex(8))
    try:
        assert proc.terminate() == 0
        assert "echo node stopped" in proc.lines
    finally:
        proc.close()
