"""Backend selection in one place; the CUDA path is exercised only where a GPU is present."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from benchmarks.gsu import search_user, top_k_gathered
from muse.search import EmbeddingTable
from muse.search.cosine_top_k import top_k
from muse.search.device import SearchBackend, hardware_info, select_backend
from muse.search.embedding_table import searchable_mask
from muse.search.history_cache import HistoryCache
from muse.search.native_library import build_native_library, load_native_library, native_cache_dir
from muse.search.reference import reference_top_k, reference_top_k_gathered
from tests.search.search_checks import assert_same_top_k


def test_cpu_uses_the_native_kernels_when_they_load() -> None:
    info = hardware_info()
    expected = SearchBackend.NATIVE_CPU if info.native_kernels else SearchBackend.TORCH
    assert select_backend("cpu") is expected
    assert select_backend(None) is expected
    assert select_backend("cuda:0") is SearchBackend.TORCH
    assert info.threads == torch.get_num_threads()


def test_environment_forces_the_torch_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSE_GSU_BACKEND", "torch")
    assert select_backend("cpu") is SearchBackend.TORCH
    monkeypatch.setenv("MUSE_GSU_BACKEND", "no-such-backend")
    with pytest.raises(ValueError):
        select_backend("cpu")


def test_disabled_kernels_fall_back_to_torch_in_a_fresh_process() -> None:
    code = (
        "from muse.search.device import select_backend; "
        "from muse.search.native_library import load_native_library; "
        "print(load_native_library() is None, select_backend('cpu').value)"
    )
    env = {**os.environ, "MUSE_GSU_DISABLE_NATIVE": "1"}
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert output == ["True", "torch"]


@pytest.mark.skipif(load_native_library() is None, reason="native kernels unavailable here")
def test_native_build_is_cached_by_source_hash() -> None:
    path = build_native_library()
    assert path.parent == native_cache_dir() and path.exists()
    assert build_native_library() == path  # a second call reuses the build


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_search_matches_the_reference() -> None:
    rng = np.random.default_rng(3)
    array = rng.integers(-127, 128, size=(20_000, 64), dtype=np.int8)
    array[:2] = 0
    table = EmbeddingTable(array, 1 / 127)
    generator = torch.Generator().manual_seed(3)
    items = torch.randint(0, table.num_rows, (3, 5000), generator=generator)
    candidates = torch.randn(3, 40, 64, generator=generator)
    reference = reference_top_k(table, items, candidates, 50)
    history = table.gather(items)
    fast = top_k(table, items.cuda(), candidates.cuda(), 50)
    assert fast.positions.device.type == "cuda"
    fast_cpu = type(fast)(*(t.cpu() for t in fast))
    assert_same_top_k(fast_cpu, reference, history, searchable_mask(items), candidates)
    gathered = top_k_gathered(history.cuda(), searchable_mask(items).cuda(), candidates.cuda(), 50)
    gathered_reference = reference_top_k_gathered(history, searchable_mask(items), candidates, 50)
    gathered_cpu = type(gathered)(*(t.cpu() for t in gathered))
    assert_same_top_k(gathered_cpu, gathered_reference, history, searchable_mask(items), candidates)
    cache = HistoryCache()
    served = search_user(cache, "u", 0, items[0], table, candidates[0].cuda(), 50, device="cuda")
    assert cache.get("u", 0).device.type == "cuda"
    served_cpu = type(served)(*(t.cpu() for t in served))
    single = reference_top_k(table, items[:1], candidates[:1], 50)
    assert_same_top_k(served_cpu, single, history[:1], searchable_mask(items[:1]), candidates[:1])
