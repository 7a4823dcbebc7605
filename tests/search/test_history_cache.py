"""The per-user history cache: hits, version invalidation, LRU by bytes, thread safety, search_user."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from benchmarks.gsu import search_user
from muse.core.ids import FIRST_ID_INDEX
from muse.search import EmbeddingTable
from muse.search.embedding_table import searchable_mask
from muse.search.history_cache import HistoryCache, HistoryCacheConfig
from muse.search.prepared_history import PreparedHistory, prepare_from_table
from muse.search.reference import reference_top_k
from tests.search.search_checks import assert_same_top_k


@pytest.fixture(scope="module")
def table() -> EmbeddingTable:
    rng = np.random.default_rng(41)
    array = rng.integers(-127, 128, size=(5000, 32), dtype=np.int8)
    array[:2] = 0
    return EmbeddingTable(array, 1 / 127)


def history(table: EmbeddingTable, length: int, seed: int) -> tuple[torch.Tensor, PreparedHistory]:
    # Distinct items: a prepared history's size depends on how many distinct items it holds.
    generator = torch.Generator().manual_seed(seed)
    items = FIRST_ID_INDEX + torch.randperm(table.num_rows - FIRST_ID_INDEX, generator=generator)
    items = items[:length]
    return items, prepare_from_table(table, items)


def test_search_user_matches_reference_and_hits_on_repeat(table: EmbeddingTable) -> None:
    cache = HistoryCache()
    items = torch.randint(0, table.num_rows, (3000,), generator=torch.Generator().manual_seed(1))
    candidates = torch.randn(12, 32, generator=torch.Generator().manual_seed(2))
    first = search_user(cache, "alice", 1, items, table, candidates, 50)
    second = search_user(cache, "alice", 1, items, table, candidates, 50)
    reference = reference_top_k(table, items[None], candidates[None], 50)
    assert_same_top_k(
        first, reference, table.gather(items)[None], searchable_mask(items)[None], candidates[None]
    )
    assert torch.equal(first.positions, second.positions)
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)
    assert stats.miss_seconds > 0 and stats.hit_seconds >= 0


def test_new_version_replaces_the_stale_history(table: EmbeddingTable) -> None:
    cache = HistoryCache()
    old_items = torch.tensor([5, 6, 7])
    new_items = torch.tensor([5, 6, 7, 8, 9])
    candidates = torch.from_numpy(table.array[[9]].astype(np.float32))
    before = search_user(cache, 7, "v1", old_items, table, candidates, 5)
    after = search_user(cache, 7, "v2", new_items, table, candidates, 5)
    assert int(before.mask.sum()) == 3 and int(after.mask.sum()) == 5
    assert int(after.positions[0, 0, 0]) == 4  # the appended behaviour is the candidate itself
    assert cache.get(7, "v1") is None and cache.get(7, "v2") is not None
    assert len(cache) == 1 and cache.stats().misses == 2


def test_least_recently_used_is_evicted_by_bytes(table: EmbeddingTable) -> None:
    _, one = history(table, 800, 3)
    cache = HistoryCache(HistoryCacheConfig(max_bytes=one.nbytes * 2 + one.nbytes // 2))
    for seed, user in enumerate(("a", "b")):
        cache.put(user, 0, history(table, 800, seed)[1])
    assert cache.get("a", 0) is not None  # touch a: b becomes the least recently used
    cache.put("c", 0, history(table, 800, 5)[1])
    assert cache.get("b", 0) is None
    assert cache.get("a", 0) is not None and cache.get("c", 0) is not None
    stats = cache.stats()
    assert stats.evictions == 1 and stats.bytes <= cache.config.max_bytes
    assert stats.bytes == 2 * one.nbytes
    # A history bigger than the whole budget is served but not cached.
    _, huge = history(table, 4000, 6)
    cache.put("d", 0, huge)
    assert cache.get("d", 0) is None and len(cache) == 2
    cache.invalidate("a")
    assert cache.get("a", 0) is None and cache.stats().bytes == one.nbytes


def test_concurrent_misses_prepare_once_and_all_threads_agree(table: EmbeddingTable) -> None:
    cache = HistoryCache()
    items = torch.randint(0, table.num_rows, (2000,), generator=torch.Generator().manual_seed(8))
    candidates = torch.randn(6, 32, generator=torch.Generator().manual_seed(9))
    prepared_count = 0
    count_lock = threading.Lock()
    start = threading.Barrier(8)

    def prepare() -> PreparedHistory:
        nonlocal prepared_count
        with count_lock:
            prepared_count += 1
        return prepare_from_table(table, items)

    def request(user: int) -> torch.Tensor:
        start.wait()
        history_, _ = cache.get_or_prepare(user % 2, 0, prepare)
        return search_user(cache, user % 2, 0, items, table, candidates, 20).positions

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(request, range(8)))
    assert prepared_count == 2  # one per distinct user, despite 4 concurrent requests each
    assert all(torch.equal(r, results[0]) for r in results)
    stats = cache.stats()
    assert stats.misses == 2 and stats.hits == 14


def test_failed_preparation_is_not_cached_and_does_not_block(table: EmbeddingTable) -> None:
    cache = HistoryCache()

    def broken() -> PreparedHistory:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        cache.get_or_prepare("u", 0, broken)
    history_, hit = cache.get_or_prepare("u", 0, lambda: history(table, 50, 1)[1])
    assert not hit and history_.length == 50
