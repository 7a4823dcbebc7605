"""Paths and writers for the data-layer tests' input files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

TAOBAO_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "taobao_mm_demo"


def write_table(path: Path, columns: dict[str, Any], schema: dict[str, Any] | None = None) -> Path:
    """Write a small table as parquet or CSV, chosen by the path's suffix."""
    frame = pl.DataFrame(columns, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path
