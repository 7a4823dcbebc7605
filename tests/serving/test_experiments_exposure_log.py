"""The exposure log writes complete parquet files of enrolled assignments, periodically and at close."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from serving.experiments import Assigner, load_experiments
from serving.exposure_log import ExposureLog, read_exposures
from serving.exposure_log_config import ExposureLogConfig

ROOT = Path(__file__).resolve().parents[2]
ASSIGNER = Assigner(load_experiments(ROOT / "configs" / "experiments" / "default.toml"))


def test_close_writes_one_row_per_enrolled_assignment(tmp_path: Path) -> None:
    users = list(range(200))
    with ExposureLog(ExposureLogConfig(tmp_path, flush_interval_seconds=3600)) as log:
        for user in users:
            log.record(user, ASSIGNER.assign(user), time_unix_ms=1_700_000_000_000 + user)
    frame = read_exposures(tmp_path).sort("user_id")
    expected = [
        (u, a.experiment, a.variant) for u in users for a in ASSIGNER.assign(u) if a.enrolled
    ]
    assert 0 < len(expected) < len(users)  # the default config leaves some users unenrolled
    assert (
        list(zip(frame["user_id"], frame["experiment"], frame["variant"], strict=True)) == expected
    )
    assert frame["time"].dt.epoch("ms").to_list() == [1_700_000_000_000 + u for u, _, _ in expected]
    assert set(frame["layer"]) == {"ranking"}
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("exposures-")] == []


def test_rows_are_written_by_size_and_by_interval_without_close(tmp_path: Path) -> None:
    log = ExposureLog(ExposureLogConfig(tmp_path, flush_rows=50, flush_interval_seconds=0.2))
    enrolled_user = next(u for u in range(100) if ASSIGNER.assign(u)[0].enrolled)
    for _ in range(120):
        log.record(enrolled_user, ASSIGNER.assign(enrolled_user))
    deadline = time.monotonic() + 10
    while read_exposures(tmp_path).height < 120 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read_exposures(tmp_path).height == 120
    assert log.written_rows == 120 and log.dropped_rows == 0
    log.close()
    log.close()
    with pytest.raises(RuntimeError):
        log.record(enrolled_user, ASSIGNER.assign(enrolled_user))


def test_buffer_is_bounded_and_drops_are_counted(tmp_path: Path) -> None:
    log = ExposureLog(
        ExposureLogConfig(
            tmp_path, flush_rows=10, max_buffered_rows=10, flush_interval_seconds=3600
        )
    )
    enrolled_user = next(u for u in range(100) if ASSIGNER.assign(u)[0].enrolled)
    log._write_lock.acquire()  # a stuck disk: the writer cannot run
    try:
        for _ in range(25):
            log.record(enrolled_user, ASSIGNER.assign(enrolled_user))
        assert log.dropped_rows == 15
    finally:
        log._write_lock.release()
    log.close()
    assert read_exposures(tmp_path).height == 10


def test_reading_an_empty_directory_gives_the_schema(tmp_path: Path) -> None:
    frame = read_exposures(tmp_path)
    assert frame.height == 0 and frame.columns[:4] == ["user_id", "layer", "experiment", "variant"]
