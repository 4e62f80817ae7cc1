"""Test helpers shipped with erl_interop: real BEAM peers driven from Python."""

from erl_interop.testing.peers import (
    ErlPeer,
    EvalError,
    PeerResult,
    elixir_executable,
    otp25_erl,
    otp28_erl,
    ra_ebin_dirs,
)

__all__ = [
    "ErlPeer",
    "EvalError",
    "PeerResult",
    "elixir_executable",
    "otp25_erl",
    "otp28_erl",
    "ra_ebin_dirs",
]
