"""Errors specific to the distribution connection layer.

Owns: ``DistProtocolError``, raised by the sans-IO dist modules when a peer breaks the protocol
(bad framing, unknown control op, malformed dist header or fragment). The connection that saw
it is closed; the listener and every other connection carry on (erlang-distribution.md §4).
Must not: define errors that belong to the whole package (those live in ``erl_interop.errors``).
"""

from __future__ import annotations

from erl_interop.errors import ErlInteropError

__all__ = ["DistProtocolError"]


class DistProtocolError(ErlInteropError):
    """A peer sent something the distribution protocol does not allow; its connection is closed."""
