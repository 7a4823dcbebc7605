"""A user's input table (parquet or CSV, file or directory), opened lazily and checked.

Every way an input table can be unusable (missing, unreadable, empty, a missing column, a column
of the wrong type, null or duplicate ids) becomes a :class:`DataError` naming the file, the column
and the problem, before any output is written.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import polars as pl

from features.vocabulary import sorted_unique
from muse.core.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)


class ColumnKind(enum.Enum):
    """What a column must hold; checked against the table's schema."""

    INTEGER = "integer"
    NUMBER = "number"
    TIMESTAMP = "timestamp (integer, date, datetime or string)"
    ANY = "any"
    INTEGER_LIST = "list of integers"
    NUMBER_LIST = "list of numbers"


def scan_table(path: str | Path) -> pl.LazyFrame:
    """Lazy frame over a parquet or CSV file, or over every parquet (else CSV) file in a directory."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    if path.is_dir():
        parquet_files = sorted(p for p in path.iterdir() if p.suffix in PARQUET_SUFFIXES)
        csv_files = sorted(p for p in path.iterdir() if p.suffix in CSV_SUFFIXES)
        if parquet_files:
            return pl.scan_parquet(parquet_files)
        if csv_files:
            return pl.concat([pl.scan_csv(p) for p in csv_files], how="vertical")
        raise DataError(path, "directory holds no .parquet or .csv files")
    if path.suffix in PARQUET_SUFFIXES:
        return pl.scan_parquet(path)
    if path.suffix in CSV_SUFFIXES:
        return pl.scan_csv(path)
    raise DataError(path, f"unsupported file type {path.suffix!r}; expected .parquet or .csv")


def collect_checked(frame: pl.LazyFrame, path: str | Path, streaming: bool = True) -> pl.DataFrame:
    """Collect ``frame``; a read or parse failure becomes a DataError naming ``path``."""
    try:
        return frame.collect(engine="streaming" if streaming else "auto")
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DataError(path, f"cannot read: {_first_line(error)}") from error


def table_schema(frame: pl.LazyFrame, path: str | Path) -> pl.Schema:
    """The table's schema; an unreadable or empty (zero-byte) file is a DataError."""
    try:
        return frame.collect_schema()
    except pl.exceptions.NoDataError as error:
        raise DataError(path, "file is empty") from error
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DataError(path, f"cannot read: {_first_line(error)}") from error


def require_columns(
    frame: pl.LazyFrame, path: str | Path, columns: Mapping[str, ColumnKind]
) -> pl.Schema:
    """Check that every named column exists and holds the required kind; returns the schema."""
    schema = table_schema(frame, path)
    for name, kind in columns.items():
        if name not in schema:
            raise DataError(
                path,
                f"missing column (the table has {', '.join(schema.names()) or 'none'})",
                column=name,
            )
        dtype = schema[name]
        if not column_matches(dtype, kind):
            # A header-only CSV types every column as String: report the real problem.
            if collect_checked(frame.head(1), path, streaming=False).height == 0:
                raise DataError(path, "file is empty (no rows)")
            raise DataError(path, f"wrong dtype: expected {kind.value}, got {dtype}", column=name)
    return schema


def column_matches(dtype: pl.DataType, kind: ColumnKind) -> bool:
    """Whether a polars dtype satisfies a column kind."""
    if kind is ColumnKind.ANY:
        return True
    if kind is ColumnKind.INTEGER:
        return dtype.is_integer()
    if kind is ColumnKind.NUMBER:
        return dtype.is_numeric() or dtype == pl.Boolean
    if kind is ColumnKind.TIMESTAMP:
        return dtype.is_integer() or dtype in (pl.String, pl.Date) or isinstance(dtype, pl.Datetime)
    if isinstance(dtype, pl.List | pl.Array):
        inner = dtype.inner
        if kind is ColumnKind.INTEGER_LIST:
            return inner is not None and inner.is_integer()
        return inner is not None and inner.is_numeric()
    return False


def require_rows_without_nulls(
    frame: pl.LazyFrame, path: str | Path, columns: Iterable[str]
) -> int:
    """Row count of the table (one streaming pass); zero rows or a null in ``columns`` is a DataError."""
    columns = list(columns)
    counts = collect_checked(
        frame.select(pl.len().alias("__rows"), *[pl.col(c).null_count().alias(c) for c in columns]),
        path,
    ).row(0, named=True)
    if counts["__rows"] == 0:
        raise DataError(path, "file is empty (no rows)")
    for column in columns:
        if counts[column]:
            raise DataError(
                path, f"{counts[column]} null value(s); ids must not be null", column=column
            )
    return int(counts["__rows"])


def require_unique(ids: np.ndarray, path: str | Path, column: str, what: str) -> None:
    """Raise a DataError naming an example if ``ids`` holds a duplicate."""
    ordered = np.sort(ids, kind="stable")
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size:
        raise DataError(
            path,
            f"{sorted_unique(repeated).size} duplicate {what} id(s), e.g. {int(repeated[0])}",
            column=column,
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
