"""A process mailbox with Erlang's selective receive.

Owns: the ordered queue of messages delivered to one process, and the single pending
``receive`` of its owner (a mailbox has exactly one reader, as in Erlang).

Must not: know about pids, links or the network; deliver anything itself. Messages are
opaque terms here; the caller decides what matches.

A mailbox created with a ``handler`` queues nothing: each message is passed to the handler as it
arrives, synchronously (a process whose receive loop is a callback, see ``Node.process``).

Theory of operation: ``receive(match)`` scans the queue from the oldest message and takes
the first one for which ``match`` is true, leaving the others in place (Erlang's
"save queue"). Messages already rejected during one ``receive`` call are not scanned
again while it waits for more, so a long-lived unmatched backlog costs one pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["Mailbox", "Match"]

Match = Callable[[Any], bool]


class Mailbox:
    """Ordered messages for one reader, with selective receive and timeouts."""

    __slots__ = ("_closed", "_handler", "_messages", "_waiter")

    def __init__(self, handler: Callable[[Any], None] | None = None) -> None:
        # When set, every message goes to handler(message) on arrival instead of the queue.
        self._handler = handler
        self._messages: list[Any] = []
        # Set while the owner is blocked in receive(); resolved by put() or close().
        self._waiter: asyncio.Future[None] | None = None
        # Once set, every receive raises it (the owning process is gone).
        self._closed: BaseException | None = None

    def __len__(self) -> int:
        return len(self._messages)

    def put(self, message: Any) -> None:
        """Append a message (drops it silently if the mailbox is closed, as Erlang does)."""
        if self._closed is not None:
            return
        if self._handler is not None:
            self._handler(message)
            return
        self._messages.append(message)
        self._wake()

    def close(self, exc: BaseException) -> None:
        """Refuse further messages; the pending and every later ``receive`` raise ``exc``."""
        if self._closed is None:
            self._closed = exc
            self._messages.clear()
            self._wake()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed is not None

    def peek_all(self) -> list[Any]:
        """A copy of the queued messages, oldest first (for debugging and tests)."""
        return list(self._messages)

    def remove(self, match: Match) -> int:
        """Drop every queued message for which ``match`` is true; returns how many."""
        kept = [m for m in self._messages if not match(m)]
        removed = len(self._messages) - len(kept)
        self._messages[:] = kept
        return removed

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self, match: Match | None, start: int) -> tuple[bool, Any, int]:
        messages = self._messages
        for i in range(start, len(messages)):
            if match is None or match(messages[i]):
                return True, messages.pop(i), i
        return False, None, len(messages)

    async def receive(self, match: Match | None = None, timeout: float | None = None) -> Any:  # noqa: ASYNC109  (the API takes Erlang-style timeouts)
        """Take the oldest message for which ``match`` is true (any message if ``match`` is None).

        Args:
            match: a predicate over one message; non-matching messages stay queued in order.
            timeout: seconds to wait; ``0`` only checks what is queued; ``None`` waits forever.

        Returns:
            The message, removed from the queue.

        Raises:
            TimeoutError: nothing matched in time.
            BaseException: whatever :meth:`close` was given (the owner has exited).
        """
        if self._waiter is not None:
            raise RuntimeError("a mailbox has a single reader; receive() is already pending")
        if self._handler is not None:
            raise RuntimeError("this mailbox hands its messages to a handler; nothing to receive")
        scanned = 0
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._closed is not None:
                raise self._closed
            found, message, scanned = self._take(match, scanned)
            if found:
                return message
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError("receive timed out")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiter = waiter
            try:
                if deadline is None:
                    await waiter
                else:
                    async with asyncio.timeout_at(deadline):
                        await waiter
            except TimeoutError:
                # Loop once more: a message that arrived together with the deadline wins.
                deadline = loop.time() - 1.0
            finally:
                self._waiter = None
