"""Storage glue: the tuple entry codec round-trips every command; the recent-entry cache mirrors the log;
WAL notifications become one LogWritten per burst."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyra_dist.core.events import LogWritten
from pyra_dist.log.config import SystemConfig
from pyra_dist.server.codec import EncodedCommands, FastPickleEntryCodec, SharedEncodingCodec
from pyra_dist.server.storage import SystemStorage
from pyra_dist.server.transport import ClientCall, LocalCall, LocalPid
from pyra_dist.types import (
    AFTER_LOG_APPEND,
    AWAIT_CONSENSUS,
    NO_REPLY,
    ClusterChange,
    ClusterDelete,
    Entry,
    Noop,
    NotifyReply,
    PeerState,
    ServerId,
    UsrCommand,
)

COMMANDS = [
    UsrCommand(b"x" * 256, NotifyReply(7, LocalPid("n", 1)), None, 123),
    UsrCommand(("put", "k", {"nested": [1, 2]}), AWAIT_CONSENSUS, ClientCall("n", 3), 1),
    UsrCommand("fire and forget", NO_REPLY, LocalCall(ServerId("a", "n")), 0),
    Noop(2, 5),
    ClusterChange(
        {ServerId("a", "n"): PeerState(3, 2, 1, 0, "normal")}, AFTER_LOG_APPEND, ClientCall("n", 1), 4
    ),
    ClusterDelete(AWAIT_CONSENSUS, ClientCall("x", 2), 9),
]


def test_the_entry_codec_round_trips_every_command_kind() -> None:
    codec = FastPickleEntryCodec()
    assert [codec.decode(codec.encode(c)) for c in COMMANDS] == COMMANDS


async def test_recent_entries_are_served_from_memory_and_follow_overwrites_and_truncation(
    tmp_path: Path,
) -> None:
    storage = SystemStorage.open(SystemConfig(data_dir=tmp_path), "n@localhost")
    with ThreadPoolExecutor(2) as executor:
        storage.attach(asyncio.get_running_loop(), executor)
        server = storage.open_server("UID1", tmp_path / "UID1")
        delivered: list[LogWritten] = []
        written = asyncio.Event()

        def deliver(event: object) -> None:
            assert isinstance(event, LogWritten)
            delivered.append(event)
            if (event.to_index, event.term) == (4, 2):
                written.set()

        server.bind(deliver)
        log = server.log
        assert log is not None
        first = [Entry(i, 1, Noop(0, i)) for i in range(1, 6)]
        log.append(first)
        assert log.fetch(2, 4) == first[1:4] and log.fetch(2, 4)[0] is first[1]

        rewritten = [Entry(i, 2, Noop(1, i)) for i in range(4, 7)]
        log.append(rewritten)
        assert log.fetch(1, 10) == first[:3] + rewritten
        log.truncate(4)
        assert log.fetch(1, 10) == first[:3] + rewritten[:1]

        await asyncio.wait_for(written.wait(), 10)
        # WAL batches are reported as they sync; never beyond what the log still holds.
        assert all(e.to_index <= 4 for e in delivered)
        assert delivered[0].from_index == 1
        server.close()
    storage.close()


def test_replicas_in_one_interpreter_reuse_the_leaders_encoding_of_a_command() -> None:
    cache = EncodedCommands(limit=2)
    codec = SharedEncodingCodec(FastPickleEntryCodec(), cache)
    first, second, third = (UsrCommand(("put", "k", i)) for i in range(3))
    stored = codec.encode(first)

    assert codec.encode(first) is stored
    assert codec.encode(UsrCommand(("put", "k", 0))) == stored  # equal but not the same object: encoded anew
    codec.encode(second)
    codec.encode(third)
    assert cache.get(first) is None and codec.decode(codec.encode(third)) == third
