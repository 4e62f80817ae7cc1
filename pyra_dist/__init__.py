"""pyra_dist: Ra's Multi-Raft, rebuilt in Python.

Owns: the public surface of the package (re-exports only). Must not: run code at import.
"""

__all__: list[str] = []
