"""GSU search benchmark (issues 4 and 11): ours (warm and cold cache) against faiss.knn, torch, numpy.

    .venv/bin/python benchmarks/gsu.py [--quick] [--json] [--set repeats=30] [--output-dir DIR]

Writes docs/results/gsu.md and docs/results/gsu.png. Every figure is a median over ``repeats``
runs in one process; the methods are interleaved round-robin so that load from other processes on
a shared machine falls on all of them alike. faiss gets its best ``distance_compute_blas_threshold``
from a sweep done in the same run. Recall@K is measured against exact fp64 cosines and counts a
returned row as correct when its exact cosine reaches the exact K-th best (so ties may break
either way).

Every cell runs on two kinds of history: *random* (uniform indices into a large random table: no
repeats, no structure, the worst case) and *synthetic* (lifelong histories from the project's own
generator, features/synthetic_users.py: popular items repeat and behaviours cluster by topic, as
real logs do), with candidates drawn by popularity from the same catalogue.

The two search paths measured here and nowhere else in the product live here too:
:func:`search_user` (one request through the per-user cache, as the server does it) and
:func:`top_k_gathered` (from raw fp32 histories, no cache: the memory baseline).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import functools
import itertools
import json
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

# Before torch and numpy load their thread pools: threads left spinning by one method's call
# (libgomp for torch and faiss, OpenBLAS for numpy) would take the cores from the next method's
# threads (ours took twice as long at L = 1K, C = 200 after numpy's matmul).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from muse.core.ids import FIRST_ID_INDEX  # noqa: E402
from muse.search import native_library as native  # noqa: E402
from muse.search.cosine_top_k import EXACT_PATH_MAX_CANDIDATES, top_k_prepared  # noqa: E402
from muse.search.device import SearchBackend, hardware_info, search_threads, select_backend  # noqa: E402
from muse.search.embedding_table import EmbeddingTable, normalize_rows, searchable_mask  # noqa: E402
from muse.search.history_cache import HistoryCache  # noqa: E402
from muse.search.prepared_history import (  # noqa: E402
    PreparedHistory,
    prepare_from_embeddings,
    prepare_from_table,
)
from muse.search.search_result import SearchResult  # noqa: E402

# ---- the search paths only this benchmark measures -----------------------------------------------


def search_user(
    cache: HistoryCache,
    user_key: Hashable,
    version: Hashable,
    history_items: torch.Tensor,
    table: EmbeddingTable,
    candidates: torch.Tensor,
    k: int,
    backend: SearchBackend | None = None,
    device: torch.device | str | None = None,
) -> SearchResult:
    """Exact top-K cosine for one user's request, through the cache (what the server does).

    history_items: (L,) int64 item indices of the user's history at ``version`` (read only on a
        miss; 0 padding and 1 OOV are never returned).
    candidates: (C, D) float candidate embeddings.
    device: where a missed history is prepared (CUDA: the torch backend on the GPU); default CPU.
    Returns SearchResult with (1, C, K) tensors; positions index ``history_items``.
    """
    history, _ = cache.get_or_prepare(
        user_key,
        version,
        lambda: prepare_from_table(table, history_items, backend=backend, device=device),
    )
    return top_k_prepared(history, candidates, k)


@torch.no_grad()
def top_k_gathered(
    history_embeddings: torch.Tensor,
    searchable: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    backend: SearchBackend | None = None,
) -> SearchResult:
    """Exact top-K cosine over gathered fp32 histories, with no cache.

    history_embeddings: (B, L, D) float (normalised here).
    searchable: (B, L) bool, True where a behaviour may be returned.
    candidates: (B, C, D) float (normalised here).
    Returns SearchResult with (B, C, K) tensors on the candidates' device.
    """
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    if (
        history_embeddings.dim() != 3
        or searchable.shape != history_embeddings.shape[:2]
        or candidates.dim() != 3
        or candidates.shape[0] != history_embeddings.shape[0]
        or candidates.shape[2] != history_embeddings.shape[2]
    ):
        raise ValueError(
            f"expected history (B, L, D), searchable (B, L) and candidates (B, C, D), got "
            f"{tuple(history_embeddings.shape)}, {tuple(searchable.shape)}, "
            f"{tuple(candidates.shape)}"
        )
    device = candidates.device
    backend = backend or select_backend(device)
    batch, length, dim = history_embeddings.shape
    num_candidates = candidates.shape[1]
    if backend is SearchBackend.NATIVE_CPU and num_candidates <= EXACT_PATH_MAX_CANDIDATES:
        # Few candidates: every row scored exactly in fp32 straight from the rows, no packing.
        rows = normalize_rows(history_embeddings.detach().to("cpu", torch.float32)).contiguous()
        mask_in = searchable.detach().to("cpu", torch.bool).contiguous()
        queries = normalize_rows(candidates.detach().to("cpu", torch.float32)).contiguous()
        positions = torch.empty((batch, num_candidates, k), dtype=torch.int64)
        cosines = torch.empty((batch, num_candidates, k), dtype=torch.float32)
        mask = torch.empty((batch, num_candidates, k), dtype=torch.bool)
        native.load_native_library().gsu_search_exact(  # type: ignore[union-attr]
            native.EXACT_ROWS_FLOAT32,
            rows.data_ptr(),
            0,
            None,
            mask_in.data_ptr(),
            FIRST_ID_INDEX,
            batch,
            length,
            dim,
            queries.data_ptr(),
            num_candidates,
            k,
            search_threads(),
            positions.data_ptr(),
            cosines.data_ptr(),
            mask.data_ptr(),
        )
        return SearchResult(positions.to(device), cosines.to(device), mask.to(device))
    parts = [
        top_k_prepared(
            prepare_from_embeddings(history_embeddings[b], searchable[b], backend, device),
            candidates[b],
            k,
        )
        for b in range(batch)
    ]
    if not parts:
        shape = (0, num_candidates, k)
        return SearchResult(
            torch.empty(shape, dtype=torch.int64, device=device),
            torch.empty(shape, dtype=torch.float32, device=device),
            torch.empty(shape, dtype=torch.bool, device=device),
        )
    return SearchResult(*(torch.cat(tensors).to(device) for tensors in zip(*parts, strict=True)))


# ---- the benchmark -------------------------------------------------------------------------------


class HistoryKind(enum.Enum):
    """Where a cell's histories and candidates come from."""

    RANDOM = "random"  # uniform indices into the random table: no repeats, no clusters
    SYNTHETIC = "synthetic"  # the synthetic generator's lifelong histories and catalogue


class Target(NamedTuple):
    """One of issue 11's exact-GSU targets (warm cache, d = 128, K = 50, 2 cores)."""

    length: int
    candidates: int
    max_ms: float
    min_faiss_ratio: float | None


TARGETS = (
    Target(100_000, 200, 15.0, 4.0),
    Target(1_000, 200, 1.0, 4.0),
    Target(100_000, 1, 2.0, None),
)


@dataclass(frozen=True)
class GsuBenchmarkConfig:
    """Benchmark settings (defaults: the issue's full grid)."""

    dim: int = 128
    k: int = 50
    lengths: tuple[int, ...] = (1_000, 10_000, 100_000)
    candidate_counts: tuple[int, ...] = (1, 16, 200, 1000)
    histories: tuple[HistoryKind, ...] = (HistoryKind.RANDOM, HistoryKind.SYNTHETIC)
    repeats: int = 20
    table_rows: int = 2_000_000
    faiss_thresholds: tuple[int, ...] = (1, 20, 200, 1600, 1_000_000)
    faiss_tuning_repeats: int = 3
    threads: int = 2
    seed: int = 0
    memory_probe_bytes: int = 512 * 1024 * 1024
    output_dir: str = "docs/results"


QUICK_CONFIG = GsuBenchmarkConfig(
    lengths=(1_000, 3_000),
    candidate_counts=(1, 16),
    repeats=3,
    table_rows=20_000,
    faiss_thresholds=(1, 1_000_000),
    faiss_tuning_repeats=1,
    memory_probe_bytes=64 * 1024 * 1024,
)


@dataclass
class CellResult:
    """One (L, C) cell: wall-clock medians in milliseconds, recall@K (tie-aware) per method.

    cpu_ms: median process CPU time per call and method (all threads; spinning OpenMP/MKL
    threads count too): the work done, which the load from other processes does not inflate.
    """

    history: HistoryKind
    length: int
    candidates: int
    distinct_share: float  # distinct searchable items / history length (what ours packs)
    ours_warm_ms: float
    ours_cold_ms: float
    ours_prepare_ms: float
    faiss_ms: float
    faiss_threshold: int
    faiss_threads: int
    torch_ms: float
    numpy_ms: float
    recall: dict[str, float]
    cpu_ms: dict[str, float]

    @property
    def faiss_ratio(self) -> float:
        """How many times faster ours (warm) is than tuned faiss."""
        return self.faiss_ms / self.ours_warm_ms


@dataclass
class RateProbe:
    """Peak rates measured in this run (wall clock, all threads) and the int8 roof per CPU-second."""

    fp32_matmul_gflops: float
    bf16_matmul_gflops: float
    int8_mix_gmacs: float
    int8_mix_gmacs_per_cpu_second: float
    memory_read_gbps: float


@dataclass
class MachineProbe:
    """Peak rates measured in the same run, and the load around it."""

    rates: RateProbe
    load_average_before: tuple[float, float, float]
    load_average_after: tuple[float, float, float]
    cpu_capability: str
    amx_bf16: bool
    native_kernels: bool
    threads: int
    native_build: str = "none"


@dataclass
class GsuBenchmarkReport:
    config: GsuBenchmarkConfig
    machine: MachineProbe
    cells: list[CellResult]
    peak_extra_memory_mb: dict[str, float | None]
    peak_memory_shape: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        cells = []
        for cell in self.cells:
            row = dataclasses.asdict(cell)
            row["history"] = cell.history.value
            row["faiss_ratio"] = cell.faiss_ratio
            cells.append(row)
        from muse.core.config_loader import config_to_dict

        return {
            "config": config_to_dict(self.config),
            "machine": dataclasses.asdict(self.machine),
            "cells": cells,
            "peak_extra_memory_mb": self.peak_extra_memory_mb,
            "peak_memory_shape": self.peak_memory_shape,
        }


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def _time_once(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def probe_machine(memory_probe_bytes: int, threads: int) -> RateProbe:
    """Best of a few runs of: large fp32 and bf16 matmuls, the search kernel's int8 instruction
    mix on registers (its compute roof), and a read of ``memory_probe_bytes``.

    A bf16 matmul without AMX/AVX512-BF16 is slow, so its size grows only when it is fast.
    """
    generator = torch.Generator().manual_seed(0)
    rates = []
    for dtype, sizes in ((torch.float32, (1024, 2048)), (torch.bfloat16, (256, 1024, 2048))):
        rate = 0.0
        for size in sizes:
            if rate and 2 * size**3 / (rate * 1e9) > 0.2:
                break  # a slow path: the smaller size already gave its rate
            a = torch.randn(size, size, generator=generator).to(dtype)
            b = torch.randn(size, size, generator=generator).to(dtype)
            torch.mm(a, b)
            best = min(_time_once(functools.partial(torch.mm, a, b)) for _ in range(3))
            rate = max(rate, 2 * size**3 / best / 1e9)
        rates.append(rate)
    int8_wall = int8_cpu = 0.0
    library = native.load_native_library()
    if library is not None:
        for _ in range(3):
            cpu_started = time.process_time()
            wall_rate = library.gsu_probe_int8_rate(2_000_000, threads)
            cpu_seconds = time.process_time() - cpu_started
            int8_wall = max(int8_wall, wall_rate / 1e9)
            int8_cpu = max(int8_cpu, 2_000_000 * 12 * 32 * threads / max(cpu_seconds, 1e-9) / 1e9)
    data = torch.ones(memory_probe_bytes // 4, dtype=torch.float32)
    data.sum()
    best = min(_time_once(data.sum) for _ in range(3))
    return RateProbe(
        fp32_matmul_gflops=rates[0],
        bf16_matmul_gflops=rates[1],
        int8_mix_gmacs=int8_wall,
        int8_mix_gmacs_per_cpu_second=int8_cpu,
        memory_read_gbps=data.numel() * 4 / best / 1e9,
    )


def _tie_aware_recall(
    positions: np.ndarray, exact: np.ndarray, searchable: np.ndarray, k: int
) -> float:
    """positions (C, K') int (−1 = none); exact (C, L) fp64 cosines. Mean share of the true top-K found."""
    masked = np.where(searchable[None, :], exact, -np.inf)
    kept = min(k, int(searchable.sum()))
    if kept == 0:
        return 1.0
    kth = -np.partition(-masked, kept - 1, axis=1)[:, kept - 1]
    found = 0
    for row, positions_row in enumerate(positions):
        valid = positions_row[(positions_row >= 0)]
        valid = np.unique(valid[searchable[valid]])
        found += min(kept, int((masked[row, valid] >= kth[row] - 1e-6).sum()))
    return found / (kept * positions.shape[0])


def _exact_cosines(history: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(C, L) fp64 cosines of normalised fp32 inputs, in candidate chunks."""
    history64 = history.astype(np.float64)
    out = np.empty((queries.shape[0], history.shape[0]), dtype=np.float64)
    for start in range(0, queries.shape[0], 64):
        out[start : start + 64] = queries[start : start + 64].astype(np.float64) @ history64.T
    return out


def _numpy_top_k(history: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Plain numpy: fp32 matmul, argpartition, sort the K (candidate chunks bound memory at 256 MB)."""
    chunk = max(1, (64 * 1024 * 1024) // max(1, history.shape[0]))
    kept = min(k, history.shape[0])
    out = np.empty((queries.shape[0], kept), dtype=np.int64)
    for start in range(0, queries.shape[0], chunk):
        scores = queries[start : start + chunk] @ history.T
        top = np.argpartition(-scores, kept - 1, axis=1)[:, :kept]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        out[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return out


def peak_extra_memory_mb(function: Callable[[], object]) -> float | None:
    """Peak resident memory added while ``function`` runs (Linux: resets and reads VmHWM)."""
    status = Path("/proc/self/status")
    clear_refs = Path("/proc/self/clear_refs")
    if not status.exists():
        return None

    def read_kb(field: str) -> int:
        for line in status.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
        raise KeyError(field)

    try:
        clear_refs.write_text("5")
    except OSError:
        return None
    before = read_kb("VmRSS:")
    function()
    return (read_kb("VmHWM:") - before) / 1024


class HistorySource(NamedTuple):
    """A table, and how to draw a history of L item indices and C candidate rows from it."""

    kind: HistoryKind
    table: EmbeddingTable
    draw_history: Callable[[int, np.random.Generator], torch.Tensor]
    draw_candidates: Callable[[int, np.random.Generator], np.ndarray]


def random_source(table: EmbeddingTable) -> HistorySource:
    """Uniform history indices and candidates from a random table."""
    return HistorySource(
        HistoryKind.RANDOM,
        table,
        lambda length, rng: torch.from_numpy(rng.integers(FIRST_ID_INDEX, table.num_rows, length)),
        lambda count, rng: rng.integers(FIRST_ID_INDEX, table.num_rows, size=count),
    )


def synthetic_source(config: GsuBenchmarkConfig, users: int) -> HistorySource:
    """The synthetic generator's world at the longest length: its int8 catalogue embeddings (rows
    shifted past padding and OOV), the train histories of ``users`` users (a cell takes the most
    recent L behaviours of one), and candidates drawn by item popularity."""
    from features.synthetic_config import SynthConfig
    from features.synthetic_users import draw_users
    from features.synthetic_world import SyntheticWorld, random_stream

    base = SynthConfig(seed=config.seed)
    world_config = dataclasses.replace(
        base,
        history=dataclasses.replace(base.history, length=max(config.lengths), test_time_gap=1),
        # The benchmark needs the catalogue and histories, not a calibrated click rate.
        click=dataclasses.replace(base.click, calibration_users=20),
    )
    world = SyntheticWorld(world_config)
    catalogue = world.catalogue
    if catalogue.embedding_int8.shape[1] != config.dim:
        raise ValueError(f"dim must be {catalogue.embedding_int8.shape[1]} for synthetic histories")
    padding = np.zeros((FIRST_ID_INDEX, config.dim), dtype=np.int8)
    table = EmbeddingTable(np.concatenate([padding, catalogue.embedding_int8]), 1 / 127)
    histories = draw_users(world, random_stream(config.seed, 11), users).train_history
    pool = itertools.cycle(range(users))
    popularity = catalogue.popularity

    def draw_history(length: int, rng: np.random.Generator) -> torch.Tensor:
        row = histories[next(pool)]
        return torch.from_numpy(row[-length:].astype(np.int64) + FIRST_ID_INDEX)

    def draw_candidates(count: int, rng: np.random.Generator) -> np.ndarray:
        return FIRST_ID_INDEX + rng.choice(popularity.size, size=count, p=popularity)

    return HistorySource(HistoryKind.SYNTHETIC, table, draw_history, draw_candidates)


def _bench_cell(
    config: GsuBenchmarkConfig,
    source: HistorySource,
    length: int,
    num_candidates: int,
    rng: np.random.Generator,
) -> CellResult:
    import faiss

    table = source.table
    items = source.draw_history(length, rng)
    # Fresh histories for every cold run and every timed preparation: none is ever in a cache.
    cold_items = [source.draw_history(length, rng) for _ in range(2 * (config.repeats + 1))]
    candidate_rows = source.draw_candidates(num_candidates, rng)
    candidates = torch.from_numpy(table.array[candidate_rows].astype(np.float32))
    queries = (candidates / candidates.norm(dim=1, keepdim=True)).numpy()
    history = table.array[items.numpy()].astype(np.float32)
    history /= np.linalg.norm(history, axis=1, keepdims=True)
    history_tensor = torch.from_numpy(history)
    queries_tensor = torch.from_numpy(queries)
    k = config.k

    warm_cache = HistoryCache()
    search_user(warm_cache, "user", 0, items, table, candidates, k)
    cold_round = iter(range(10**9))

    def ours_warm() -> SearchResult:
        return search_user(warm_cache, "user", 0, items, table, candidates, k)

    def ours_cold() -> SearchResult:
        fresh = cold_items[next(cold_round) % len(cold_items)]
        return search_user(HistoryCache(), "user", 0, fresh, table, candidates, k)

    def ours_prepare() -> PreparedHistory:
        return prepare_from_table(table, cold_items[next(cold_round) % len(cold_items)])

    faiss_setting = (config.faiss_thresholds[0], config.threads)

    def faiss_search() -> np.ndarray:
        faiss.cvar.distance_compute_blas_threshold = faiss_setting[0]
        faiss.omp_set_num_threads(faiss_setting[1])
        return faiss.knn(queries, history, k, metric=faiss.METRIC_INNER_PRODUCT)[1]

    def torch_search() -> torch.Tensor:
        return torch.topk(queries_tensor @ history_tensor.T, min(k, length), dim=1).indices

    def numpy_search() -> np.ndarray:
        return _numpy_top_k(history, queries, k)

    # faiss: pick its best BLAS threshold (and thread count: on a busy machine one OpenMP
    # thread can beat two) in this run.
    setting_times = {}
    for setting in itertools.product(config.faiss_thresholds, sorted({config.threads, 1})):
        faiss_setting = setting
        faiss_search()
        setting_times[setting] = statistics.median(
            _time_once(faiss_search) for _ in range(config.faiss_tuning_repeats)
        )
    faiss_setting = min(setting_times, key=setting_times.__getitem__)

    methods: dict[str, Callable[[], object]] = {
        "ours_warm": ours_warm,
        "ours_cold": ours_cold,
        "ours_prepare": ours_prepare,
        "faiss": faiss_search,
        "torch": torch_search,
        "numpy": numpy_search,
    }
    samples: dict[str, list[float]] = {name: [] for name in methods}
    cpu_samples: dict[str, list[float]] = {name: [] for name in methods}
    for function in methods.values():
        function()
    for _ in range(config.repeats):
        for name, function in methods.items():
            cpu_started = time.process_time()
            samples[name].append(_time_once(function))
            cpu_samples[name].append(time.process_time() - cpu_started)
    exact = _exact_cosines(history, queries)
    searchable = np.ones(length, dtype=bool)
    recall = {
        "ours": _tie_aware_recall(ours_warm().positions[0].numpy(), exact, searchable, k),
        "faiss": _tie_aware_recall(faiss_search(), exact, searchable, k),
        "torch": _tie_aware_recall(torch_search().numpy(), exact, searchable, k),
        "numpy": _tie_aware_recall(numpy_search(), exact, searchable, k),
    }
    distinct = np.unique(items.numpy()[items.numpy() >= FIRST_ID_INDEX]).size
    return CellResult(
        history=source.kind,
        length=length,
        candidates=num_candidates,
        distinct_share=distinct / length,
        ours_warm_ms=_median_ms(samples["ours_warm"]),
        ours_cold_ms=_median_ms(samples["ours_cold"]),
        ours_prepare_ms=_median_ms(samples["ours_prepare"]),
        faiss_ms=_median_ms(samples["faiss"]),
        faiss_threshold=faiss_setting[0],
        faiss_threads=faiss_setting[1],
        torch_ms=_median_ms(samples["torch"]),
        numpy_ms=_median_ms(samples["numpy"]),
        recall=recall,
        cpu_ms={name: _median_ms(values) for name, values in cpu_samples.items()},
    )


def _memory_probe(
    config: GsuBenchmarkConfig,
    table: EmbeddingTable,
    shape: tuple[int, int],
    rng: np.random.Generator,
) -> dict[str, float | None]:
    """Peak extra resident MB of one search of ``shape`` (L, C): served from the cache
    (``search_user``, history already prepared) and from a raw fp32 history (``top_k_gathered``,
    which normalises and packs it first)."""
    length, count = shape
    items = torch.from_numpy(rng.integers(2, table.num_rows, size=length))
    candidates = torch.from_numpy(
        table.array[rng.integers(2, table.num_rows, size=count)].astype(np.float32)
    )
    cache = HistoryCache()
    search_user(cache, "memory", 0, items, table, candidates[:1], config.k)
    history = table.gather(items)[None]
    mask = searchable_mask(items)[None]
    return {
        "served": peak_extra_memory_mb(
            lambda: search_user(cache, "memory", 0, items, table, candidates, config.k)
        ),
        "gathered": peak_extra_memory_mb(
            lambda: top_k_gathered(history, mask, candidates[None], config.k)
        ),
    }


def run_benchmark(config: GsuBenchmarkConfig, progress: bool = True) -> GsuBenchmarkReport:
    """Run every (L, C) cell of ``config`` and probe the machine; nothing is written."""
    torch.set_num_threads(config.threads)
    load_before = os.getloadavg()
    rates = probe_machine(config.memory_probe_bytes, config.threads)
    rng = np.random.default_rng(config.seed)
    array = rng.integers(-127, 128, size=(config.table_rows, config.dim), dtype=np.int8)
    array[:2] = 0
    table = EmbeddingTable(array, 1 / 127)
    # Memory first, while the process has no freed memory to reuse: the largest cell's search.
    largest = (max(config.lengths), max(config.candidate_counts))
    peaks = _memory_probe(config, table, largest, rng)
    sources = []
    for kind in config.histories:
        if kind is HistoryKind.RANDOM:
            sources.append(random_source(table))
        else:
            sources.append(synthetic_source(config, users=2 * (config.repeats + 1) + 1))
    cells = []
    grid = [
        (source, length, count)
        for source in sources
        for length in config.lengths
        for count in config.candidate_counts
    ]
    for source, length, count in tqdm(grid, desc="gsu cells", unit="cell", disable=not progress):
        cells.append(_bench_cell(config, source, length, count, rng))
    info = hardware_info()
    machine = MachineProbe(
        rates=rates,
        load_average_before=load_before,
        load_average_after=os.getloadavg(),
        cpu_capability=info.cpu_capability,
        amx_bf16=info.amx_bf16,
        native_kernels=info.native_kernels,
        threads=config.threads,
        native_build=info.native_build,
    )
    return GsuBenchmarkReport(config, machine, cells, peaks, largest)


def _cell(
    report: GsuBenchmarkReport, length: int, count: int, history: HistoryKind = HistoryKind.RANDOM
) -> CellResult | None:
    for cell in report.cells:
        if cell.length == length and cell.candidates == count and cell.history is history:
            return cell
    return None


def utilisation_lines(report: GsuBenchmarkReport) -> list[str]:
    """What limits the remaining time: achieved compute and bandwidth as fractions of the probes
    (random histories, whose rows are all distinct, so every row is scored)."""
    rates = report.machine.rates
    dim = report.config.dim
    lines = []
    longest = max(report.config.lengths)
    for count in sorted(report.config.candidate_counts):
        cell = _cell(report, longest, count)
        if cell is None:
            continue
        rows = longest * cell.distinct_share
        macs = count * rows * dim
        gmacs = macs / (cell.ours_warm_ms / 1e3) / 1e9
        gmacs_cpu = macs / (cell.cpu_ms["ours_warm"] / 1e3) / 1e9
        read_gbps = rows * (dim + 16) / (cell.ours_warm_ms / 1e3) / 1e9  # codes + per-row fields
        roof = (
            f"{gmacs / rates.int8_mix_gmacs:.0%} of the int8 multiply-add roof "
            f"({rates.int8_mix_gmacs:.0f} GMAC/s), {gmacs_cpu:.1f} GMAC/s per CPU-second = "
            f"{gmacs_cpu / rates.int8_mix_gmacs_per_cpu_second:.0%} of the roof per CPU-second"
            if rates.int8_mix_gmacs
            else "no int8 roof measured"
        )
        lines.append(
            f"- L={longest:,} ({rows:,.0f} distinct rows), C={count}: {gmacs:.1f} GMAC/s = {roof}; "
            f"{2 * gmacs / rates.fp32_matmul_gflops:.1f}× the fp32 matmul rate; history read at "
            f"{read_gbps:.1f} GB/s = {read_gbps / rates.memory_read_gbps:.0%} of the memory read rate."
        )
    return lines


def target_lines(report: GsuBenchmarkReport) -> list[str]:
    """Issue 11's targets on each kind of history, with the measured figure and a verdict."""
    lines = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    for target in TARGETS:
        for history in report.config.histories:
            cell = _cell(report, target.length, target.candidates, history)
            if cell is None:
                continue
            parts = [
                f"{cell.ours_warm_ms:.2f} ms (≤ {target.max_ms:g}: "
                f"{verdict(cell.ours_warm_ms <= target.max_ms)})"
            ]
            if target.min_faiss_ratio is not None:
                parts.append(
                    f"{cell.faiss_ratio:.1f}× tuned faiss (≥ {target.min_faiss_ratio:g}×: "
                    f"{verdict(cell.faiss_ratio >= target.min_faiss_ratio)})"
                )
            parts.append(f"recall {cell.recall['ours']:.4f}")
            lines.append(
                f"- L={target.length:,}, C={target.candidates}, {history.value} histories: "
                + ", ".join(parts)
            )
    return lines


def results_table(report: GsuBenchmarkReport) -> list[str]:
    lines = [
        "| history | L | distinct | C | ours warm | ours cold (gather+pack) | faiss tuned (threshold, threads) | torch fp32 | numpy | faiss / ours | CPU ms ours / faiss | recall ours / faiss |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cell in report.cells:
        lines.append(
            f"| {cell.history.value} | {cell.length:,} | {cell.distinct_share:.0%} | "
            f"{cell.candidates:,} | {cell.ours_warm_ms:.2f} | "
            f"{cell.ours_cold_ms:.2f} ({cell.ours_prepare_ms:.2f}) | "
            f"{cell.faiss_ms:.2f} ({cell.faiss_threshold:,}, {cell.faiss_threads}t) | {cell.torch_ms:.2f} | "
            f"{cell.numpy_ms:.2f} | {cell.faiss_ratio:.1f}× | "
            f"{cell.cpu_ms['ours_warm']:.2f} / {cell.cpu_ms['faiss']:.2f} | "
            f"{cell.recall['ours']:.4f} / {cell.recall['faiss']:.4f} |"
        )
    return lines


def write_chart(report: GsuBenchmarkReport, path: Path) -> None:
    """Latency against C (log-log), one panel per L."""
    import matplotlib

    from muse.core.atomic_write import atomic_file

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = sorted(report.config.lengths)
    histories = report.config.histories
    figure, axes = plt.subplots(
        len(histories), len(lengths), figsize=(5 * len(lengths), 4 * len(histories)), squeeze=False
    )
    series = [
        ("ours_warm_ms", "ours, warm cache", "o-"),
        ("ours_cold_ms", "ours, cold cache", "o--"),
        ("faiss_ms", "faiss.knn, tuned", "s-"),
        ("torch_ms", "torch fp32 matmul+topk", "^-"),
        ("numpy_ms", "numpy", "v-"),
    ]
    panels = [(h, length) for h in histories for length in lengths]
    for axis, (history, length) in zip(axes.ravel(), panels, strict=True):
        cells = sorted(
            (c for c in report.cells if c.length == length and c.history is history),
            key=lambda c: c.candidates,
        )
        counts = [c.candidates for c in cells]
        for field, label, style in series:
            axis.plot(counts, [getattr(c, field) for c in cells], style, label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(f"{history.value} histories, L = {length:,}, K = {report.config.k}")
        axis.set_xlabel("candidates C")
        axis.set_ylabel("median latency (ms)")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    with atomic_file(path) as staging:
        figure.savefig(staging, dpi=110, format="png")
    plt.close(figure)


def write_report(report: GsuBenchmarkReport, command: str) -> Path:
    """Write ``gsu.md`` and ``gsu.png`` into the config's output directory; returns the .md path."""
    from muse.core.atomic_write import write_text_atomic

    output = Path(report.config.output_dir)
    chart = output / "gsu.png"
    write_chart(report, chart)
    machine = report.machine
    lines = [
        "# GSU search benchmark",
        "",
        f"Command: `{command}`",
        "",
        f"Settings: d={report.config.dim}, K={report.config.k}; median of "
        f"{report.config.repeats} runs per figure, methods interleaved round-robin; "
        f"{machine.threads} threads for every method. Histories: *random*, uniform indices into "
        f"a random int8 table of {report.config.table_rows:,} rows (seed {report.config.seed}), "
        "candidates drawn from the same table (no repeats, no structure: the worst case); "
        "*synthetic*, the most recent L behaviours of the synthetic generator's lifelong "
        "histories over its 50,000-item catalogue (docs/synthetic-data.md: popular items repeat, "
        "behaviours cluster by topic), candidates drawn by item popularity. *distinct*: distinct "
        "items / L, the rows ours packs and scores (each stands for all its positions).",
        "",
        f"Machine: CPU capability {machine.cpu_capability}, AMX-BF16 {'yes' if machine.amx_bf16 else 'no'}, "
        f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')} and "
        f"OPENBLAS_THREAD_TIMEOUT {os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')} (so that "
        "no method's threads wait for cores held by another's spinning threads; faiss's own "
        "times were the same or better with them), "
        f"native kernels {f'loaded ({machine.native_build})' if machine.native_kernels else 'unavailable'}. "
        f"Load average before / after: {machine.load_average_before[0]:.1f} / {machine.load_average_after[0]:.1f} "
        "(a shared machine: compare the ratios, measured in this same run).",
        f"Probes in this run ({machine.threads} threads): fp32 matmul "
        f"{machine.rates.fp32_matmul_gflops:.0f} GFLOP/s, bf16 matmul "
        f"{machine.rates.bf16_matmul_gflops:.1f} GFLOP/s, int8 multiply-add roof (the kernel's "
        f"instruction mix on registers) {machine.rates.int8_mix_gmacs:.0f} GMAC/s "
        f"({machine.rates.int8_mix_gmacs_per_cpu_second:.0f} per CPU-second), memory read "
        f"{machine.rates.memory_read_gbps:.1f} GB/s.",
        "",
        "Latency: median wall-clock milliseconds. *CPU ms*: median process CPU time per call "
        "(all threads), the work itself, less sensitive to other processes' load. "
        "*ours warm*: `search_user` with the history cached (a hit); "
        "*ours cold*: a miss on a never-seen history (gather from the table + pack + search; the "
        "gather + pack part alone in brackets). faiss, torch and numpy get the gathered, normalised "
        "fp32 history for free. Recall@K is against exact fp64 cosines, tie-aware.",
        "",
        *results_table(report),
        "",
        f"![latency against C]({chart.name})",
        "",
        "## Targets (issue 11; warm cache, exact: recall 1.0)",
        "",
        *(target_lines(report) or ["- (the grid of this run has none of the targets' cells)"]),
        "",
        "## Utilisation of the machine by ours (warm, random histories)",
        "",
        *utilisation_lines(report),
        "",
    ]
    length, count = report.peak_memory_shape
    peaks = report.peak_extra_memory_mb
    if peaks.get("served") is not None and peaks.get("gathered") is not None:
        lines += [
            "## Memory",
            "",
            f"Peak extra resident memory of one search with C={count:,}, L={length:,} (bound: 256 MB), "
            "measured first in the process: "
            f"served from the cache {peaks['served']:.1f} MB; from a raw fp32 history "
            f"(`top_k_gathered`, which normalises and packs it) {peaks['gathered']:.1f} MB.",
            "",
        ]
    path = output / "gsu.md"
    write_text_atomic(path, "\n".join(lines))
    return path


def report_json(report: GsuBenchmarkReport) -> str:
    return json.dumps(report.to_dict(), indent=2)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print its figures and write its report; returns the exit code."""
    from muse.core.config_loader import (
        add_override_argument,
        apply_overrides,
        config_from_dict,
        config_to_dict,
        load_config,
    )
    from muse.core.errors import ConfigError

    parser = argparse.ArgumentParser(prog="benchmarks/gsu.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", help="benchmark TOML (GsuBenchmarkConfig keys); default: the issue's grid"
    )
    add_override_argument(parser, "repeats=30 or lengths=[1000,100000]")
    parser.add_argument(
        "--quick", action="store_true", help="tiny grid and table: a smoke run in seconds"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--output-dir", help="where gsu.md and gsu.png go (default: docs/results)")
    parser.add_argument("--no-write", action="store_true", help="do not write the report files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    given = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(given)
    try:
        if args.config:
            config = load_config(GsuBenchmarkConfig, args.config, args.overrides)
        else:
            base = QUICK_CONFIG if args.quick else GsuBenchmarkConfig()
            raw = apply_overrides(config_to_dict(base), args.overrides, source="--set")
            config = config_from_dict(GsuBenchmarkConfig, raw, "--set")
    except ConfigError as error:
        print(f"benchmarks/gsu.py: {error}", file=sys.stderr)
        return 2
    if args.output_dir:
        config = dataclasses.replace(config, output_dir=args.output_dir)
    report = run_benchmark(config, progress=not args.no_progress)
    if args.json:
        print(report_json(report))
    else:
        print("\n".join(results_table(report)))
        print("\n".join(target_lines(report) + utilisation_lines(report)))
        for path, peak in report.peak_extra_memory_mb.items():
            if peak is not None:
                print(f"peak extra memory of the largest search ({path}): {peak:.1f} MB")
    if not args.no_write:
        command = " ".join(["python benchmarks/gsu.py", *(shlex.quote(a) for a in given)])
        report_path = write_report(report, command)
        print(f"wrote {report_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
