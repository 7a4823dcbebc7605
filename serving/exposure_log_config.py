"""Configuration of the exposure log (who saw which experiment variant, when)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ExposureLogConfig:
    """Where exposure parquet files go and how often they are written."""

    directory: Path
    # A file is written once this many rows are buffered ...
    flush_rows: int = 10_000
    # ... or this many seconds after the previous write, whichever comes first.
    flush_interval_seconds: float = 10.0
    # Rows beyond this are dropped (and counted) so a stuck disk cannot exhaust memory.
    max_buffered_rows: int = 1_000_000

    def __post_init__(self) -> None:
        if self.flush_rows < 1 or self.max_buffered_rows < self.flush_rows:
            raise ValueError("need 1 <= flush_rows <= max_buffered_rows")
        if self.flush_interval_seconds <= 0:
            raise ValueError("flush_interval_seconds must be positive")
