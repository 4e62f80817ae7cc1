"""Selective receive on a Mailbox: order, matching, timeouts, closing."""

from __future__ import annotations

import asyncio

import pytest

from erl_interop.node.mailbox import Mailbox


async def test_receive_takes_oldest_matching_message_and_keeps_the_rest_in_order() -> None:
    box = Mailbox()
    for m in [1, "a", 2, "b", 3]:
        box.put(m)
    assert await box.receive(lambda m: isinstance(m, str)) == "a"
    assert box.peek_all() == [1, 2, "b", 3]
    assert await box.receive() == 1
    assert box.peek_all() == [2, "b", 3]


async def test_receive_waits_for_a_matching_message_that_arrives_later() -> None:
    box = Mailbox()
    box.put("noise")

    async def later() -> None:
        await asyncio.sleep(0)
        box.put("more noise")
        box.put(("reply", 7))

    task = asyncio.create_task(later())
    got = await box.receive(lambda m: isinstance(m, tuple), timeout=10)
    await task
    assert got == ("reply", 7)
    assert box.peek_all() == ["noise", "more noise"]


async def test_receive_with_zero_timeout_only_polls() -> None:
    box = Mailbox()
    with pytest.raises(TimeoutError):
        await box.receive(timeout=0)
    box.put(5)
    assert await box.receive(timeout=0) == 5


async def test_receive_times_out_and_leaves_unmatched_messages_queued() -> None:
    box = Mailbox()
    box.put(1)
    with pytest.raises(TimeoutError):
        await box.receive(lambda m: m == 2, timeout=0.01)
    assert box.peek_all() == [1]


async def test_closing_wakes_the_pending_receive_with_the_close_exception() -> None:
    box = Mailbox()
    task = asyncio.create_task(box.receive())
    await asyncio.sleep(0)
    box.close(RuntimeError("gone"))
    with pytest.raises(RuntimeError, match="gone"):
        await task
    box.put(1)
    assert box.peek_all() == []


async def test_remove_drops_every_matching_message() -> None:
    box = Mailbox()
    for m in [1, 2, 3, 4]:
        box.put(m)
    assert box.remove(lambda m: m % 2 == 0) == 2
    assert box.peek_all() == [1, 3]
