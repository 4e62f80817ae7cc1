"""Operator dump tools: ``python -m pyra_dist.log.dump wal|segment|snapshot|meta FILE``."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from pyra_dist.log import LogSystem, SnapshotMetaRecord, SystemConfig
from pyra_dist.log.dump import main


def _system_with_data(tmp_path: Path) -> tuple[Path, Path]:
    system = LogSystem.open(SystemConfig(data_dir=tmp_path), "n1")
    log = system.open_server_log("uid1")
    log.append([(1, 1, b"\x83d\x00\x02ok"), (2, 1, b"two")])
    log.truncate(1)
    assert system.wal.wait_durable(30)
    wal = system.wal.current_file
    system.close()
    assert wal is not None
    return wal, tmp_path / "n1" / "uid1"


def test_wal_dump_lists_records_and_the_valid_end(tmp_path: Path) -> None:
    wal, _ = _system_with_data(tmp_path)
    out = io.StringIO()
    assert main(["wal-dump", str(wal)], out) == 0
    assert out.getvalue().splitlines() == [
        f"# wal {wal} magic=PYWA version=1",
        "offset=48 uid=uid1 index=1 term=1 len=6 data=836400026f6b",
        "offset=90 uid=uid1 index=2 term=1 len=3 data=74776f",
        "offset=129 uid=uid1 truncate_above=1",
        "# records=3 size=165 valid_end=165",
    ]


def test_segment_dump_and_corrupt_file_exit_status(tmp_path: Path) -> None:
    _wal, server_dir = _system_with_data(tmp_path)
    LogSystem.open(SystemConfig(data_dir=tmp_path), "n1").close()  # recovery moves the WAL to segments
    seg = server_dir / "00000001.segment"
    out = io.StringIO()
    assert main(["segment", str(seg)], out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == f"# segment {seg} magic=PYSG version=1 max_count=4096 used=2"
    assert lines[1].startswith("slot=0 index=1 term=1 offset=131080 len=6 crc=")
    assert lines[2] == "slot=1 truncate_from=2"
    bad = tmp_path / "bad.wal"
    bad.write_bytes(b"nope")
    out = io.StringIO()
    assert main(["wal", str(bad)], out) == 2
    assert out.getvalue().splitlines()[-1] == (
        f"# CORRUPT: {bad}: corrupt at byte offset 0: file shorter than the 8-byte header"
    )


def test_snapshot_and_meta_dump(tmp_path: Path) -> None:
    system = LogSystem.open(SystemConfig(data_dir=tmp_path), "n1")
    log = system.open_server_log("uid1")
    log.install_snapshot_state(SnapshotMetaRecord(5, 2, (("s1", "py@vm"),), 1), b"S")
    log.persist_meta(2, ("s1", "py@vm"))
    system.close()
    snap = tmp_path / "n1" / "uid1" / "snapshots" / "0000000000000002_0000000000000005" / "snapshot.dat"
    out = io.StringIO()
    assert main(["snapshot", str(snap)], out) == 0
    assert (
        out.getvalue().splitlines()[1] == "index=5 term=2 machine_version=1 cluster=[{s1,py@vm}] state_len=1"
    )
    out = io.StringIO()
    assert main(["meta", str(tmp_path / "n1" / "uid1" / "meta")], out) == 0
    assert "slot=0 seq=1 current_term=2 voted_for=('s1', 'py@vm') last_applied=0" in out.getvalue()


def test_module_entry_point_runs(tmp_path: Path) -> None:
    wal, _ = _system_with_data(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pyra_dist.log.dump", "wal", str(wal)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout.splitlines()[-1]) == (0, "# records=3 size=165 valid_end=165")
