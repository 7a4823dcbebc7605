"""The AVX512-VNNI build of the GSU kernels returns exactly what the AVX2 build returns."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import muse.search.cosine_top_k as cosine_top_k
import muse.search.prepared_history as prepared_history
from muse.core.native_build import cpu_flags, load_native
from muse.search import EmbeddingTable
from muse.search import native_library as native
from muse.search.cosine_top_k import top_k, top_k_prepared
from muse.search.prepared_history import prepare_from_embeddings, prepare_from_table
from muse.search.search_result import SearchResult

needs_vnni = pytest.mark.skipif(
    not (native.cpu_supports_kernels() and native.cpu_supports_vnni()),
    reason="needs a CPU with AVX512-VNNI",
)


def searches_with(
    library: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch, seed: int
) -> list[SearchResult]:
    """Every native path (exact, two-pass, running heap, repeated rows, fp32 rows) on ``library``."""
    with monkeypatch.context() as patch:
        patch.setattr(cosine_top_k.native, "load_native_library", lambda: library)
        patch.setattr(prepared_history, "load_native_library", lambda: library)
        rng = np.random.default_rng(seed)
        array = rng.integers(-128, 128, size=(3_000, 64), dtype=np.int8)
        array[:2] = 0
        table = EmbeddingTable(array, 1 / 127)
        generator = torch.Generator().manual_seed(seed)
        results = []
        for length, count in ((900, 37), (6_000, 21), (400, 3)):
            items = torch.randint(0, table.num_rows, (length,), generator=generator)
            items[::7] = items[0]  # repeats: packed once, weighted
            queries = torch.randn(count, 64, generator=generator)
            results.append(top_k_prepared(prepare_from_table(table, items), queries, 50))
            results.append(top_k(table, items[None], queries[None], 50))
        rows = torch.randn(700, 64, generator=generator)
        searchable = torch.ones(700, dtype=torch.bool)
        queries = torch.randn(30, 64, generator=generator)
        results.append(top_k_prepared(prepare_from_embeddings(rows, searchable), queries, 40))
        return results


@needs_vnni
def test_vnni_build_equals_the_avx2_build(monkeypatch: pytest.MonkeyPatch) -> None:
    assert native.loaded_variant() in ("gsu_kernels_vnni", "none")
    avx2 = load_native(native.GSU_KERNELS)
    vnni = load_native(native.GSU_KERNELS_VNNI)
    for seed in (0, 1):
        expected = searches_with(avx2, monkeypatch, seed)
        actual = searches_with(vnni, monkeypatch, seed)
        for mine, theirs in zip(actual, expected, strict=True):
            assert torch.equal(mine.positions, theirs.positions)
            assert torch.equal(mine.cosines, theirs.cosines)
            assert torch.equal(mine.mask, theirs.mask)


def test_cpu_flags_read_the_flags_line(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n\n")
    assert cpu_flags(cpuinfo) == frozenset({"fpu", "avx2", "avx512f", "avx512_vnni"})
    assert cpu_flags(tmp_path / "missing") == frozenset()


@needs_vnni
def test_the_environment_keeps_the_avx2_build_in_a_fresh_process() -> None:
    code = "from muse.search import native_library as n; print(n.loaded_variant())"
    chosen = {}
    for setting in ("0", "1"):
        env = {**os.environ, "MUSE_GSU_DISABLE_VNNI": setting}
        chosen[setting] = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        ).stdout.strip()
    assert chosen == {"0": "gsu_kernels_vnni", "1": "gsu_kernels"}
