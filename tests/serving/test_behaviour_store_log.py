"""The behaviour log reads back every intact record and stops exactly at a torn or corrupt one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from muse.core.errors import DataError
from serving.behaviour_store_log import (
    HEADER,
    LOG_EVENT_DTYPE,
    BehaviourLogFile,
    encode_record,
    read_log,
    truncate_log,
)


def events(*item_ids: int) -> np.ndarray:
    array = np.zeros(len(item_ids), dtype=LOG_EVENT_DTYPE)
    array["item_id"] = item_ids
    array["timestamp"] = np.arange(len(item_ids)) + 1_700_000_000
    array["category_id"][::2] = -7
    array["has_category"][::2] = 1
    return array


def write_records(path: Path, records: list[tuple[int, np.ndarray]]) -> list[int]:
    log = BehaviourLogFile(path, generation=1)
    ends = [log.write(encode_record(user, batch)) for user, batch in records]
    log.sync(ends[-1])
    log.close()
    return ends


def test_records_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "log-00000001.bin"
    records = [(5, events(1, 2, 3)), (-(2**63), events(2**63 - 1)), (7, events())]
    ends = write_records(path, records)
    contents = read_log(path)
    assert contents.valid_bytes == contents.file_bytes == ends[-1] == path.stat().st_size
    assert [record.user_id for record in contents.records] == [5, -(2**63), 7]
    for record, (_, expected) in zip(contents.records, records, strict=True):
        assert record.events.tobytes() == expected.tobytes()


def test_every_torn_prefix_of_the_last_record_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "log-00000001.bin"
    ends = write_records(path, [(1, events(10, 11)), (2, events(12, 13, 14))])
    data = path.read_bytes()
    for cut in range(ends[0], ends[1]):
        path.write_bytes(data[:cut])
        contents = read_log(path)
        assert [r.user_id for r in contents.records] == [1]
        assert contents.valid_bytes == ends[0] and contents.file_bytes == cut


def test_corrupt_or_zero_filled_tail_is_detected_and_truncated(tmp_path: Path) -> None:
    path = tmp_path / "log-00000001.bin"
    ends = write_records(path, [(1, events(10)), (2, events(12, 13))])
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a flipped bit inside the last payload
    path.write_bytes(bytes(data))
    assert read_log(path).valid_bytes == ends[0]
    path.write_bytes(bytes(data[: ends[0]]) + bytes(64))  # a crash that left zeroed blocks
    contents = read_log(path)
    assert contents.valid_bytes == ends[0] and len(contents.records) == 1
    truncate_log(path, contents.valid_bytes)
    assert path.stat().st_size == ends[0]
    # Appending after the truncation continues a clean log.
    log = BehaviourLogFile(path, generation=1)
    log.sync(log.write(encode_record(3, events(99))))
    log.close()
    assert [r.user_id for r in read_log(path).records] == [1, 3]


def test_torn_header_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "log-00000001.bin"
    path.write_bytes(HEADER[:5])
    assert read_log(path).valid_bytes == 0
    truncate_log(path, 0)
    assert path.read_bytes() == HEADER
    path.write_bytes(b"NOTALOG!" + bytes(20))
    with pytest.raises(DataError, match="not a behaviour log"):
        read_log(path)
