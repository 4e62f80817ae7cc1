"""The exception tree of erl_interop.

Owns: every exception type the package raises on purpose. Must not: import anything from the rest of
the package (every layer imports this module), or carry behaviour beyond messages and fields.

Hierarchy::

    ErlInteropError
    ├── CodecError
    │   ├── DecodeError(msg, offset)   malformed, truncated or hostile external-format input
    │   └── EncodeError                a Python value that has no (legal) external-format encoding
    ├── EpmdError                      EPMD registration or lookup failed
    ├── HandshakeError                 distribution handshake refused or broken (e.g. wrong cookie)
    ├── ConnectionLost                 an established distribution connection went away
    ├── NodeDown                       the remote node is not reachable (``noconnection`` / ``nodedown``)
    ├── NoProc                         the target process does not exist (``noproc``)
    └── CallTimeout                    a call got no reply in time

Other modules may subclass these (for example a more specific HandshakeError) in their own files.
"""

from __future__ import annotations

__all__ = [
    "CallTimeout",
    "CodecError",
    "ConnectionLost",
    "DecodeError",
    "EncodeError",
    "EpmdError",
    "ErlInteropError",
    "HandshakeError",
    "NoProc",
    "NodeDown",
]


class ErlInteropError(Exception):
    """Base class of every error raised on purpose by erl_interop."""


class CodecError(ErlInteropError):
    """External Term Format encoding or decoding failed."""


class DecodeError(CodecError):
    """The bytes are not a valid (or acceptable) external-format term.

    Attributes:
        msg: what was wrong.
        offset: byte offset in the decoded buffer where the offending item starts.
    """

    def __init__(self, msg: str, offset: int) -> None:
        super().__init__(f"{msg} (at offset {offset})")
        self.msg = msg
        self.offset = offset

    def __reduce__(self) -> tuple[type[DecodeError], tuple[str, int]]:
        return (type(self), (self.msg, self.offset))


class EncodeError(CodecError):
    """The Python value cannot be encoded as a legal external-format term."""


class EpmdError(ErlInteropError):
    """Registering with, or looking a node up in, EPMD failed."""


class HandshakeError(ErlInteropError):
    """The distribution handshake was refused or violated the protocol."""


class ConnectionLost(ErlInteropError):
    """An established distribution connection was closed or broke."""


class NodeDown(ErlInteropError):
    """The remote node is down or cannot be reached."""


class NoProc(ErlInteropError):
    """The target process (pid or registered name) does not exist."""


class CallTimeout(ErlInteropError):
    """A call (gen_server, rpc) got no reply before its timeout."""
