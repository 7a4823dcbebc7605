"""Histories that repeat items: each distinct item is packed once and stands for all its positions,
and the search still returns the reference's exact top-K over positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from muse.core.ids import FIRST_ID_INDEX
from muse.search import EmbeddingTable
from muse.search.cosine_top_k import top_k, top_k_prepared
from muse.search.embedding_table import searchable_mask
from muse.search.native_library import load_native_library
from muse.search.prepared_history import DistinctItems, prepare_from_table
from muse.search.reference import reference_top_k
from tests.search.search_checks import assert_same_top_k

pytestmark = pytest.mark.skipif(load_native_library() is None, reason="needs the native kernels")


def make_table(num_rows: int, dim: int, seed: int) -> EmbeddingTable:
    rng = np.random.default_rng(seed)
    array = rng.integers(-127, 128, size=(num_rows, dim), dtype=np.int8)
    array[:FIRST_ID_INDEX] = 0
    return EmbeddingTable(array, 1 / 127)


def zipf_history(num_rows: int, length: int, seed: int, exponent: float = 1.1) -> torch.Tensor:
    """Popular items repeat, as in lifelong logs; a few padding/OOV entries are mixed in."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, num_rows - FIRST_ID_INDEX + 1, dtype=np.float64)
    weights = ranks**-exponent
    items = FIRST_ID_INDEX + rng.choice(ranks.size, size=length, p=weights / weights.sum())
    items[rng.random(length) < 0.02] = rng.integers(0, FIRST_ID_INDEX)
    return torch.from_numpy(items.astype(np.int64))


def check(table: EmbeddingTable, items: torch.Tensor, candidates: torch.Tensor, k: int) -> None:
    prepared = prepare_from_table(table, items)
    fast = top_k_prepared(prepared, candidates, k)
    reference = reference_top_k(table, items[None], candidates[None], k)
    assert_same_top_k(
        fast, reference, table.gather(items)[None], searchable_mask(items)[None], candidates[None]
    )


def test_distinct_items_group_positions_in_order() -> None:
    items = np.array([7, 0, 5, 7, 1, 9, 5, 7], dtype=np.int64)
    distinct = DistinctItems.of(items)
    assert distinct.items.tolist() == [5, 7, 9]
    assert distinct.offsets.tolist() == [0, 2, 5, 6]
    assert distinct.positions.tolist() == [2, 6, 0, 3, 7, 5]
    assert distinct.repeats
    assert not DistinctItems.of(np.array([3, 4, 0], dtype=np.int64)).repeats
    empty = DistinctItems.of(np.array([0, 1, 1], dtype=np.int64))
    assert empty.items.size == 0 and empty.offsets.tolist() == [0]


@pytest.mark.parametrize(
    ("length", "num_candidates", "k"),
    [(300, 9, 50), (3000, 40, 50), (3000, 2, 20), (20_000, 3, 64), (20_000, 70, 50), (500, 5, 1)],
)
def test_zipf_histories_match_reference(length: int, num_candidates: int, k: int) -> None:
    table = make_table(4000, 64, length + num_candidates)
    items = zipf_history(table.num_rows, length, length * 3 + k)
    assert np.unique(items.numpy()).size < 0.8 * length  # the repeats are real
    generator = torch.Generator().manual_seed(length + k)
    # Half the candidates are history items themselves: their own copies are the top hits.
    picked = items[torch.randint(0, length, (num_candidates // 2,), generator=generator)]
    own = torch.from_numpy(table.array[picked.numpy()].astype(np.float32))
    drawn = torch.randn(num_candidates - own.shape[0], 64, generator=generator)
    check(table, items, torch.cat([own, drawn]), k)


def test_one_item_repeated_beyond_k_returns_its_earliest_positions() -> None:
    table = make_table(500, 32, 3)
    items = torch.full((400,), 17, dtype=torch.int64)
    items[::7] = torch.arange(100, 158)  # other items at every 7th position
    candidate = torch.from_numpy(table.array[[17]].astype(np.float32))
    result = top_k_prepared(prepare_from_table(table, items), candidate, 10)
    expected = torch.nonzero(items == 17).squeeze(1)[:10]
    assert torch.equal(result.positions[0, 0], expected)
    torch.testing.assert_close(result.cosines[0, 0], torch.ones(10), atol=1e-6, rtol=0)


def test_fewer_searchable_positions_than_k_are_all_returned() -> None:
    table = make_table(200, 16, 5)
    items = torch.tensor([0, 9, 1, 9, 12, 9, 0], dtype=torch.int64)
    candidates = torch.randn(6, 16, generator=torch.Generator().manual_seed(5))
    check(table, items, candidates, 8)
    result = top_k_prepared(prepare_from_table(table, items), candidates, 8)
    assert result.mask.sum(-1).tolist() == [[4] * 6]


def test_batched_training_search_over_repeated_histories() -> None:
    table = make_table(3000, 48, 11)
    items = torch.stack([zipf_history(table.num_rows, 2500, seed) for seed in range(3)])
    candidates = torch.randn(3, 12, 48, generator=torch.Generator().manual_seed(11))
    fast = top_k(table, items, candidates, 30)
    reference = reference_top_k(table, items, candidates, 30)
    assert_same_top_k(fast, reference, table.gather(items), searchable_mask(items), candidates)


def test_repeats_shrink_the_prepared_history() -> None:
    table = make_table(4000, 64, 13)
    repeated = zipf_history(table.num_rows, 10_000, 13)
    distinct = FIRST_ID_INDEX + torch.randperm(3000, generator=torch.Generator().manual_seed(13))
    packed_repeated = prepare_from_table(table, repeated)
    packed_distinct = prepare_from_table(table, distinct)
    assert packed_repeated.codes is not None and packed_distinct.codes is not None
    rows = int(np.unique(repeated.numpy()[repeated.numpy() >= FIRST_ID_INDEX]).size)
    assert packed_repeated.codes.shape[0] * 8 == -(-rows // 8) * 8
    assert packed_repeated.weight is not None and packed_distinct.weight is None
    assert int(packed_repeated.weight.sum()) == int((repeated >= FIRST_ID_INDEX).sum())


def test_history_split_across_threads_merges_weighted_heaps() -> None:
    # Enough distinct rows that few candidates split the history into ranges (one per thread).
    table = make_table(120_000, 128, 17)
    items = zipf_history(table.num_rows, 90_000, 17, exponent=0.4)
    generator = torch.Generator().manual_seed(17)
    picked = items[torch.randint(0, items.numel(), (2,), generator=generator)]
    candidates = torch.cat(
        [torch.from_numpy(table.array[picked.numpy()].astype(np.float32)), torch.randn(1, 128)]
    )
    check(table, items, candidates, 50)
