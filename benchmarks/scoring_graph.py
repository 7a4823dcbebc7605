"""ESU + tower benchmark (issue 11, target 4): one request of C candidates through the second stage.

    .venv/bin/python benchmarks/scoring_graph.py [--candidates 200] [--repeats 60] [--quick]

MUSE (configs/ranking/muse.toml: ID dim 16, K = 50, recent 50, SA-TA + SimTier, tower
256-128-64) with serving-sized ID tables, untrained weights. One request: one user, C candidates,
each with its K searched behaviours drawn from the user's history of L items. Measured, methods
interleaved round-robin in one process, median wall and CPU milliseconds per request:

- the request graph (``score_requests``: per-user work once per request, searched behaviours once
  per distinct item) in onnxruntime: what the server runs;
- its peer, the row graph (``score_plain``: one row per candidate, the user's parts repeated) in
  onnxruntime: what the server ran before;
- both in eager torch.

Writes docs/results/scoring_graph.md and scoring_graph.png.
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

# Before torch loads libgomp: no method's threads wait for another's spinning ones.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from muse.core.config_loader import config_from_dict, read_toml  # noqa: E402
from muse.ranking.models import (  # noqa: E402
    FeatureSpec,
    RankingModel,
    RankingModelConfig,
    build_ranking_model,
)
from muse.ranking.models.request_scoring import (  # noqa: E402
    RequestScoringInputs,
    request_inputs_from_scoring,
)
from muse.ranking.models.scoring_graph import (  # noqa: E402
    export_request_scoring_onnx,
    export_scoring_onnx,
)
from muse.ranking.models.scoring_inputs import ScoringInputs  # noqa: E402
from muse.search import EmbeddingTable  # noqa: E402

TARGET_MS = 1.5
MODEL_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "ranking" / "muse.toml"
CATEGORIES = 10_000


class Scenario(NamedTuple):
    """One request shape: history length L (the searched behaviours are drawn from it)."""

    name: str
    history_length: int


class Timing(NamedTuple):
    wall_ms: float
    cpu_ms: float


def build_model(seed: int, items: int) -> RankingModel:
    raw = read_toml(MODEL_CONFIG)["model"]
    config = config_from_dict(RankingModelConfig, raw, str(MODEL_CONFIG), "model.")
    features = FeatureSpec(
        item_vocabulary_size=items,
        category_vocabulary_size=CATEGORIES,
        item_attributes=(("city", 300), ("province", 30)),
        profile_features=tuple((f"profile_{i}", 50) for i in range(5)),
        multimodal_dim=128,
    )
    rng = np.random.default_rng(seed)
    table = EmbeddingTable(rng.integers(-127, 128, size=(1000, 128), dtype=np.int8), 1 / 127)
    torch.manual_seed(seed)
    return build_ranking_model(config, features, table).eval()


def request(model: RankingModel, candidates: int, history_length: int, seed: int) -> ScoringInputs:
    """Row-wise inputs of one request: the user's parts repeated on every candidate row."""
    rng = np.random.default_rng(seed)
    top_k, recent = model.config.search.top_k, model.config.recent_length
    items = model.features.item_vocabulary_size

    def ids(high: int, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.from_numpy(rng.integers(2, high, size=shape))

    history = ids(items, (history_length,))
    selected = history[torch.from_numpy(rng.integers(0, history_length, (candidates, top_k)))]
    recent_items = history[-recent:]

    def repeated(row: torch.Tensor) -> torch.Tensor:
        return row[None].expand(candidates, -1).contiguous()

    return ScoringInputs(
        user_profile=repeated(ids(50, (5,))),
        target_item=ids(items, (candidates,)),
        target_category=ids(CATEGORIES, (candidates,)),
        target_attributes=ids(30, (candidates, 2)),
        selected_items=selected,
        selected_categories=selected % (CATEGORIES - 2) + 2,
        selected_cosines=torch.from_numpy(rng.uniform(-0.2, 1.0, (candidates, top_k))).float(),
        selected_mask=torch.ones((candidates, top_k), dtype=torch.bool),
        recent_items=repeated(recent_items),
        recent_categories=repeated(recent_items % (CATEGORIES - 2) + 2),
        recent_cosines=torch.from_numpy(rng.uniform(-0.2, 1.0, (candidates, recent))).float(),
        recent_mask=torch.ones((candidates, recent), dtype=torch.bool),
    )


def onnx_session(path: Path, threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_methods(methods: dict[str, Callable[[], object]], repeats: int) -> dict[str, Timing]:
    """Median wall and process-CPU ms per call, methods interleaved round-robin."""
    walls: dict[str, list[float]] = {name: [] for name in methods}
    cpus: dict[str, list[float]] = {name: [] for name in methods}
    for function in methods.values():
        function()
    for _ in range(repeats):
        for name, function in methods.items():
            cpu, wall = time.process_time(), time.perf_counter()
            function()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {
        name: Timing(statistics.median(walls[name]) * 1e3, statistics.median(cpus[name]) * 1e3)
        for name in methods
    }


def run(args: argparse.Namespace) -> tuple[list[tuple[str, int, int, dict[str, Timing]]], float]:
    model = build_model(args.seed, args.items)
    workdir = Path(tempfile.mkdtemp(prefix="scoring-graph-"))
    example = request(model, 4, 64, args.seed)
    row_path = export_scoring_onnx(model, example, workdir / "score.onnx")
    request_path = export_request_scoring_onnx(
        model,
        request_inputs_from_scoring(example, torch.arange(4) % 2),
        workdir / "score_requests.onnx",
    )
    results = []
    largest_difference = 0.0
    scenarios = [Scenario("L=1,000", 1_000), Scenario("L=100,000", 100_000)]
    for scenario in scenarios[:1] if args.quick else scenarios:
        rows = request(model, args.candidates, scenario.history_length, args.seed + 1)
        shared = request_inputs_from_scoring(rows, torch.zeros(args.candidates, dtype=torch.int64))
        with torch.no_grad():
            largest_difference = max(
                largest_difference,
                float((model.score_plain(rows) - model.score_requests(shared)).abs().max()),
            )
        row_feed = {name: value.numpy() for name, value in rows._asdict().items()}
        request_feed = {name: value.numpy() for name, value in shared._asdict().items()}
        for threads in args.threads:
            torch.set_num_threads(threads)
            row_session = onnx_session(row_path, threads)
            request_session = onnx_session(request_path, threads)

            def eager_rows(inputs: ScoringInputs = rows) -> object:
                with torch.no_grad():
                    return model.score_plain(inputs)

            def eager_requests(inputs: RequestScoringInputs = shared) -> object:
                with torch.no_grad():
                    return model.score_requests(inputs)

            timings = time_methods(
                {
                    "request graph, onnxruntime": functools.partial(
                        request_session.run, None, request_feed
                    ),
                    "row graph, onnxruntime": functools.partial(row_session.run, None, row_feed),
                    "request form, torch": eager_requests,
                    "row form, torch": eager_rows,
                },
                args.repeats,
            )
            results.append((scenario.name, int(shared.behaviour_items.numel()), threads, timings))
            if args.progress:
                print(
                    f"{scenario.name} {threads} thread(s): "
                    + ", ".join(f"{n} {t.wall_ms:.2f} ms" for n, t in timings.items()),
                    file=sys.stderr,
                )
    return results, largest_difference


def write_report(
    results: list[tuple[str, int, int, dict[str, Timing]]],
    difference: float,
    args: argparse.Namespace,
    command: str,
) -> Path:
    import matplotlib

    from muse.core.atomic_write import atomic_file, write_text_atomic

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output = Path(args.output_dir)
    names = list(results[0][3])
    lines = [
        "# ESU + tower: one request through the second stage",
        "",
        f"Command: `{command}`",
        "",
        f"MUSE (configs/ranking/muse.toml: ID dim 16, K = 50, recent 50, SA-TA + SimTier, tower "
        f"256-128-64), ID tables of {args.items:,} items and {CATEGORIES:,} categories, untrained "
        f"weights; one request of C = {args.candidates} candidates, each with K searched "
        "behaviours drawn from the user's history of L items (*U*: distinct searched behaviours, "
        "what the request graph projects). Median of "
        f"{args.repeats} calls per figure, methods interleaved round-robin, OMP_WAIT_POLICY "
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}, onnxruntime threads not spinning. Load "
        f"average at the end: {os.getloadavg()[0]:.1f}.",
        "",
        "The request graph (`RankingModel.score_requests`) computes the recent window's keys, "
        "values and mean once per request and the searched behaviours' keys and values once per "
        "distinct behaviour; the row graph (`score_plain`) repeats the user's parts on every "
        f"candidate row. Largest logit difference between the two forms: {difference:.1e}.",
        "",
        "| history | U | threads | "
        + " | ".join(f"{n} ms (CPU ms)" for n in names)
        + " | row / request graph |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]
    for scenario, distinct, threads, timings in results:
        cells = " | ".join(f"{t.wall_ms:.2f} ({t.cpu_ms:.2f})" for t in timings.values())
        ratio = timings[names[1]].wall_ms / timings[names[0]].wall_ms
        lines.append(f"| {scenario} | {distinct:,} | {threads} | {cells} | {ratio:.1f}× |")
    lines += ["", "## Target (issue 11): ESU + tower, 200 candidates, ≤ 1.5 ms", ""]
    for scenario, _, threads, timings in results:
        served = timings[names[0]]
        verdict = "met" if served.wall_ms <= TARGET_MS else "NOT met"
        lines.append(
            f"- {scenario}, {threads} thread(s): {served.wall_ms:.2f} ms, {verdict} "
            f"({served.cpu_ms:.2f} CPU ms)"
        )
    chart = output / "scoring_graph.png"
    figure, axis = plt.subplots(figsize=(9, 4))
    labels = [f"{s}\n{t} thread(s)" for s, _, t, _ in results]
    width = 0.8 / len(names)
    for position, name in enumerate(names):
        axis.bar(
            np.arange(len(results)) + position * width,
            [timings[name].wall_ms for _, _, _, timings in results],
            width,
            label=name,
        )
    axis.axhline(TARGET_MS, color="black", linestyle="--", linewidth=1, label="target 1.5 ms")
    axis.set_xticks(np.arange(len(results)) + width * (len(names) - 1) / 2, labels)
    axis.set_ylabel("median ms per request")
    axis.set_title(f"ESU + tower, C = {args.candidates}")
    axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_file(chart) as staging:
        figure.savefig(staging, dpi=110, format="png")
    plt.close(figure)
    lines += ["", f"![ESU + tower per request]({chart.name})", ""]
    path = output / "scoring_graph.md"
    write_text_atomic(path, "\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/scoring_graph.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--candidates", type=int, default=200, help="candidates per request")
    parser.add_argument("--repeats", type=int, default=60, help="timed calls per method")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts")
    parser.add_argument("--items", type=int, default=1_000_000, help="item ID table rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="few candidates and calls: a smoke run"
    )
    parser.add_argument("--output-dir", default="docs/results", help="where the report goes")
    parser.add_argument("--no-write", action="store_true", help="do not write the report")
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress lines"
    )
    given = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(given)
    if args.candidates < 1 or args.repeats < 1:
        parser.error("--candidates and --repeats must be ≥ 1")
    if args.quick:
        args.candidates, args.repeats, args.threads = min(args.candidates, 20), 3, [1]
        args.items = min(args.items, 20_000)
    results, difference = run(args)
    for scenario, distinct, threads, timings in results:
        print(
            f"{scenario} (U={distinct}) {threads} thread(s): "
            + ", ".join(
                f"{n} {t.wall_ms:.2f} ms / {t.cpu_ms:.2f} CPU ms" for n, t in timings.items()
            )
        )
    if not args.no_write:
        command = " ".join(["python benchmarks/scoring_graph.py", *(shlex.quote(a) for a in given)])
        print(f"wrote {write_report(results, difference, args, command)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
