"""erl_interop: a Python node that speaks the Erlang distribution protocol.

Owns: the public surface of the package (re-exports only). Must not: run code at import.
"""

__all__: list[str] = []
