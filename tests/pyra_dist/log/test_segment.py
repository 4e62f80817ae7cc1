"""Segment files and segment sets (Ra ``ra_log_segment_SUITE`` behaviours)."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from pyra_dist.log import LogCorrupt
from pyra_dist.log import format as fmt
from pyra_dist.log.segment import SegmentFile, SegmentSet


def entries(first: int, last: int, term: int) -> list[tuple[int, int, bytes]]:
    return [(i, term, f"e{i}t{term}".encode()) for i in range(first, last + 1)]


def read_all(sset: SegmentSet) -> list[tuple[int, int, bytes]]:
    bounds = sset.range()
    assert bounds is not None
    out = []
    for i in range(bounds[0], bounds[1] + 1):
        found = sset.read(i)
        assert found is not None, i
        out.append((i, *found))
    return out


def test_segment_header_and_index_region_layout(tmp_path: Path) -> None:
    sset = SegmentSet(tmp_path, max_count=4, checksums=True)
    sset.append(entries(1, 2, 1))
    sset.close()
    buf = (tmp_path / "00000001.segment").read_bytes()
    assert buf[:8] == b"PYSG\x00\x01\x00\x04"
    start = fmt.segment_data_start(4)
    assert fmt.SEGMENT_INDEX_RECORD.unpack_from(buf, 8) == (1, 1, start, 4, zlib.crc32(b"e1t1"))
    assert buf[start : start + 8] == b"e1t1e2t1"


def test_full_segment_rolls_to_the_next_file_and_reopens(tmp_path: Path) -> None:
    sset = SegmentSet(tmp_path, max_count=4, checksums=True)
    sset.append(entries(1, 10, 1))
    assert [p.name for p in sset.files] == ["00000001.segment", "00000002.segment", "00000003.segment"]
    sset.close()
    again = SegmentSet.open(tmp_path, max_count=4, checksums=True)
    assert read_all(again) == entries(1, 10, 1)


def test_overwrite_hides_later_entries_across_files(tmp_path: Path) -> None:
    sset = SegmentSet(tmp_path, max_count=4, checksums=True)
    sset.append(entries(1, 10, 1))
    sset.append(entries(3, 4, 2))
    assert read_all(sset) == entries(1, 2, 1) + entries(3, 4, 2)
    sset.close()
    assert read_all(SegmentSet.open(tmp_path, 4, True)) == entries(1, 2, 1) + entries(3, 4, 2)


def test_truncation_tombstone_is_durable(tmp_path: Path) -> None:
    sset = SegmentSet(tmp_path, max_count=8, checksums=True)
    sset.append(entries(1, 6, 1), truncate_above=3)
    assert sset.range() == (1, 3)
    sset.close()
    assert read_all(SegmentSet.open(tmp_path, 8, True)) == entries(1, 3, 1)


def test_release_below_deletes_files_holding_only_released_entries(tmp_path: Path) -> None:
    sset = SegmentSet(tmp_path, max_count=4, checksums=True)
    sset.append(entries(1, 10, 1))
    deleted = sset.release_below(8)
    assert [p.name for p in deleted] == ["00000001.segment", "00000002.segment"]
    assert (sset.range(), sset.read(8), sset.read(9)) == ((9, 10), None, (1, b"e9t1"))


def test_segment_data_checksum_failure_is_fatal_naming_file_and_offset(tmp_path: Path) -> None:
    sset = SegmentSet(tmp_path, max_count=4, checksums=True)
    sset.append(entries(1, 3, 1))
    sset.close()
    path = tmp_path / "00000001.segment"
    buf = bytearray(path.read_bytes())
    offset = fmt.segment_data_start(4) + 4  # entry 2's first byte
    buf[offset] ^= 0xFF
    path.write_bytes(bytes(buf))
    again = SegmentSet.open(tmp_path, 4, True)
    assert again.read(1) == (1, b"e1t1")
    with pytest.raises(LogCorrupt, match=rf"00000001.segment: corrupt at byte offset {offset}"):
        again.read(2)


def test_segment_checksums_off_stores_zero_crc_and_skips_verification(tmp_path: Path) -> None:
    sset = SegmentSet(tmp_path, max_count=4, checksums=False)
    sset.append(entries(1, 1, 1))
    sset.close()
    seg = SegmentFile.open(tmp_path / "00000001.segment")
    assert seg.records[0].crc == 0


def test_index_slot_pointing_past_end_of_file_ends_the_index(tmp_path: Path) -> None:
    sset = SegmentSet(tmp_path, max_count=4, checksums=True)
    sset.append(entries(1, 3, 1))
    sset.close()
    path = tmp_path / "00000001.segment"
    path.write_bytes(path.read_bytes()[:-2])  # entry 3's data was not synced before a crash
    assert read_all(SegmentSet.open(tmp_path, 4, True)) == entries(1, 2, 1)


def test_bad_segment_magic_is_fatal(tmp_path: Path) -> None:
    (tmp_path / "00000001.segment").write_bytes(b"RASG\x00\x02\x10\x00")
    with pytest.raises(LogCorrupt, match="not a pyra segment file"):
        SegmentSet.open(tmp_path, 4, True)
