"""The node layer: Python processes, OTP behaviours and RPC on an Erlang distribution node.

Owns: re-exports only (``Node``, ``SyncNode``, ``Process``, ``GenServer`` ...). Must not: run
code at import.
"""

from erl_interop.node.gen_server import NO_REPLY, CallExit, From, GenServer, reply
from erl_interop.node.node import Node
from erl_interop.node.process import ErlangError, ErlangThrow, Process, ProcessExit
from erl_interop.node.rpc import RpcError
from erl_interop.node.sync import SyncNode, SyncProcess

__all__ = [
    "NO_REPLY",
    "CallExit",
    "ErlangError",
    "ErlangThrow",
    "From",
    "GenServer",
    "Node",
    "Process",
    "ProcessExit",
    "RpcError",
    "SyncNode",
    "SyncProcess",
    "reply",
]
