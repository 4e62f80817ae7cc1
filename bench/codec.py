"""Benchmark: encode+decode of a ~1 KB nested term, erl_interop vs erlang-py.

Run: ``python bench/codec.py [--seconds S]`` (S: CPU seconds per library, default 3).

Builds a ~1 KB term that looks like a Ra command wrapped in a gen_server call (maps, tuples, lists,
binaries, atoms, small and big ints, floats), then measures ``term_to_binary`` + ``binary_to_term``
round trips per CPU second for erl_interop and, in the same run, for the pure-Python ``erlang-py``
package (import name ``erlang``) on the very same Erlang term, each in its own Python representation.
It says whether the C accelerator ran; ``ERL_INTEROP_PURE_PYTHON=1 python bench/codec.py`` measures the
pure-Python codec.
The last line is machine-readable:

    codec: erl_interop ops/s=X erlang_py ops/s=Y ratio=Z
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from typing import Any

from erl_interop.term import Atom, Pid, Reference, binary_to_term, term_to_binary


def build_term() -> Any:
    """A ~1 KB term: a gen_server call carrying a Ra-like command batch."""
    node = Atom("ra_1@vm")
    pid = Pid(node, 91, 0, 1700000000)
    ref = Reference(node, 1700000000, (173342, 2911893505, 1127300193))
    entries = [
        (
            1000 + i,
            7,
            {
                Atom("op"): Atom("put"),
                Atom("key"): f"user:{i:04d}".encode(),
                Atom("value"): b"v" * (20 + i),
                Atom("ts"): 1700000000.125 + i,
                Atom("tags"): [Atom("hot"), Atom("replicated")],
            },
        )
        for i in range(8)
    ]
    command = {
        Atom("cluster"): Atom("orders"),
        Atom("index"): 123456,
        Atom("term"): 7,
        Atom("entries"): entries,
        Atom("meta"): {Atom("from"): node, Atom("ratio"): 0.75, Atom("seq"): 2**70, Atom("neg"): -42},
        Atom("flags"): [1, 2, 3, 4, 5],
    }
    return (Atom("$gen_call"), (pid, ref), (Atom("process_command"), command, Atom("normal")))


def ops_per_second(roundtrip: Callable[[], object], seconds: float) -> float:
    """Calls of ``roundtrip`` per CPU second: the best of short rounds over about ``seconds``.

    CPU time (``process_time``) and best-of-rounds keep the figure meaningful on a shared machine,
    where wall-clock time mostly measures the other processes.
    """
    best = 0.0
    spent = 0.0
    while spent < seconds:
        start = time.process_time()
        for _ in range(25):
            roundtrip()
        took = time.process_time() - start
        spent += took
        if took > 0:
            best = max(best, 25 / took)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per library")
    args = parser.parse_args()

    term = build_term()
    data = term_to_binary(term)
    assert binary_to_term(data) == term
    print(f"term size: {len(data)} bytes")
    accelerated = importlib.import_module("erl_interop.term.decode")._C_DECODER is not None
    print("implementation:", "C accelerator (_speedups)" if accelerated else "pure Python")

    def ours() -> object:
        return binary_to_term(term_to_binary(term))

    import erlang  # optional bench dependency: erlang-py

    theirs_term = erlang.binary_to_term(data)
    theirs_data = erlang.term_to_binary(theirs_term)
    assert binary_to_term(theirs_data) == term, "erlang-py must encode the same Erlang term"

    def theirs() -> object:
        return erlang.binary_to_term(erlang.term_to_binary(theirs_term))

    # Alternate the two so that both see the same machine conditions.
    ours_ops = theirs_ops = 0.0
    for _ in range(3):
        ours_ops = max(ours_ops, ops_per_second(ours, args.seconds / 3))
        theirs_ops = max(theirs_ops, ops_per_second(theirs, args.seconds / 3))
    print(f"erl_interop: {ours_ops:,.0f} encode+decode/s")
    print(f"erlang-py:   {theirs_ops:,.0f} encode+decode/s")
    ratio = ours_ops / theirs_ops
    print(f"codec: erl_interop ops/s={ours_ops:.0f} erlang_py ops/s={theirs_ops:.0f} ratio={ratio:.1f}")


if __name__ == "__main__":
    main()
