"""EmbeddingTable.cosines and gather against the plain reference (normalised rows, einsum)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from muse.search.embedding_table import EmbeddingTable, normalize_rows
from muse.search.row_cosines import row_cosines, window_cosines


@pytest.mark.parametrize("dtype", [np.int8, np.float16, np.float32])
@pytest.mark.parametrize("shape", [(3, 7), (1, 1), (4, 0)])
def test_cosines_match_reference(dtype: type, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(40, 12)) * (60 if dtype is np.int8 else 1)).astype(dtype)
    array[:2] = 0  # padding and OOV rows are zero: their cosine is 0, not NaN
    table = EmbeddingTable(array, scale=1 / 127)
    indices = torch.from_numpy(rng.integers(0, 40, shape))
    queries = normalize_rows(torch.from_numpy(rng.normal(size=(shape[0], 12)).astype(np.float32)))
    reference = torch.einsum("bd,bnd->bn", queries, table.gather_normalized(indices))
    fast = table.cosines(indices, queries)
    assert fast.shape == shape and fast.dtype == torch.float32
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)
    assert torch.all(fast[indices < 2] == 0)


def test_gather_equals_numpy_rows_of_a_memory_mapped_table(tmp_path) -> None:
    rng = np.random.default_rng(1)
    np.save(tmp_path / "table.npy", rng.integers(-127, 128, (30, 8), dtype=np.int8))
    array = np.load(tmp_path / "table.npy", mmap_mode="r")
    indices = torch.from_numpy(rng.integers(0, 30, (5, 6)))
    rows = EmbeddingTable(array).gather(indices)
    assert rows.shape == (5, 6, 8) and rows.dtype == torch.float32
    assert np.array_equal(rows.numpy(), array[indices.numpy()].astype(np.float32))
    with pytest.raises(IndexError):
        EmbeddingTable(array).gather(torch.tensor([30]))


@pytest.mark.parametrize("dtype", [np.int8, np.float16, np.float32])
@pytest.mark.parametrize("shape", [(5, 9), (2, 1), (3, 0), (64, 50)])
def test_row_cosines_match_the_table_reference(dtype: type, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(2)
    array = (rng.normal(size=(60, 16)) * (60 if dtype is np.int8 else 1)).astype(dtype)
    array[:2] = 0
    array[50:] = 0  # items without an embedding: searchable, cosine 0
    table = EmbeddingTable(array, scale=1 / 127)
    items = torch.from_numpy(rng.integers(0, 60, shape))
    if shape[1]:
        items[0, : shape[1] // 2] = 0  # left padding
    queries = normalize_rows(torch.from_numpy(rng.normal(size=(shape[0], 16)).astype(np.float32)))
    reference = table.cosines(items, queries).masked_fill(items < 2, 0.0)
    fast = row_cosines(table, items, queries)
    assert fast.shape == shape and fast.dtype == torch.float32
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.int8, np.float16, np.float32])
@pytest.mark.parametrize("shape", [(1, 9, 7), (2, 3, 1), (1, 4, 0), (3, 200, 50)])
def test_window_cosines_equal_row_cosines_on_the_repeated_window(
    dtype: type, shape: tuple[int, int, int]
) -> None:
    batch, count, width = shape
    rng = np.random.default_rng(3)
    array = (rng.normal(size=(60, 16)) * (60 if dtype is np.int8 else 1)).astype(dtype)
    array[:2] = 0
    array[50:] = 0
    table = EmbeddingTable(array, scale=1 / 127)
    items = torch.from_numpy(rng.integers(0, 60, (batch, width)))
    if width:
        items[0, : width // 2] = 0  # left padding
        items[-1, -1] = 1  # OOV
    queries = normalize_rows(
        torch.from_numpy(rng.normal(size=(batch, count, 16)).astype(np.float32))
    )
    repeated = items[:, None].expand(batch, count, width).reshape(batch * count, width)
    expected = row_cosines(table, repeated, queries.reshape(batch * count, 16))
    shared = window_cosines(table, items, queries)
    assert shared.shape == shape and shared.dtype == torch.float32
    torch.testing.assert_close(shared.reshape(batch * count, width), expected, rtol=1e-5, atol=1e-6)
    assert torch.all(shared[(items < 2)[:, None].expand(shape)] == 0)
