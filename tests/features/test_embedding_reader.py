"""Item embeddings from parquet or .npy (+ ids), any width, aligned to the vocabulary, memory-mapped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.embedding_reader import (
    EmbeddingSourceConfig,
    EmbeddingStorage,
    read_embedding_ids,
    read_item_embeddings,
)
from features.vocabulary import Vocabulary
from tests.dataset_factory import RawDataset

TableWriter = Callable[..., Path]


def _read(source: EmbeddingSourceConfig, vocabulary: Vocabulary) -> tuple[np.ndarray, float]:
    ids = read_embedding_ids(source)
    table, scale = read_item_embeddings(source, vocabulary)
    assert ids.dtype == np.int64
    return table, scale


@pytest.mark.parametrize("dim", [1, 3, 7])
def test_parquet_int8_stays_int8_and_aligns_to_vocabulary(
    table_writer: TableWriter, dim: int
) -> None:
    vectors = np.arange(4 * dim, dtype=np.int8).reshape(4, dim) - 5
    path = table_writer(
        "emb.parquet",
        {"item_id": [40, -3, 17, 99], "embedding": vectors.tolist()},
        schema={"item_id": pl.Int64, "embedding": pl.List(pl.Int8)},
    )
    # 99 has an embedding but is not in the vocabulary; 5 is in the vocabulary without one.
    vocabulary = Vocabulary.from_ids(np.array([-3, 5, 17, 40]))
    table, scale = _read(EmbeddingSourceConfig(path=path, batch_rows=2), vocabulary)
    assert table.dtype == np.int8 and table.shape == (6, dim) and scale == pytest.approx(1 / 127)
    index = vocabulary.lookup(np.array([40, -3, 17, 5]))
    assert np.array_equal(table[index[:3]], vectors[:3])
    assert not table[index[3]].any() and not table[:2].any()


def test_parquet_floats_become_float16_or_normalised_int8(table_writer: TableWriter) -> None:
    vectors = np.array([[3.0, 4.0], [0.0, -2.0], [0.0, 0.0]])
    path = table_writer("emb.parquet", {"item_id": [1, 2, 3], "vec": vectors.tolist()})
    vocabulary = Vocabulary.from_ids(np.array([1, 2, 3]))
    half, scale = _read(EmbeddingSourceConfig(path=path, vector_column="vec"), vocabulary)
    assert half.dtype == np.float16 and scale == 1.0
    assert half[2:].astype(np.float64).tolist() == vectors.tolist()
    quantised, scale = _read(
        EmbeddingSourceConfig(path=path, vector_column="vec", storage=EmbeddingStorage.INT8),
        vocabulary,
    )
    assert quantised.dtype == np.int8 and scale == pytest.approx(1 / 127)
    # (3, 4) normalises to (0.6, 0.8): round(0.6 * 127) = 76, round(0.8 * 127) = 102.
    assert quantised[2:].tolist() == [[76, 102], [0, -127], [0, 0]]


def test_npy_with_npy_or_parquet_ids(tmp_path: Path, table_writer: TableWriter) -> None:
    vectors = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    np.save(tmp_path / "vectors.npy", vectors)
    np.save(tmp_path / "ids.npy", np.array([9, 8, 7, 6, 5], dtype=np.int32))
    table_writer("ids.parquet", {"item_id": [9, 8, 7, 6, 5]})
    vocabulary = Vocabulary.from_ids(np.arange(5, 10))
    for ids_path in (tmp_path / "ids.npy", tmp_path / "ids.parquet"):
        source = EmbeddingSourceConfig(
            path=tmp_path / "vectors.npy", ids_path=ids_path, batch_rows=2
        )
        table, _ = _read(source, vocabulary)
        assert np.allclose(table[vocabulary.lookup(np.array([9, 5]))], vectors[[0, 4]], atol=2e-3)
    int8_to_half = EmbeddingSourceConfig(
        path=tmp_path / "q.npy", ids_path=tmp_path / "ids.npy", storage=EmbeddingStorage.FLOAT16
    )
    np.save(tmp_path / "q.npy", np.full((5, 2), 127, dtype=np.int8))
    table, scale = _read(int8_to_half, vocabulary)
    assert table.dtype == np.float16 and scale == 1.0 and table[2:].tolist() == [[1.0, 1.0]] * 5


def test_written_table_is_memory_mapped(tmp_path: Path, table_writer: TableWriter) -> None:
    path = table_writer(
        "emb.parquet",
        {"item_id": [1, 2], "embedding": [[1, 2, 3], [4, 5, 6]]},
        schema={"item_id": pl.Int64, "embedding": pl.List(pl.Int8)},
    )
    item_ids = np.array([1, 2])
    vocabulary = Vocabulary.from_ids(item_ids)
    table, scale = _read(EmbeddingSourceConfig(path=path), vocabulary)
    rows = table[vocabulary.lookup(item_ids)]
    dataset = RawDataset(item_ids=item_ids, item_embeddings=rows, embedding_scale=scale).write(
        tmp_path / "dataset"
    )
    assert isinstance(dataset.item_embeddings, np.memmap)
    assert dataset.item_embeddings[3].tolist() == [4, 5, 6]
