"""Exposure log: one row per (user, experiment, variant, time), written as parquet files.

The server calls :meth:`ExposureLog.record` on its request path: it only appends to an in-memory
buffer under a lock. A background thread writes the buffer to a new file every
``flush_interval_seconds`` or ``flush_rows`` rows, and :meth:`ExposureLog.close` writes the rest.
Each file is written beside its final name and renamed into place, so readers of
``exposures-*.parquet`` never see a partial file. Rows are not deduplicated: the first exposure of
a user is ``min(time)`` per (user, experiment) at analysis time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from muse.core.atomic_write import atomic_file
from serving.experiments.assignment import Assignment
from serving.exposure_log_config import ExposureLogConfig

LOGGER = logging.getLogger(__name__)
FILE_GLOB = "exposures-*.parquet"
SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "layer": pl.String(),
    "experiment": pl.String(),
    "variant": pl.String(),
    "bundle": pl.String(),
    "bucket": pl.Int32(),
    "time": pl.Datetime("ms", "UTC"),
}


class ExposureLog:
    """Buffered, thread-safe parquet appender of experiment exposures (enrolled users only)."""

    def __init__(self, config: ExposureLogConfig) -> None:
        self.config = config
        self.directory = Path(config.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file_prefix = (
            f"exposures-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
        )
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._rows: dict[str, list[object]] = {name: [] for name in SCHEMA}
        self._buffered = 0
        self._sequence = 0
        self.written_rows = 0
        self.dropped_rows = 0
        self._closed = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flush_loop, name="exposure-log", daemon=True)
        self._thread.start()

    def record(
        self, user_id: int, assignments: Iterable[Assignment], time_unix_ms: int | None = None
    ) -> None:
        """Buffer one row per enrolled assignment of ``user_id`` (default time: now)."""
        enrolled = [a for a in assignments if a.experiment is not None]
        if not enrolled:
            return
        stamp = time.time_ns() // 1_000_000 if time_unix_ms is None else int(time_unix_ms)
        with self._lock:
            if self._closed:
                raise RuntimeError("exposure log is closed")
            if self._buffered + len(enrolled) > self.config.max_buffered_rows:
                self.dropped_rows += len(enrolled)
                return
            rows = self._rows
            for assignment in enrolled:
                rows["user_id"].append(int(user_id))
                rows["layer"].append(assignment.layer)
                rows["experiment"].append(assignment.experiment)
                rows["variant"].append(assignment.variant)
                rows["bundle"].append(assignment.bundle)
                rows["bucket"].append(assignment.bucket)
                rows["time"].append(stamp)
            self._buffered += len(enrolled)
            full = self._buffered >= self.config.flush_rows
        if full:
            self._wake.set()

    def flush(self) -> Path | None:
        """Write every buffered row to a new parquet file now; returns it (None when empty)."""
        with self._write_lock:
            with self._lock:
                rows, count = self._rows, self._buffered
                self._rows = {name: [] for name in SCHEMA}
                self._buffered = 0
            if count == 0:
                return None
            self._sequence += 1
            target = self.directory / f"{self._file_prefix}-{self._sequence:06d}.parquet"
            try:
                # Times are buffered as epoch milliseconds and typed on write.
                frame = pl.DataFrame(rows, schema={**SCHEMA, "time": pl.Int64()}).with_columns(
                    pl.col("time").cast(SCHEMA["time"])
                )
                with atomic_file(target) as staging:
                    frame.write_parquet(staging)
            except Exception:
                with self._lock:
                    self.dropped_rows += count
                raise
            with self._lock:
                self.written_rows += count
            return target

    def close(self) -> None:
        """Stop the background writer and write what is left. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self.flush()

    def __enter__(self) -> ExposureLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.flush_interval_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
            except Exception:
                # The rows are counted as dropped; the server keeps serving.
                LOGGER.exception("exposure log: writing a parquet file failed")


def read_exposures(directory: str | Path) -> pl.DataFrame:
    """Every exposure row written under ``directory`` (empty frame with the schema when none)."""
    files = sorted(Path(directory).glob(FILE_GLOB))
    if not files:
        return pl.DataFrame(schema=SCHEMA)
    return pl.concat([pl.read_parquet(path) for path in files])
