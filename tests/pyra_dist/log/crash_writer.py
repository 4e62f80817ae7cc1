"""Writer process for the crash tests: loads the storage engine until it is SIGKILLed.

Usage: ``python crash_writer.py DATA_DIR ACK_FILE SEED``. It recovers the system in ``DATA_DIR``,
then appends to four servers without pause (with random follower-style rewinds to a higher term,
truncations and snapshots), and appends one line per event to ``ACK_FILE``, each with a single
``write(2)`` so a kill can only cut the last line:

* ``R uid index term`` before rewinding ``uid`` to ``index`` (entries from there are replaced);
* ``T uid index`` before truncating ``uid`` above ``index``;
* ``W uid index term`` after the WAL reported everything up to ``index`` durable;
* ``S uid index`` after a snapshot at ``index`` was written.

Payloads are derived from ``(uid, index, term)`` so the checker can verify every byte.
"""

from __future__ import annotations

import os
import queue
import random
import sys
from pathlib import Path

from pyra_dist.log import LogSystem, SnapshotMetaRecord, SystemConfig
from pyra_dist.log.wal import WalEvent

UIDS = ("s0", "s1", "s2", "s3")


def payload(uid: str, index: int, term: int) -> bytes:
    """The deterministic payload of an entry (variable length, up to ~300 bytes)."""
    seed = f"{uid}/{index}/{term}/".encode()
    return seed * (1 + (index * 7 + term) % 12)


def main() -> None:
    data_dir, ack_path, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    cfg = SystemConfig(data_dir=data_dir, wal_max_entries=300, segment_max_entries=64, wal_max_batch_size=64)
    system = LogSystem.open(cfg, "n1")
    events: queue.Queue[WalEvent] = queue.Queue()
    logs = {uid: system.open_server_log(uid, events.put) for uid in UIDS}
    terms = {uid: max(log.last_index_term()[1], 1) for uid, log in logs.items()}
    ack = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(ack, b"READY\n")

    def drain(block: bool) -> None:
        while True:
            try:
                ev = events.get(block=block, timeout=5)
            except queue.Empty:
                return
            block = False
            log = logs[ev.uid]
            written = log.handle_wal_event(ev)
            if written is not None:
                term, index = written
                os.write(ack, f"W {ev.uid} {index} {term}\n".encode())

    while True:
        for uid, log in logs.items():
            roll = rng.random()
            last = log.last_index
            if roll < 0.03 and last - log.first_index > 5:
                to = rng.randint(max(log.first_index, last - 20), last)
                terms[uid] += 1
                os.write(ack, f"R {uid} {to} {terms[uid]}\n".encode())
                log.append(
                    [(i, terms[uid], payload(uid, i, terms[uid])) for i in range(to, to + rng.randint(1, 5))]
                )
            elif roll < 0.04 and last - log.first_index > 5:
                to = rng.randint(max(log.first_index, last - 10), last)
                os.write(ack, f"T {uid} {to}\n".encode())
                log.truncate(to)
            elif roll < 0.045 and log.last_written - log.first_index > 50:
                index = log.last_written - 10
                term = log.term_at(index)
                assert term is not None
                log.write_snapshot(SnapshotMetaRecord(index, term, (("a", "n1"),), 0), b"state" * 100)
                os.write(ack, f"S {uid} {index}\n".encode())
            else:
                t = terms[uid]
                log.append(
                    [(i, t, payload(uid, i, t)) for i in range(last + 1, last + 1 + rng.randint(1, 8))]
                )
        drain(block=any(log.last_index - log.last_written > 200 for log in logs.values()))


if __name__ == "__main__":
    main()
