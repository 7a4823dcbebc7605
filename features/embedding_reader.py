"""Item embeddings from parquet (id + list column) or .npy (+ an id file), aligned to the item vocabulary.

The result is an (V, D) table whose row i belongs to item index i (rows 0, 1 and items without an
embedding stay zero), stored int8 with a scale or float16, ready for ``write_dataset`` (which saves
it as a memory-mappable ``.npy``). Sources are read in batches, so a large file never sits in RAM
twice. Float rows stored as int8 are first L2-normalised (consumers normalise anyway), then
quantised as round(x * 127), so the scale is 1/127 like Taobao-MM's.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.input_table import (
    ColumnKind,
    collect_checked,
    require_columns,
    require_rows_without_nulls,
    require_unique,
    scan_table,
)
from features.vocabulary import Vocabulary
from muse.core.errors import DataError
from muse.core.ids import OOV_INDEX

INT8_STEPS = 127


class EmbeddingStorage(enum.Enum):
    """How the table is stored: ``auto`` keeps int8 sources int8 and stores floats as float16."""

    AUTO = "auto"
    INT8 = "int8"
    FLOAT16 = "float16"


@dataclass(frozen=True)
class EmbeddingSourceConfig:
    """Where item embeddings come from.

    ``path`` is a parquet file (``id_column`` + ``vector_column``, a list of int8 or floats per row)
    or a ``.npy`` (N, D) array whose ids are in ``ids_path`` (a 1-D integer ``.npy`` or a parquet
    file with ``id_column``). ``int8_scale`` is the value of one int8 step of an int8 source.
    """

    path: Path
    ids_path: Path | None = None
    id_column: str = "item_id"
    vector_column: str = "embedding"
    storage: EmbeddingStorage = EmbeddingStorage.AUTO
    int8_scale: float = 1.0 / INT8_STEPS
    dim: int | None = None
    batch_rows: int = 65_536

    def __post_init__(self) -> None:
        if self.int8_scale <= 0:
            raise ValueError("int8_scale must be positive")
        if self.batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")


class ItemEmbeddings(NamedTuple):
    """(V, D) int8 or float16 table aligned to the item vocabulary, and the value of one unit."""

    table: np.ndarray
    scale: float


def read_embedding_ids(source: EmbeddingSourceConfig) -> np.ndarray:
    """The (N,) int64 item ids that have an embedding; null or duplicate ids are DataErrors."""
    if _is_npy(source.path):
        ids, ids_path = _npy_ids(source)
        _npy_vectors(source, expected_rows=ids.size)
        column = source.id_column if ids_path.suffix != ".npy" else "ids"
        require_unique(ids, ids_path, column, "item")
        return ids
    frame = scan_table(source.path)
    require_columns(
        frame,
        source.path,
        {source.id_column: ColumnKind.INTEGER, source.vector_column: ColumnKind.NUMBER_LIST},
    )
    require_rows_without_nulls(frame, source.path, [source.id_column, source.vector_column])
    id_frame = collect_checked(frame.select(pl.col(source.id_column).cast(pl.Int64)), source.path)
    parquet_ids = id_frame[source.id_column].to_numpy()
    require_unique(parquet_ids, source.path, source.id_column, "item")
    return parquet_ids


def read_item_embeddings(
    source: EmbeddingSourceConfig, item_vocabulary: Vocabulary
) -> ItemEmbeddings:
    """Read every embedding into a table aligned to ``item_vocabulary`` (ids it lacks are skipped).

    Call :func:`read_embedding_ids` first (it validates ids); this reads the vectors in batches and
    raises DataError on rows of the wrong length, null vectors or a non-numeric element type.
    """
    blocks = _npy_blocks(source) if _is_npy(source.path) else _parquet_blocks(source)
    table: np.ndarray | None = None
    scale = 1.0
    for ids, vectors in blocks:
        if table is None:
            dtype, scale = _storage(vectors.dtype, source)
            table = np.zeros((len(item_vocabulary), vectors.shape[1]), dtype=dtype)
        rows = item_vocabulary.lookup(ids)
        known = rows != OOV_INDEX
        table[rows[known]] = _convert(vectors[known], table.dtype, source)
    if table is None:
        raise DataError(source.path, "file is empty (no embeddings)")
    return ItemEmbeddings(table=table, scale=scale)


def _is_npy(path: Path) -> bool:
    return Path(path).suffix == ".npy"


def _storage(source_dtype: np.dtype, source: EmbeddingSourceConfig) -> tuple[np.dtype, float]:
    int8_source = source_dtype == np.int8
    if source.storage is EmbeddingStorage.INT8 or (
        source.storage is EmbeddingStorage.AUTO and int8_source
    ):
        return np.dtype(np.int8), source.int8_scale if int8_source else 1.0 / INT8_STEPS
    return np.dtype(np.float16), 1.0


def _convert(vectors: np.ndarray, dtype: np.dtype, source: EmbeddingSourceConfig) -> np.ndarray:
    if vectors.dtype == np.int8:
        if dtype == np.int8:
            return vectors
        return (vectors.astype(np.float32) * source.int8_scale).astype(np.float16)
    if dtype == np.float16:
        return vectors.astype(np.float16)
    floats = vectors.astype(np.float32)
    norms = np.linalg.norm(floats, axis=1, keepdims=True)
    unit = np.divide(floats, norms, out=np.zeros_like(floats), where=norms > 0)
    return np.clip(np.rint(unit * INT8_STEPS), -INT8_STEPS, INT8_STEPS).astype(np.int8)


def _check_element_dtype(dtype: np.dtype, path: Path, column: str | None) -> None:
    if dtype != np.int8 and not np.issubdtype(dtype, np.floating):
        raise DataError(
            path, f"wrong dtype: embedding values must be int8 or float, got {dtype}", column=column
        )


def _check_dim(dim: int, source: EmbeddingSourceConfig, column: str | None) -> None:
    if source.dim is not None and dim != source.dim:
        raise DataError(
            source.path, f"embedding rows have length {dim}, expected {source.dim}", column=column
        )
    if dim == 0:
        raise DataError(source.path, "embedding rows are empty (length 0)", column=column)


def _parquet_blocks(source: EmbeddingSourceConfig) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    path, column = source.path, source.vector_column
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise DataError(path, f"cannot read: {error}") from error
    dim = None
    seen = 0
    for batch in parquet.iter_batches(
        batch_size=source.batch_rows, columns=[source.id_column, column]
    ):
        ids = batch.column(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        lists = batch.column(1)
        if lists.null_count:
            raise DataError(path, f"{lists.null_count} null embedding row(s)", column=column)
        lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
        if dim is None:
            dim = int(lengths[0])
            _check_dim(dim, source, column)
        wrong = np.flatnonzero(lengths != dim)
        if wrong.size:
            row = seen + int(wrong[0])
            raise DataError(
                path,
                f"embedding row {row} (id {int(ids[wrong[0]])}) has length {int(lengths[wrong[0]])}, "
                f"expected {dim} like the first row",
                column=column,
            )
        values = lists.flatten()
        if values.null_count:
            raise DataError(path, "embedding vectors hold null values", column=column)
        flat = values.to_numpy(zero_copy_only=False)
        _check_element_dtype(flat.dtype, path, column)
        seen += batch.num_rows
        yield ids, flat.reshape(batch.num_rows, dim)


def _npy_ids(source: EmbeddingSourceConfig) -> tuple[np.ndarray, Path]:
    if source.ids_path is None:
        raise DataError(
            source.path, "a .npy embedding file needs ids_path (a .npy or parquet of item ids)"
        )
    ids_path = Path(source.ids_path)
    if _is_npy(ids_path):
        ids = _load_npy(ids_path)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise DataError(
                ids_path,
                f"wrong dtype: ids must be a 1-D integer array, got {ids.dtype} {ids.shape}",
            )
        if ids.size == 0:
            raise DataError(ids_path, "file is empty (no ids)")
        return np.asarray(ids, dtype=np.int64), ids_path
    frame = scan_table(ids_path)
    require_columns(frame, ids_path, {source.id_column: ColumnKind.INTEGER})
    require_rows_without_nulls(frame, ids_path, [source.id_column])
    ids_frame = collect_checked(frame.select(pl.col(source.id_column).cast(pl.Int64)), ids_path)
    return ids_frame[source.id_column].to_numpy(), ids_path


def _npy_vectors(source: EmbeddingSourceConfig, expected_rows: int) -> np.ndarray:
    vectors = _load_npy(source.path)
    if vectors.ndim != 2:
        raise DataError(
            source.path, f"embeddings must be a 2-D (N, D) array, got shape {vectors.shape}"
        )
    _check_element_dtype(vectors.dtype, source.path, None)
    _check_dim(int(vectors.shape[1]), source, None)
    if vectors.shape[0] != expected_rows:
        raise DataError(
            source.path,
            f"holds {vectors.shape[0]} embedding rows but the id file holds {expected_rows} ids",
        )
    return vectors


def _npy_blocks(source: EmbeddingSourceConfig) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    ids, _ = _npy_ids(source)
    vectors = _npy_vectors(source, expected_rows=ids.size)
    for start in range(0, ids.size, source.batch_rows):
        stop = start + source.batch_rows
        yield ids[start:stop], np.asarray(vectors[start:stop])


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(path, f"cannot read as .npy: {error}") from error
