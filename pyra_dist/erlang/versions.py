"""pyra's Ra version policy: what it speaks, and how refusals of newer Ra's terms are logged.

Owns: the supported versions (Ra 2.2.0's wire records and client protocol, ``RA_PROTO_VERSION``
1, OTP 25 and 28 peers: docs/ra-versions.md) and :class:`RefusalLogLimiter`, the ``logging``
filter that keeps refusals readable. ``records.py`` refuses what only Ra main (3.x) sends with an
:class:`~pyra_dist.erlang.records.UnsupportedRaVersion` and the transport logs it as a warning;
but a Ra main peer repeats what it is refused (``info_rpc`` on every tick, a pre-vote every
election timeout, the same append_entries_rpc after each reply timeout), so the first refusal of
a kind from a sender is logged and the repeats are counted and summarised once per interval.

Must not: decode terms (``records.py``), decide what is refused, or drop any other log record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pyra_dist.core.messages import RA_PROTO_VERSION
from pyra_dist.erlang.records import SPOKEN_RA_VERSION, UnsupportedRaVersion
from pyra_dist.types import ServerId

__all__ = [
    "RA_PROTO_VERSION",
    "REFUSAL_INTERVAL_S",
    "SPOKEN_RA_VERSION",
    "SUPPORTED_OTP_RELEASES",
    "RefusalLogLimiter",
]

SUPPORTED_OTP_RELEASES: Final = (25, 28)
"""OTP releases whose nodes are tested as peers (handshake, ETF, Ra 2.2.0 on OTP 25)."""

REFUSAL_INTERVAL_S: Final = 60.0
"""At most one log line per (receiver, refused kind, sender) per interval."""

_MAX_KEYS: Final = 1024


@dataclass(slots=True)
class _Seen:
    reported_at: float
    suppressed: int = 0


class RefusalLogLimiter(logging.Filter):
    """Rate-limits the log records that carry an ``UnsupportedRaVersion`` (a ``logging.Filter``).

    The first refusal of a ``kind`` from a ``sender`` at a receiving server passes; repeats within
    ``interval_s`` are dropped and counted; the first one after the interval passes with the count
    appended to its message. Records without a refusal, or whose receiving server is on another
    node (another edge in the same interpreter has its own limiter), pass untouched.

    Args:
        node: the node whose servers' refusals this limiter handles.
        clock: seconds, monotonic enough for intervals (an edge passes its system's clock).
        interval_s: see :data:`REFUSAL_INTERVAL_S`.
    """

    def __init__(self, node: str, clock: Callable[[], float], interval_s: float = REFUSAL_INTERVAL_S) -> None:
        super().__init__()
        self.node = node
        self._clock = clock
        self._interval = interval_s
        self._seen: dict[tuple[object, str, object], _Seen] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is logged (it may get a count of suppressed repeats)."""
        args = record.args if isinstance(record.args, tuple) else ()
        refusal = next((a for a in args if isinstance(a, UnsupportedRaVersion)), None)
        if refusal is None:
            return True
        receiver = next((a for a in args if isinstance(a, ServerId)), None)
        if receiver is not None and receiver.node != self.node:
            return True
        key = (receiver, refusal.kind, refusal.sender)
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.reported_at < self._interval:
            seen.suppressed += 1
            return False
        if seen is not None and seen.suppressed:
            note = f"{refusal} ({seen.suppressed} more refused since the last report)"
            record.args = tuple(note if a is refusal else a for a in args)
        self._remember(key, now)
        return True

    def _remember(self, key: tuple[object, str, object], now: float) -> None:
        # Bounded: senders come and go; forget the stale ones first, then the oldest.
        if key not in self._seen and len(self._seen) >= _MAX_KEYS:
            for old in [k for k, v in self._seen.items() if now - v.reported_at >= self._interval]:
                del self._seen[old]
            if len(self._seen) >= _MAX_KEYS:
                del self._seen[min(self._seen, key=lambda k: self._seen[k].reported_at)]
        self._seen[key] = _Seen(now)
