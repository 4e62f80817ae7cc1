"""Distribution capability flags (DFLAG_*) and the sets this node advertises and requires.

Owns: the DFLAG_* bit values (erts ``dist.h`` names), our advertised flag sets for hidden and
visible nodes, the mandatory sets of OTP 25 and OTP 26+, the ``MANDATORY_25_DIGEST`` expansion
and the negotiation (bitwise AND) of two flag sets.
Must not: do I/O, or decide anything about a particular connection beyond the flag arithmetic.

Reference: erts ``erl_dist_protocol`` "Distribution Flags"; erlang-distribution.md §2.5.
"""

from __future__ import annotations

from enum import IntFlag
from typing import Final

__all__ = [
    "DEFAULT_HIDDEN",
    "DEFAULT_VISIBLE",
    "MANDATORY_25",
    "MANDATORY_26",
    "REQUIRED",
    "DistFlags",
    "expand_mandatory_25",
    "missing_flags",
    "negotiate",
]


class DistFlags(IntFlag):
    """The 64 capability bits exchanged in the v6 handshake (``N`` packets), erts names."""

    PUBLISHED = 0x1
    ATOM_CACHE = 0x2
    EXTENDED_REFERENCES = 0x4
    DIST_MONITOR = 0x8
    FUN_TAGS = 0x10
    DIST_MONITOR_NAME = 0x20
    HIDDEN_ATOM_CACHE = 0x40
    NEW_FUN_TAGS = 0x80
    EXTENDED_PIDS_PORTS = 0x100
    EXPORT_PTR_TAG = 0x200
    BIT_BINARIES = 0x400
    NEW_FLOATS = 0x800
    UNICODE_IO = 0x1000
    DIST_HDR_ATOM_CACHE = 0x2000
    SMALL_ATOM_TAGS = 0x4000
    INTERNAL_TAGS = 0x8000
    UTF8_ATOMS = 0x10000
    MAP_TAG = 0x20000
    BIG_CREATION = 0x40000
    SEND_SENDER = 0x80000
    BIG_SEQTRACE_LABELS = 0x100000
    PENDING_CONNECT = 0x200000
    EXIT_PAYLOAD = 0x400000
    FRAGMENTS = 0x800000
    HANDSHAKE_23 = 0x1000000
    UNLINK_ID = 0x2000000
    # The docs misprint this as 1 bsl 36; erts dist.h and dist_util use bit 26 (reference §2.5).
    MANDATORY_25_DIGEST = 0x4000000
    SPAWN = 1 << 32
    NAME_ME = 1 << 33
    V4_NC = 1 << 34
    ALIAS = 1 << 35
    LOCAL_EXT = 1 << 36
    ALTACT_SIG = 1 << 37


#: What OTP 25 refuses to connect without (V: ``erts_internal:get_dflags()`` = 0x1070F94).
MANDATORY_25: Final = (
    DistFlags.EXTENDED_REFERENCES
    | DistFlags.FUN_TAGS
    | DistFlags.NEW_FUN_TAGS
    | DistFlags.EXTENDED_PIDS_PORTS
    | DistFlags.EXPORT_PTR_TAG
    | DistFlags.BIT_BINARIES
    | DistFlags.NEW_FLOATS
    | DistFlags.UTF8_ATOMS
    | DistFlags.MAP_TAG
    | DistFlags.BIG_CREATION
    | DistFlags.HANDSHAKE_23
)

#: OTP 26+ adds the new link protocol and the v4 node container layouts (dist.h, 0x403070F94).
MANDATORY_26: Final = MANDATORY_25 | DistFlags.UNLINK_ID | DistFlags.V4_NC

#: Hidden-node flags recommended by the reference (§2.5): 0xD03DF5FBC. No DIST_HDR_ATOM_CACHE:
#: we can decode atom cache refs, but without the flag Erlang never sends them (V).
DEFAULT_HIDDEN: Final = (
    MANDATORY_26
    | DistFlags.DIST_MONITOR
    | DistFlags.DIST_MONITOR_NAME
    | DistFlags.UNICODE_IO
    | DistFlags.SMALL_ATOM_TAGS
    | DistFlags.SEND_SENDER
    | DistFlags.BIG_SEQTRACE_LABELS
    | DistFlags.EXIT_PAYLOAD
    | DistFlags.FRAGMENTS
    | DistFlags.SPAWN
    | DistFlags.ALIAS
)

#: Visible nodes also set PUBLISHED (0xD03DF5FBD).
DEFAULT_VISIBLE: Final = DEFAULT_HIDDEN | DistFlags.PUBLISHED

#: What we refuse to connect without. The node layer implements only the new link protocol
#: (UNLINK_ID) and we decode V4 pids/ports, so we require the OTP 26 set; every OTP 25+ peer sends it.
REQUIRED: Final = MANDATORY_26


def expand_mandatory_25(flags: int) -> DistFlags:
    """Apply OTP's ``expand_mandatory_25_flag``: MANDATORY_25_DIGEST claims the whole OTP 25 set.

    Args:
        flags: the raw 64-bit flags a peer sent.

    Returns:
        The flags with every MANDATORY_25 bit set when the digest bit is present.
    """
    if flags & DistFlags.MANDATORY_25_DIGEST:
        flags |= MANDATORY_25
    return DistFlags(flags)


def negotiate(ours: int, theirs: int) -> DistFlags:
    """The flag set a connection uses: the AND of both sides after digest expansion (§2.5).

    Args:
        ours: the flags we sent.
        theirs: the flags the peer sent.

    Returns:
        The negotiated flags.
    """
    return DistFlags(expand_mandatory_25(ours) & expand_mandatory_25(theirs))


def missing_flags(theirs: int, required: int = REQUIRED) -> list[str]:
    """Names of the required flags a peer lacks, sorted by bit, as OTP prints them in its refusal log.

    Args:
        theirs: the flags the peer sent.
        required: the set we insist on.

    Returns:
        ``[]`` when the peer is acceptable, else e.g. ``["BIG_CREATION", "UNLINK_ID"]``.
    """
    lacking = int(required) & ~int(expand_mandatory_25(theirs))
    return [flag.name or hex(flag.value) for flag in DistFlags if flag.value & lacking]
