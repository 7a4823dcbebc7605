"""Benchmark: SimilarItems by item id on the real server, against exact faiss.knn, in one run.

    .venv/bin/python benchmarks/similar_items.py                 # 1M items → docs/results/item2item_serving.md
    .venv/bin/python benchmarks/similar_items.py --items 50000 --requests 3000 --out /tmp/i2i.md
    .venv/bin/python benchmarks/similar_items.py --ivf-pq        # IVF-PQ with exact refine instead
    .venv/bin/python benchmarks/similar_items.py --set hnsw_search_beam=256

1. A synthetic catalogue (seeded): ``--items`` unit vectors of width 64, drawn from a Gaussian
   mixture over a few thousand centres (about 250 items per centre, uneven sizes), each centre in
   one of 64 categories, with an anisotropic (power-law) spread around its centre, as trained item
   embeddings have.
2. The index of ``--index-config`` (default configs/item2item/index_hnsw.toml, the one
   ``muse i2i index`` builds; ``--set KEY=VALUE`` as there) built and written as a bundle by the
   code ``muse i2i index`` runs (``SimilarItemIndex.build``, ``write_index_bundle``); build time
   wall and CPU.
3. The server as a child process: the ``muse serve`` host (``serve_until_signalled``: admission,
   error interceptor, health, reflection, metrics) hosting the similar-items service alone (``muse
   serve`` always hosts ranking, which would need a ranking bundle and a behaviour store), loaded
   from that bundle. The shared load client (benchmarks/grpc_load.py) sends ``--requests``
   SimilarItems(item_id, k = 100) at each ``--concurrency`` after ``--warmup`` requests: latency
   percentiles, throughput, server and client CPU.
4. In this process, on the same queries with the server's faiss threads: exact ``faiss.knn``
   (brute force) per query, and the index's own search without gRPC.
5. Recall@100 of the served answers against exact search (tie-aware,
   ``SimilarItemIndex.recall_of``) over every distinct query item answered.
6. Targets (p99 ≤ 10 ms at concurrency 8, recall@100 ≥ 0.95) printed as PASS / FAIL; the section
   "SimilarItems by id" of ``--out`` (between marker comments, the rest of the file kept) and a
   PNG latency chart beside it, both written atomically; the figures as JSON under ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # benchmarks.* beside this script

from benchmarks.grpc_load import LoadResult, measured  # noqa: E402 (after the path)

DEFAULT_OUT = REPOSITORY / "docs" / "results" / "item2item_serving.md"
DEFAULT_WORKDIR = REPOSITORY / "runs" / "bench_similar_items"
DEFAULT_INDEX_CONFIG = REPOSITORY / "configs" / "item2item" / "index_hnsw.toml"
BUNDLE_NAME = "similar_items"
SECTION_BEGIN = "<!-- similar-items:begin -->"
SECTION_END = "<!-- similar-items:end -->"
K = 100
TARGET_P99_MS = 10.0
TARGET_CONCURRENCY = 8
TARGET_RECALL = 0.95
FIRST_ITEM_ID = 10_000_000
# --ivf-pq: IVF-PQ with exact re-ranking, probed deeply enough for recall@100 (before any --set).
IVF_PQ_OVERRIDES = ("kind=ivf_pq", "pq_subquantizers=16", "ivf_probe=64", "refine_factor=8.0")


# ---- the synthetic catalogue --------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueSpec:
    """How the synthetic embeddings are drawn.

    Category directions are random unit vectors; each centre is its category's direction plus
    ``category_spread``·N(0, I/D), normalised; each item is its centre plus ``item_spread`` times
    noise whose variance falls as (j + 1)^(−2·spectrum_decay) along the axes of a random rotation
    (total variance 1), normalised. Centre sizes are log-normal (σ = 1), so clusters are uneven.
    """

    items: int
    dim: int = 64
    items_per_centre: int = 250
    max_centres: int = 4_000
    categories: int = 64
    category_spread: float = 0.8
    item_spread: float = 0.8
    spectrum_decay: float = 0.5
    seed: int = 0

    @property
    def centres(self) -> int:
        return int(min(self.max_centres, max(8, self.items // self.items_per_centre)))


class Catalogue:
    """ids (N,) int64 raw item ids; vectors (N, D) float32 unit rows; categories (N,) int64."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, categories: np.ndarray) -> None:
        self.ids, self.vectors, self.categories = ids, vectors, categories


def synthetic_catalogue(
    spec: CatalogueSpec, progress: Callable[[int], None] | None = None, chunk: int = 65_536
) -> Catalogue:
    """Draw the catalogue of ``spec`` (seeded), in chunks of rows; ``progress`` gets each count."""
    rng = np.random.default_rng(spec.seed)
    dim = spec.dim
    directions = _unit(rng.normal(size=(spec.categories, dim)))
    centre_category = rng.integers(0, spec.categories, spec.centres)
    centres = _unit(
        directions[centre_category]
        + spec.category_spread * rng.normal(size=(spec.centres, dim)) / math.sqrt(dim)
    ).astype(np.float32)
    weights = rng.lognormal(0.0, 1.0, spec.centres)
    weights /= weights.sum()
    spectrum = (np.arange(dim) + 1.0) ** -spec.spectrum_decay
    spectrum /= np.sqrt((spectrum**2).sum())
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    basis = (spec.item_spread * spectrum[:, None] * rotation).astype(np.float32)  # (D, D)
    vectors = np.empty((spec.items, dim), dtype=np.float32)
    centre_of = rng.choice(spec.centres, size=spec.items, p=weights)
    for start in range(0, spec.items, chunk):
        stop = min(start + chunk, spec.items)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32) @ basis
        vectors[start:stop] = _unit(centres[centre_of[start:stop]] + noise)
        if progress is not None:
            progress(stop - start)
    ids = FIRST_ITEM_ID + np.arange(spec.items, dtype=np.int64)
    return Catalogue(ids, vectors, centre_category[centre_of].astype(np.int64))


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def category_names(count: int) -> tuple[str, ...]:
    return tuple(f"category_{code:02d}" for code in range(count))


# ---- index build --------------------------------------------------------------------------------


@dataclass
class BuildFigures:
    """Wall and CPU seconds (every thread of this process) of the build and of the bundle write
    (which measures the index's recall against exact search for the manifest)."""

    build_wall: float
    build_cpu: float
    write_wall: float
    write_cpu: float
    bundle_bytes: int
    manifest_recall: float
    manifest_recall_queries: int
    version: str


def build_bundle(
    catalogue: Catalogue, config: Any, bundle: Path, progress: bool
) -> tuple[Any, BuildFigures]:
    """Build the index of ``config`` over ``catalogue`` and write it as a bundle at ``bundle``."""
    from tqdm import tqdm

    from muse.item2item.index.index_bundle import write_index_bundle
    from muse.item2item.index.similar_item_index import SimilarItemIndex

    names = category_names(int(catalogue.categories.max()) + 1)
    bar = tqdm(
        total=catalogue.ids.size,
        desc=f"index build ({config.kind.value})",
        unit="item",
        unit_scale=True,
        disable=not progress,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    index = SimilarItemIndex.build(
        config, catalogue.ids, catalogue.vectors, catalogue.categories, names, progress=bar.update
    )
    build_wall, build_cpu = time.perf_counter() - wall, time.process_time() - cpu
    bar.close()
    wall, cpu = time.perf_counter(), time.process_time()
    manifest = write_index_bundle(
        index, bundle, extra={"embeddings": "benchmarks/similar_items.py"}
    )
    figures = BuildFigures(
        build_wall,
        build_cpu,
        time.perf_counter() - wall,
        time.process_time() - cpu,
        sum(path.stat().st_size for path in bundle.iterdir()),
        float(manifest["recall_against_exact"]["recall"]),
        int(manifest["recall_against_exact"]["queries"]),
        str(manifest["version"]),
    )
    return index, figures


# ---- the server ---------------------------------------------------------------------------------


def serve_similar_items(argv: Sequence[str]) -> int:
    """The child process: ``muse serve``'s host with the similar-items service alone."""
    from benchmarks.hosted_child import serve_one_service
    from serving.item2item.service import similar_items_service

    return serve_one_service(argv, "similar_items.py --serve-similar-items", similar_items_service)


def serving_config(workdir: Path, search_threads: int, faiss_threads: int) -> Any:
    """The server's config: the bundle under ``workdir``/bundles, any free ports.

    The ranking fields (bundle_root, store) are required by ServingConfig but unused: the
    ranking service is not hosted.
    """
    from serving.item2item.similar_items_config import SimilarItemsConfig
    from serving.local_behaviour_store_config import LocalBehaviourStoreConfig
    from serving.serving_config import ServingConfig

    return ServingConfig(
        bundle_root=workdir / "bundles",
        store=LocalBehaviourStoreConfig(dataset=workdir / "unused", directory=workdir / "unused"),
        port=0,
        metrics_port=0,
        log_level="WARNING",
        similar_items=SimilarItemsConfig(
            bundle_root=workdir / "bundles",
            default_bundle=BUNDLE_NAME,
            search_threads=search_threads,
            faiss_threads=faiss_threads,
        ),
    )


def similar_items_call(channel: Any) -> Any:
    """SimilarItemsService.SimilarItems on ``channel``: what the load client calls."""
    from serving.proto_gen.muse.serving.v1 import similar_items_pb2_grpc

    return similar_items_pb2_grpc.SimilarItemsServiceStub(channel).SimilarItems


def drive_server(
    args: argparse.Namespace, query_ids: np.ndarray, levels: list[int]
) -> tuple[list[LoadResult], list[np.ndarray | None]]:
    """Serve the bundle and load it at each concurrency; returns the results and, per query,
    the item ids first answered for it (None when never answered)."""
    from tqdm import tqdm

    from serving.proto_gen.muse.serving.v1 import similar_items_pb2
    from serving.server_process import ServerProcess

    requests = [similar_items_pb2.SimilarItemsRequest(item_id=int(i), k=K) for i in query_ids]
    config = serving_config(args.workdir, args.search_threads, args.faiss_threads)
    answers: list[np.ndarray | None] = [None] * len(requests)
    results = []
    program = [sys.executable, str(Path(__file__).resolve()), "--serve-similar-items"]
    server = ServerProcess.from_config(
        config,
        args.workdir / "server",
        log_path=args.workdir / "server" / "server.log",
        ready_timeout=1800.0,
        program=program,
    )
    print("starting the server (loading and verifying the bundle) ...", flush=True)
    with server:
        for concurrency in levels:
            replies: list[tuple[int, Any]] = []
            bar = tqdm(
                total=args.requests,
                desc=f"load, concurrency {concurrency}",
                unit="req",
                disable=not args.progress,
            )
            # Warm-up from the far end of the query list: measured requests start cold on items.
            warmup = requests[::-1][: args.warmup]
            result = measured(
                f"SimilarItems k={K}, concurrency {concurrency}",
                "ours",
                server.pid,
                server.address,
                similar_items_call,
                requests,
                concurrency,
                args.requests,
                args.seconds,
                warmup,
                warmup_concurrency=concurrency,
                responses=replies,
                progress=bar.update,
                quiet=True,
            )
            bar.close()
            print(_console_line(result), flush=True)
            results.append(result)
            for position, reply in replies:
                if answers[position] is None:
                    answers[position] = np.array(reply.item_ids, dtype=np.int64)
    return results, answers


# ---- in-process comparison: exact faiss.knn and the index without gRPC --------------------------


@dataclass
class QueryTimes:
    """Per-query wall latencies (seconds) of one in-process method, and its CPU seconds in all."""

    name: str
    latencies: list[float]
    cpu_seconds: float

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1e3 if self.latencies else math.nan

    def cpu_ms_per_query(self) -> float:
        return self.cpu_seconds / len(self.latencies) * 1e3 if self.latencies else math.nan


def time_queries(name: str, rows: np.ndarray, search: Callable[[int], Any]) -> QueryTimes:
    """Run ``search(row)`` once per row (after one untimed call), timing each."""
    search(int(rows[0]))
    latencies = []
    cpu = time.process_time()
    for row in rows:
        started = time.perf_counter()
        search(int(row))
        latencies.append(time.perf_counter() - started)
    return QueryTimes(name, latencies, time.process_time() - cpu)


def in_process_times(index: Any, rows: np.ndarray, faiss_threads: int) -> list[QueryTimes]:
    """Exact faiss.knn (brute force over every item) and the index's search, one query at a
    time with ``faiss_threads`` OpenMP threads (as the server searches)."""
    import faiss

    faiss.omp_set_num_threads(faiss_threads)
    vectors = index.vectors

    def exact(row: int) -> Any:  # k + 1: the item itself comes back first, as the server drops it
        return faiss.knn(vectors[row : row + 1], vectors, K + 1, metric=faiss.METRIC_INNER_PRODUCT)

    def approximate(row: int) -> Any:  # exactly the engine's call
        return index.search(vectors[row : row + 1], K, None, np.array([row]))

    return [
        time_queries("exact faiss.knn (brute force), in process", rows, exact),
        time_queries(f"{index.config.kind.value} index.search, in process", rows, approximate),
    ]


# ---- report -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything the report states, also written as JSON."""

    arguments: dict[str, Any]
    catalogue: dict[str, Any]
    index_config: dict[str, Any]
    server: dict[str, Any]
    build: dict[str, Any]
    served: list[dict[str, Any]]
    in_process: list[dict[str, Any]]
    recall: float
    recall_queries: int
    targets: list[dict[str, Any]]
    load_average: tuple[float, float]
    generation_seconds: float


def served_figures(result: LoadResult) -> dict[str, Any]:
    count = max(len(result.latencies), 1)
    return {
        "name": result.name,
        "concurrency": result.concurrency,
        "ok": len(result.latencies),
        "errors": result.errors,
        "wall_seconds": result.wall_seconds,
        "rps": result.rps,
        "p50_ms": result.percentile(50),
        "p90_ms": result.percentile(90),
        "p99_ms": result.percentile(99),
        "max_ms": max(result.latencies) * 1e3 if result.latencies else math.nan,
        "server_cpu_seconds": result.server_cpu,
        "client_cpu_seconds": result.client_cpu,
        "server_cpu_ms_per_request": result.server_cpu / count * 1e3,
        "client_cpu_ms_per_request": result.client_cpu / count * 1e3,
    }


def query_figures(times: QueryTimes) -> dict[str, Any]:
    return {
        "name": times.name,
        "queries": len(times.latencies),
        "p50_ms": times.percentile(50),
        "p90_ms": times.percentile(90),
        "p99_ms": times.percentile(99),
        "cpu_ms_per_query": times.cpu_ms_per_query(),
    }


def check_targets(served: list[LoadResult], recall: float) -> list[dict[str, Any]]:
    """The issue's two targets with the figure each was judged on (None: not measured)."""
    at_target = [r for r in served if r.concurrency == TARGET_CONCURRENCY and r.latencies]
    p99 = at_target[0].percentile(99) if at_target else None
    return [
        {
            "target": f"p99 ≤ {TARGET_P99_MS:g} ms at concurrency {TARGET_CONCURRENCY}",
            "value": p99,
            "text": "not measured" if p99 is None else f"{p99:.2f} ms",
            "passed": None if p99 is None else p99 <= TARGET_P99_MS,
        },
        {
            "target": f"recall@{K} ≥ {TARGET_RECALL:g}",
            "value": recall,
            "text": f"{recall:.4f}",
            "passed": bool(recall >= TARGET_RECALL) if math.isfinite(recall) else None,
        },
    ]


def verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "NOT MEASURED"}[passed]


def _console_line(result: LoadResult) -> str:
    return (
        f"{result.name}: {len(result.latencies)} ok, {result.errors} errors, "
        f"{result.rps:.0f} RPS, p50 {result.percentile(50):.2f} ms, "
        f"p90 {result.percentile(90):.2f} ms, p99 {result.percentile(99):.2f} ms, "
        f"server CPU {result.server_cpu_ms_per_request():.3f} ms/request"
    )


def write_chart(
    path: Path, served: list[LoadResult], in_process: list[QueryTimes], title: str
) -> None:
    """Latency CDFs (log ms) of each served level and in-process method, the target marked."""
    import matplotlib

    from muse.core.atomic_write import atomic_file

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cdf, bars) = plt.subplots(1, 2, figsize=(12, 4.2))
    series = [(f"served, concurrency {r.concurrency}", r.latencies) for r in served]
    series += [(t.name, t.latencies) for t in in_process]
    for label, latencies in series:
        if latencies:
            values = np.sort(np.asarray(latencies)) * 1e3
            cdf.plot(values, np.arange(1, values.size + 1) / values.size, label=label)
    cdf.axvline(TARGET_P99_MS, color="black", linestyle="--", linewidth=1)
    cdf.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    cdf.set_xscale("log")
    cdf.set_xlabel("latency (ms, log)")
    cdf.set_ylabel("share of requests")
    cdf.set_title("latency CDF (dashed: 10 ms target, dotted: p99)")
    cdf.grid(True, which="both", alpha=0.3)
    cdf.legend(fontsize=7, loc="lower right")
    labels = [label for label, latencies in series if latencies]
    percentiles = np.array(
        [
            [float(np.percentile(latencies, q)) * 1e3 for q in (50, 90, 99)]
            for _, latencies in series
            if latencies
        ]
    ).reshape(-1, 3)
    positions = np.arange(len(labels))
    for column, (q, offset) in enumerate(((50, -0.25), (90, 0.0), (99, 0.25))):
        bars.bar(positions + offset, percentiles[:, column], width=0.25, label=f"p{q}")
    bars.axhline(TARGET_P99_MS, color="black", linestyle="--", linewidth=1)
    bars.set_yscale("log")
    bars.set_xticks(positions, [label.replace(", ", "\n", 1) for label in labels], fontsize=7)
    bars.set_ylabel("ms (log)")
    bars.set_title("percentiles")
    bars.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as staging:
        figure.savefig(staging, dpi=110, format="png")
    plt.close(figure)


def section_text(outcome: Outcome, chart_name: str, command: str) -> str:
    """The markdown of the "SimilarItems by id" section, markers included."""

    def cell(value: float, digits: int = 2) -> str:
        return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"

    build, catalogue, config = outcome.build, outcome.catalogue, outcome.index_config
    kind = config["kind"]
    parameters = {
        "hnsw": f"M = {config['hnsw_neighbours']}, efConstruction = {config['hnsw_build_beam']}, "
        f"efSearch = {config['hnsw_search_beam']}",
        "ivf_pq": f"{config['ivf_lists'] or 'about 4·√N'} lists, {config['pq_subquantizers']}×"
        f"{config['pq_bits']}-bit PQ, nprobe = {config['ivf_probe']}, exact refine ×"
        f"{config['refine_factor']:g}",
        "exact": "brute force",
    }[kind]
    server = outcome.server
    lines = [
        SECTION_BEGIN,
        "## SimilarItems by id",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} cores shared by the load client and the server; load average "
        f"at start / end {outcome.load_average[0]:.1f} / {outcome.load_average[1]:.1f}. A shared "
        "machine: compare figures within this run; CPU ms per request moves least with other jobs.",
        "",
        f"Catalogue: {catalogue['items']:,} synthetic items, {catalogue['dim']}-d unit vectors "
        f"(seed {catalogue['seed']}): a Gaussian mixture over {catalogue['centres']:,} centres of "
        f"uneven size in {catalogue['categories']} categories, power-law spread around each centre "
        f"(generated in {outcome.generation_seconds:.1f} s).",
        "",
        f"Index: `{kind}` ({parameters}), built by `muse i2i index`'s code in "
        f"{build['build_wall']:.1f} s wall / {build['build_cpu']:.1f} s CPU; bundle written in "
        f"{build['write_wall']:.1f} s wall / {build['write_cpu']:.1f} s CPU (checksums and the "
        f"manifest's recall check: recall@{config['recall_k']} {build['manifest_recall']:.4f} over "
        f"{build['manifest_recall_queries']:,} items); {build['bundle_bytes'] / 2**20:.0f} MiB on "
        f"disk (`{build['version']}`).",
        "",
        "Server: the `muse serve` host (`serve_until_signalled`: admission, error interceptor, "
        "health, reflection, /metrics) in a child process, hosting the similar-items service alone, "
        f"{server['search_threads']} search thread(s) × {server['faiss_threads']} faiss thread(s). "
        f"Each level: {outcome.arguments['warmup']} warm-up requests, then up to "
        f"{outcome.arguments['requests']:,} `SimilarItems(item_id, k = {K})` by closed-loop "
        f"workers, cycling {outcome.arguments['queries']:,} distinct catalogue items.",
        "",
        "| path | concurrency | requests ok | errors | RPS | p50 ms | p90 ms | p99 ms | max ms | "
        "server CPU ms/request | client CPU ms/request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in outcome.served:
        lines.append(
            f"| served (gRPC) | {row['concurrency']} | {row['ok']:,} | {row['errors']} | "
            f"{cell(row['rps'], 0)} | {cell(row['p50_ms'])} | {cell(row['p90_ms'])} | "
            f"{cell(row['p99_ms'])} | {cell(row['max_ms'])} | "
            f"{cell(row['server_cpu_ms_per_request'], 3)} | "
            f"{cell(row['client_cpu_ms_per_request'], 3)} |"
        )
    for row in outcome.in_process:
        lines.append(
            f"| {row['name']} | 1 | {row['queries']:,} | 0 | "
            f"{cell(1e3 / row['p50_ms'] if row['p50_ms'] else math.nan, 0)} | "
            f"{cell(row['p50_ms'])} | {cell(row['p90_ms'])} | {cell(row['p99_ms'])} | — | "
            f"{cell(row['cpu_ms_per_query'], 3)} | — |"
        )
    exact, approximate = outcome.in_process
    one = [row for row in outcome.served if row["concurrency"] == 1]
    lines += [
        "",
        f"In-process rows: the same query items, one at a time with {server['faiss_threads']} "
        "faiss thread(s) (the server's setting), no gRPC; their RPS column is 1 / p50.",
        "",
        "Ratios in this run:",
        "",
        f"- exact faiss.knn p50 / {kind} index.search p50 (both in process): "
        f"×{exact['p50_ms'] / approximate['p50_ms']:.1f}",
    ]
    if one:
        lines.append(
            f"- exact faiss.knn p50 / served p50 at concurrency 1 (gRPC included): "
            f"×{exact['p50_ms'] / one[0]['p50_ms']:.1f}"
        )
    lines += [
        "",
        f"Recall@{K} of the served answers against exact search (tie-aware: a returned item as "
        f"close as the exact {K}th counts; `SimilarItemIndex.recall_of`) over the "
        f"{outcome.recall_queries:,} distinct query items answered at the first level: "
        f"**{outcome.recall:.4f}**.",
        "",
        "Targets:",
        "",
        *[f"- {t['target']}: {t['text']} → **{verdict(t['passed'])}**" for t in outcome.targets],
        "",
        f"![SimilarItems latency]({chart_name})",
        "",
        "Configuration of this run:",
        "",
        "```json",
        json.dumps(
            {
                "arguments": outcome.arguments,
                "catalogue": outcome.catalogue,
                "index": outcome.index_config,
                "server": outcome.server,
            },
            indent=2,
            default=str,
        ),
        "```",
        SECTION_END,
    ]
    return "\n".join(lines)


def replace_section(existing: str | None, section: str) -> str:
    """``existing`` with this benchmark's marked section replaced by ``section``."""
    from benchmarks.report_section import replace_section as replace

    return replace(existing, section, SECTION_BEGIN, SECTION_END, "Item-to-item serving")


def write_report(out: Path, outcome: Outcome, served: list[LoadResult], in_process, command: str):
    """Write the section into ``out`` and the chart beside it; returns (section, chart path)."""
    from muse.core.atomic_write import write_text_atomic

    chart = out.with_name(f"{out.stem}_similar_items.png")
    write_chart(
        chart,
        served,
        in_process,
        f"SimilarItems by id, {outcome.catalogue['items']:,} items, "
        f"{outcome.index_config['kind']}, k = {K}",
    )
    section = section_text(outcome, chart.name, command)
    existing = out.read_text() if out.exists() else None
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, replace_section(existing, section))
    return section, chart


# ---- main ---------------------------------------------------------------------------------------


def parse_levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"concurrency levels must be ≥ 1, got {text!r}")
    return levels


def build_parser() -> argparse.ArgumentParser:
    from muse.core.config_loader import add_override_argument

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="catalogue size")
    parser.add_argument("--dim", type=int, default=64, help="embedding width")
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests per level")
    parser.add_argument("--warmup", type=int, default=500, help="warm-up requests per level")
    parser.add_argument(
        "--concurrency",
        type=parse_levels,
        default=[8, 1],
        help="comma-separated levels (default 8,1; the p99 target is judged at 8)",
    )
    parser.add_argument(
        "--queries", type=int, default=2000, help="distinct query items the requests cycle"
    )
    parser.add_argument(
        "--exact-queries", type=int, default=500, help="queries timed in process (faiss.knn)"
    )
    parser.add_argument("--seconds", type=float, default=600.0, help="most seconds per level")
    parser.add_argument("--seed", type=int, default=0, help="catalogue and query sample seed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report")
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="bundle, server log, results JSON"
    )
    parser.add_argument("--index-config", type=Path, default=DEFAULT_INDEX_CONFIG)
    parser.add_argument(
        "--ivf-pq",
        action="store_true",
        help=f"IVF-PQ with exact refine ({', '.join(IVF_PQ_OVERRIDES)}) before any --set",
    )
    add_override_argument(parser, "hnsw_search_beam=256")
    parser.add_argument("--search-threads", type=int, default=2, help="server search threads")
    parser.add_argument("--faiss-threads", type=int, default=1, help="faiss threads per search")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it: reports never hold machine paths."""
    resolved = path.resolve()
    return (
        str(resolved.relative_to(REPOSITORY)) if resolved.is_relative_to(REPOSITORY) else str(path)
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve-similar-items"]:
        return serve_similar_items(argv[1:])
    args = build_parser().parse_args(argv)
    return run(args, argv)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from tqdm import tqdm

    from muse.core.atomic_write import write_text_atomic
    from muse.core.config_loader import config_to_dict, load_config
    from muse.item2item.index.index_config import IndexConfig

    overrides = [*(IVF_PQ_OVERRIDES if args.ivf_pq else ()), *args.overrides]
    config = load_config(IndexConfig, args.index_config, overrides)
    load_start = os.getloadavg()[0]
    args.workdir.mkdir(parents=True, exist_ok=True)

    spec = CatalogueSpec(items=args.items, dim=args.dim, seed=args.seed)
    bar = tqdm(
        total=spec.items, desc="embeddings", unit="item", unit_scale=True, disable=not args.progress
    )
    started = time.perf_counter()
    catalogue = synthetic_catalogue(spec, bar.update)
    generation_seconds = time.perf_counter() - started
    bar.close()

    index, build = build_bundle(
        catalogue, config, args.workdir / "bundles" / BUNDLE_NAME, args.progress
    )
    print(
        f"built {config.kind.value} over {index.size:,} items in {build.build_wall:.1f} s wall / "
        f"{build.build_cpu:.1f} s CPU; bundle {build.version} written in {build.write_wall:.1f} s "
        f"(manifest recall@{config.recall_k} {build.manifest_recall:.4f})",
        flush=True,
    )
    del catalogue  # the index holds its own unit vectors

    rng = np.random.default_rng(args.seed + 1)
    query_rows = rng.choice(index.size, size=min(args.queries, index.size), replace=False)
    served, answers = drive_server(args, index.item_ids[query_rows], args.concurrency)

    print("timing exact faiss.knn and the index in process ...", flush=True)
    timed_rows = query_rows[: max(1, min(args.exact_queries, query_rows.size))]
    in_process = in_process_times(index, timed_rows, args.faiss_threads)
    answered = [position for position, found in enumerate(answers) if found is not None]
    recall = index.recall_of(query_rows[answered], [answers[p] for p in answered], K)

    targets = check_targets(served, recall)
    outcome = Outcome(
        arguments={
            key: (_shown(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()
        }
        | {"argv": argv},
        catalogue=asdict(spec) | {"centres": spec.centres},
        index_config=config_to_dict(config),
        server={"search_threads": args.search_threads, "faiss_threads": args.faiss_threads},
        build=asdict(build),
        served=[served_figures(result) for result in served],
        in_process=[query_figures(times) for times in in_process],
        recall=recall,
        recall_queries=len(answered),
        targets=targets,
        load_average=(load_start, os.getloadavg()[0]),
        generation_seconds=generation_seconds,
    )
    command = shlex.join([".venv/bin/python", "benchmarks/similar_items.py", *argv])
    section, chart = write_report(args.out, outcome, served, in_process, command)
    write_text_atomic(
        args.workdir / "similar_items.json", json.dumps(asdict(outcome), indent=2) + "\n"
    )
    for times in in_process:
        print(
            f"{times.name}: p50 {times.percentile(50):.3f} ms, p99 {times.percentile(99):.3f} ms, "
            f"CPU {times.cpu_ms_per_query():.3f} ms/query",
            flush=True,
        )
    print(f"recall@{K} of the served answers over {len(answered):,} items: {recall:.4f}")
    for target in targets:
        print(f"{verdict(target['passed'])}: {target['target']} ({target['text']})")
    print(f"report → {args.out} (section 'SimilarItems by id'), chart → {chart}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
