"""Quality report: every ranking model and ablation on the default synthetic dataset, several seeds.

    .venv/bin/python benchmarks/ranking.py [--seeds 3] [--models muse,din_last50,...] [--jobs 2]
        [--quick] [--report docs/results/ranking.md] [--runs-dir runs/ranking-benchmark]

1. Generates the synthetic dataset of ``--data-config`` (default configs/data/synth_default.toml)
   in the Taobao-MM raw schema and converts it with the Taobao-MM reader, unless the runs
   directory already holds one generated from the same resolved config.
2. Trains every ``configs/ranking/*.toml`` (or ``--models``) once per seed with ``muse train``
   (early stopping on a validation split carved from train) and scores the whole test set. Each
   run keeps its resolved config.toml and metrics.json under ``<runs-dir>/runs/<model>/seed<N>``;
   a finished run with an identical config is reused, so an interrupted benchmark resumes.
3. Writes the report (AUC, GAUC, logloss mean ± std over seeds, epochs used, training samples/s,
   the oracle's AUC/GAUC from the true click probabilities), a PNG bar chart of GAUC with error
   bars beside it, and checks the holds of the issue with their figures.

``--quick`` is a smoke run: a tiny synthetic set, 2 epochs, 2 seeds, in-process training, and
the report written under the runs directory unless ``--report`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os

# Idle OpenMP threads sleep instead of spinning: on a shared machine spinning threads made small
# torch ops several times slower (set before torch is imported anywhere).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from features.synthetic_config import SynthConfig
from muse.core.atomic_write import write_text_atomic
from muse.core.config_loader import config_to_dict, load_config

DEFAULT_DATA_CONFIG = Path("configs/data/synth_default.toml")
DEFAULT_CONFIGS = Path("configs/ranking")
DEFAULT_RUNS = Path("runs/ranking-benchmark")
DEFAULT_REPORT = Path("docs/results/ranking.md")
# Wall time of the last invocation that trained anything (runs, parallel jobs, seconds).
TRAINING_PASS = "last_training_pass.json"

# Report labels of the config files (stems of configs/ranking/*.toml); the holds name four of them.
MUSE, SIM_SOFT, SIM_HARD, DIN_LAST_50 = "muse", "sim_soft", "sim_hard", "din_last50"
LABELS = {
    "muse": "MUSE (SA-TA + SimTier)",
    "muse_paper_sata": "MUSE, paper SA-TA form",
    "muse_id_ta_only": "ablation: ID target attention only",
    "muse_simtier_only": "ablation: SimTier only",
    "muse_ta_simtier": "ablation: TA + SimTier",
    "muse_sata_only": "ablation: SA-TA only",
    "din_last50": "DIN (last 50)",
    "din_full": "DIN (whole history)",
    "sim_hard": "SIM-hard",
    "sim_soft": "SIM-soft",
    "eta": "ETA",
    "twin": "TWIN",
}
# The MUSE ablations in the paper's table order, with its production GAUCs (REFERENCE.md §2).
ABLATIONS = (
    ("muse_id_ta_only", 0.6301),
    ("muse_simtier_only", 0.6345),
    ("muse_ta_simtier", 0.6361),
    ("muse_sata_only", 0.6339),
    ("muse", 0.6377),
)

# --quick: a tiny world that still has long-term interests deep in the history.
QUICK_DATA = (
    "num_users=160",
    "catalogue.num_items=3000",
    "catalogue.num_topics=60",
    "catalogue.num_categories=20",
    "catalogue.num_cities=20",
    "catalogue.num_provinces=5",
    "history.length=80",
    "history.test_time_gap=10",
    "history.short_term_window=10",
    "history.long_term_share=0.1",
    "impressions.train_per_user=12",
    "impressions.test_per_user=6",
    "click.calibration_users=200",
)
# Every run: stop after one validation without improvement (these models peak within 1-3 epochs
# on the default data and then overfit their ID embeddings; patience 2 only adds an epoch).
BENCHMARK_TRAINING = ("training.patience=1",)
QUICK_TRAINING = (
    "training.max_epochs=2",
    "training.batch_size=256",
    "training.evaluation_batch_size=1024",
)
QUICK_MODELS = (MUSE, DIN_LAST_50, SIM_HARD, SIM_SOFT)


@dataclass(frozen=True)
class RunSpec:
    """One training run: a model config file, a seed, the overrides and where it writes."""

    model: str
    config_path: Path
    seed: int
    overrides: tuple[str, ...]
    run_dir: Path


class DatasetInfo(NamedTuple):
    """The generated dataset and its synthetic summary (oracle figures among them)."""

    dataset: Path
    history_length: int
    summary: dict[str, Any]


class ModelResult(NamedTuple):
    """Aggregates of one model over its seeds (sample std; NaN with one seed)."""

    model: str
    seeds: list[int]
    auc: list[float]
    gauc: list[float]
    logloss: list[float]
    epochs: list[int]
    best_epochs: list[int]
    samples_per_second: list[float]

    @staticmethod
    def mean(values: Sequence[float]) -> float:
        return statistics.fmean(values) if values else math.nan

    @staticmethod
    def std(values: Sequence[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else math.nan


# ---- data ------------------------------------------------------------------------------------


def prepare_dataset(
    data_config: Path, data_overrides: Sequence[str], data_dir: Path, progress: bool
) -> DatasetInfo:
    """Generate + convert the synthetic dataset, or reuse one made from the same resolved config."""
    from features.dataset import write_dataset
    from features.synthetic import generate_synthetic
    from features.taobao_mm import read_taobao_mm

    config = load_config(SynthConfig, data_config, list(data_overrides))
    resolved = config_to_dict(config)
    summary_path = data_dir / "synth_summary.json"
    dataset = data_dir / "dataset"
    if summary_path.is_file() and (dataset / "manifest.json").is_file():
        saved = json.loads(summary_path.read_text())
        if saved.get("config") == resolved:
            print(f"reusing the synthetic dataset in {dataset}")
            return DatasetInfo(dataset, config.history.length, saved)
    started = time.perf_counter()
    summary = generate_synthetic(config, data_dir / "raw", progress=progress)
    write_dataset(read_taobao_mm(data_dir / "raw", progress=progress), dataset)
    record = {
        "config": resolved,
        **{
            name: (str(value) if isinstance(value, Path) else value)
            for name, value in summary._asdict().items()
        },
        "prepare_seconds": time.perf_counter() - started,
    }
    write_text_atomic(summary_path, json.dumps(record, indent=2) + "\n")
    print(
        f"synthetic dataset: {summary.num_users:,} users, {summary.num_train_samples:,} train / "
        f"{summary.num_test_samples:,} test samples, oracle GAUC {summary.oracle_gauc:.4f} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    return DatasetInfo(dataset, config.history.length, record)


# ---- runs ------------------------------------------------------------------------------------


def plan_runs(
    models: Sequence[str],
    configs_dir: Path,
    seeds: Sequence[int],
    info: DatasetInfo,
    training_overrides: Sequence[str],
    runs_dir: Path,
    threads: int,
) -> list[RunSpec]:
    """One RunSpec per (model, seed), in model order; histories are cut at the dataset's length."""
    specs = []
    for model in models:
        path = configs_dir / f"{model}.toml"
        if not path.is_file():
            raise SystemExit(f"no model config {path}")
        for seed in seeds:
            run_dir = runs_dir / "runs" / model / f"seed{seed}"
            overrides = (
                f"data.dataset={json.dumps(str(info.dataset))}",
                f"data.max_history_length={info.history_length}",
                f"training.seed={seed}",
                f"training.threads={threads}",
                f"training.output_dir={json.dumps(str(run_dir))}",
                *training_overrides,
            )
            specs.append(RunSpec(model, path, seed, overrides, run_dir))
    return specs


def resolved_config(spec: RunSpec) -> dict[str, Any]:
    from muse.ranking.training.train_config import TrainConfig

    return config_to_dict(load_config(TrainConfig, spec.config_path, list(spec.overrides)))


def finished(spec: RunSpec) -> bool:
    """Whether ``spec`` already ran to the end with exactly this config."""
    import tomllib

    metrics, config = spec.run_dir / "metrics.json", spec.run_dir / "config.toml"
    if not (metrics.is_file() and config.is_file()):
        return False
    with config.open("rb") as handle:
        return tomllib.load(handle) == json.loads(json.dumps(resolved_config(spec)))


def run_in_process(spec: RunSpec) -> None:
    from muse.ranking.training.train_config import TrainConfig
    from muse.ranking.training.training_job import train

    train(
        load_config(TrainConfig, spec.config_path, list(spec.overrides)),
        spec.run_dir,
        progress=False,
    )


def run_subprocess(spec: RunSpec, log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{spec.model}-seed{spec.seed}.log"
    command = [sys.executable, "-m", "muse.cli", "train", "--config", str(spec.config_path)]
    for override in spec.overrides:
        command += ["--set", override]
    command += ["--out", str(spec.run_dir), "--no-progress"]
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{spec.model} seed {spec.seed} failed (exit {result.returncode}); see {log}"
        )


def execute(specs: Sequence[RunSpec], jobs: int, log_dir: Path) -> None:
    """Run the unfinished specs: in this process (jobs 0) or as ``jobs`` parallel subprocesses."""
    pending = [spec for spec in specs if not finished(spec)]
    print(
        f"{len(specs) - len(pending)} of {len(specs)} runs already finished; {len(pending)} to train"
    )
    for spec in pending:  # a stale partial run (killed mid-way) starts over
        if (spec.run_dir / "checkpoints" / "last.pt").exists():
            import shutil

            shutil.rmtree(spec.run_dir)
    started = time.perf_counter()
    done = 0

    def one(spec: RunSpec) -> None:
        nonlocal done
        began = time.perf_counter()
        if jobs == 0:
            run_in_process(spec)
        else:
            run_subprocess(spec, log_dir)
        done += 1
        metrics = json.loads((spec.run_dir / "metrics.json").read_text())
        print(
            f"[{done}/{len(pending)}] {spec.model} seed {spec.seed}: GAUC {metrics['gauc']:.4f} "
            f"AUC {metrics['auc']:.4f}, {metrics['epochs']} epochs, {time.perf_counter() - began:.0f} s "
            f"(elapsed {time.perf_counter() - started:.0f} s)",
            flush=True,
        )

    if jobs <= 1:
        for spec in pending:
            one(spec)
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(one, spec) for spec in pending]:
                future.result()
    if pending:
        record = {"runs": len(pending), "jobs": jobs, "seconds": time.perf_counter() - started}
        write_text_atomic(log_dir.parent / TRAINING_PASS, json.dumps(record) + "\n")


# ---- results ---------------------------------------------------------------------------------


def collect(specs: Sequence[RunSpec]) -> tuple[dict[str, ModelResult], dict[str, float] | None]:
    """Per-model aggregates and the oracle's test metrics (identical in every run)."""
    rows: dict[str, ModelResult] = {}
    oracle = None
    for spec in specs:
        metrics = json.loads((spec.run_dir / "metrics.json").read_text())
        result = rows.setdefault(spec.model, ModelResult(spec.model, [], [], [], [], [], [], []))
        result.seeds.append(spec.seed)
        result.auc.append(metrics["auc"])
        result.gauc.append(metrics["gauc"])
        result.logloss.append(metrics["logloss"])
        result.epochs.append(metrics["epochs"])
        result.best_epochs.append(metrics["best_epoch"])
        result.samples_per_second.append(metrics["train_samples_per_second"])
        oracle = metrics.get("oracle") or oracle
    return rows, oracle


def search_overlap(spec: RunSpec, nearest: int = 10, samples: int = 4096) -> float | None:
    """Share of the ``nearest`` behaviours by MM cosine that ``spec``'s trained first stage keeps.

    Loads the run's best checkpoint, searches the first ``samples`` test impressions with the
    model's own first stage (its top-K) and with the exact cosine top-``nearest``, and averages
    |kept ∩ nearest| / |nearest| over impressions with any history. None without a search.
    """
    import numpy as np
    import torch

    from features.dataset import Dataset
    from muse.ranking.models import FeatureSpec, build_ranking_model
    from muse.ranking.models.ranking_config import SearchKind
    from muse.ranking.models.search_stage import SearchRequest
    from muse.ranking.training.batch_builder import BatchBuilder
    from muse.ranking.training.sample_table import SampleTable
    from muse.ranking.training.train_config import TrainConfig
    from muse.search import EmbeddingTable
    from muse.search.cosine_top_k import top_k

    config = load_config(TrainConfig, spec.run_dir / "config.toml")
    if config.model.search.kind is SearchKind.NONE:
        return None
    dataset = Dataset(config.data.dataset)
    model = build_ranking_model(
        config.model, FeatureSpec.from_dataset(dataset), EmbeddingTable.from_dataset(dataset)
    )
    checkpoint = torch.load(spec.run_dir / "checkpoints" / "best.pt", weights_only=False)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    test = SampleTable.load(dataset, "test")
    rows = np.arange(min(samples, len(test)))
    batch = BatchBuilder(dataset, config.data.max_history_length).build(test, rows)
    with torch.no_grad():
        target = model.table.gather_normalized(batch.target_item)
        request = SearchRequest(
            batch.history_items,
            batch.history_categories,
            batch.target_item[:, None],
            batch.target_category[:, None],
            target[:, None] if config.model.uses_multimodal else None,
            config.model.search.top_k,
            model.table,
            id_embeddings=model.sparse,
            long_term_attention=model.esu.long_term,
        )
        found = model.selection.search(request)
        cosine = top_k(model.table, batch.history_items, target.unsqueeze(1), nearest)
    shares = []
    for row in range(rows.size):
        wanted = set(cosine.positions[row, 0][cosine.mask[row, 0]].tolist())
        if wanted:
            kept = set(found.positions[row, 0][found.mask[row, 0]].tolist())
            shares.append(len(kept & wanted) / len(wanted))
    return float(np.mean(shares)) if shares else None


class Hold(NamedTuple):
    """One claim of the issue, its figures and whether it holds."""

    claim: str
    holds: bool | None  # None when a model it needs was not run
    detail: str


def beyond_two_std(results: dict[str, ModelResult], better: str, worse: str) -> Hold:
    """GAUC(better) − GAUC(worse) > 2 × the std of that difference (√(s₁² + s₂²) over seeds)."""
    claim = f"{label(better)} > {label(worse)} on GAUC, beyond 2 std"
    if better not in results or worse not in results:
        return Hold(claim, None, "not run")
    high, low = results[better], results[worse]
    difference = ModelResult.mean(high.gauc) - ModelResult.mean(low.gauc)
    spread = math.sqrt(ModelResult.std(high.gauc) ** 2 + ModelResult.std(low.gauc) ** 2)
    holds = difference > 2 * spread if not math.isnan(spread) else None
    return Hold(
        claim,
        holds,
        f"{ModelResult.mean(high.gauc):.4f} − {ModelResult.mean(low.gauc):.4f} = {difference:+.4f}; "
        f"2 std of the difference = {2 * spread:.4f} (std {ModelResult.std(high.gauc):.4f} and "
        f"{ModelResult.std(low.gauc):.4f}); margin / std = {difference / spread if spread else math.inf:.1f}",
    )


def gap_closed(results: dict[str, ModelResult], oracle_gauc: float | None) -> Hold:
    claim = (
        f"{label(MUSE)} closes ≥ 70% of the GAUC gap between {label(DIN_LAST_50)} and the oracle"
    )
    if MUSE not in results or DIN_LAST_50 not in results or oracle_gauc is None:
        return Hold(claim, None, "not run")
    muse, din = ModelResult.mean(results[MUSE].gauc), ModelResult.mean(results[DIN_LAST_50].gauc)
    share = (muse - din) / (oracle_gauc - din)
    return Hold(
        claim,
        share >= 0.70,
        f"({muse:.4f} − {din:.4f}) / ({oracle_gauc:.4f} − {din:.4f}) = {share:.1%}",
    )


def ablation_ordering(results: dict[str, ModelResult]) -> str | None:
    """The ablations ordered by test GAUC, each step's margin in std of the difference, and the
    paper's order."""
    present = [(name, paper) for name, paper in ABLATIONS if name in results]
    if len(present) < 2:
        return None
    found = sorted(present, key=lambda item: ModelResult.mean(results[item[0]].gauc))
    paper = sorted(present, key=lambda item: item[1])
    parts = []
    for position, (name, _) in enumerate(found):
        gauc = results[name].gauc
        std = ModelResult.std(gauc)
        text = f"{label(name)} {ModelResult.mean(gauc):.4f}" + (
            f" ± {std:.4f}" if not math.isnan(std) else ""
        )
        if position:
            below = results[found[position - 1][0]].gauc
            spread = math.sqrt(std**2 + ModelResult.std(below) ** 2)
            margin = ModelResult.mean(gauc) - ModelResult.mean(below)
            if spread > 0 and not math.isnan(spread):
                text = f"({margin / spread:.1f} std) {text}"
        parts.append(text)
    paper_text = " < ".join(f"{label(name)} {value:.4f}" for name, value in paper)
    return (
        f"Found (test GAUC, mean ± std over seeds; in brackets each step's margin in std of the "
        f"difference, < 2 being within noise): {' < '.join(parts)}.\n\n"
        f"Paper (production-5k GAUC): {paper_text}."
    )


def describe_training_pass(path: Path, total_runs: int, elapsed: float) -> str:
    """One sentence on how long training took, from the last pass that trained anything."""
    if not path.is_file():
        return f"This invocation took {elapsed / 60:.0f} min wall."
    record = json.loads(path.read_text())
    parallel = "in this process" if record["jobs"] == 0 else f"{record['jobs']} at a time"
    return (
        f"The last training pass trained {record['runs']} of the {total_runs} runs ({parallel}) "
        f"in {record['seconds'] / 60:.0f} min wall on the shared 2-core machine."
    )


def label(model: str) -> str:
    return LABELS.get(model, model)


def plot(results: dict[str, ModelResult], oracle: dict[str, float] | None, path: Path) -> None:
    """Bar chart of test GAUC (mean ± std over seeds) with the oracle as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(results, key=lambda name: ModelResult.mean(results[name].gauc))
    means = [ModelResult.mean(results[name].gauc) for name in order]
    errors = [
        0.0 if math.isnan(s) else s for s in (ModelResult.std(results[n].gauc) for n in order)
    ]
    figure, axis = plt.subplots(figsize=(9, 0.45 * len(order) + 1.8))
    colours = ["tab:red" if name == MUSE else "tab:blue" for name in order]
    axis.barh([label(name) for name in order], means, xerr=errors, color=colours, capsize=4)
    low = min(m - e for m, e in zip(means, errors, strict=True))
    high = max(means)
    if oracle is not None:
        axis.axvline(
            oracle["gauc"], color="black", linestyle="--", label=f"oracle {oracle['gauc']:.4f}"
        )
        high = max(high, oracle["gauc"])
        axis.legend(loc="lower right")
    axis.set_xlim(max(0.0, low - 0.03), min(1.0, high + 0.02))
    for row, mean in enumerate(means):  # the value at the bar's base, clear of the error bars
        axis.text(axis.get_xlim()[0] + 0.004, row, f"{mean:.4f}", va="center", color="white")
    axis.set_xlabel("test GAUC (mean ± std over seeds)")
    axis.set_title("Ranking models on the synthetic lifelong benchmark")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(staging, dpi=110)
    plt.close(figure)
    os.replace(staging, path)


def format_report(
    results: dict[str, ModelResult],
    oracle: dict[str, float] | None,
    info: DatasetInfo,
    holds: list[Hold],
    ordering: str | None,
    command: str,
    png_name: str,
    training_overrides: Sequence[str],
    jobs_note: str,
    overlaps: dict[str, float | None],
    training_pass: str,
) -> str:
    summary = info.summary
    lines = [
        "# Ranking quality on the synthetic lifelong benchmark",
        "",
        f"Command: `{command}`. {training_pass}",
        "",
        f"Dataset: `{info.dataset}` from the synthetic generator "
        f"({summary.get('num_users', '?'):,} users, {summary.get('num_items', '?'):,} items, "
        f"{info.history_length:,}-long histories, {summary.get('num_train_samples', 0):,} train / "
        f"{summary.get('num_test_samples', 0):,} test samples, test positive rate "
        f"{summary.get('test_positive_rate', math.nan):.1%}). Each model trains with early stopping "
        "on GAUC over a validation split of 10% of the train users (never the test set) and is "
        "scored on the whole test set with the best validation weights. Exact AUC, GAUC "
        "(impression-weighted per-user AUC over users with both classes) and logloss.",
        "",
    ]
    if training_overrides:
        lines += [f"Training overrides for every model: `{' '.join(training_overrides)}`.", ""]
    lines += [
        "| model | runs | test AUC | test GAUC | test logloss | epochs (best) | train samples/s "
        "| keeps the 10 nearest |",
        "| --- | ---: | --- | --- | --- | --- | ---: | ---: |",
    ]

    def pm(values: list[float]) -> str:
        std = ModelResult.std(values)
        return (
            f"{ModelResult.mean(values):.4f} ± {std:.4f}"
            if not math.isnan(std)
            else f"{values[0]:.4f}"
        )

    for name in sorted(results, key=lambda n: -ModelResult.mean(results[n].gauc)):
        row = results[name]
        epochs = ", ".join(f"{e} ({b})" for e, b in zip(row.epochs, row.best_epochs, strict=True))
        bold = "**" if name == MUSE else ""
        lines.append(
            f"| {bold}{label(name)}{bold} (`{name}`) | {len(row.seeds)} | {pm(row.auc)} | "
            f"{bold}{pm(row.gauc)}{bold} | {pm(row.logloss)} | {epochs} | "
            f"{ModelResult.mean(row.samples_per_second):,.0f} | "
            f"{'–' if overlaps.get(name) is None else f'{overlaps[name]:.1%}'} |"
        )
    if oracle is not None:
        lines.append(
            f"| oracle (true click probability) | – | {oracle['auc']:.4f} | {oracle['gauc']:.4f} | "
            f"{oracle['logloss']:.4f} | – | – | – |"
        )
    lines += [
        "",
        f"Ceilings from the generator (the click model with its long-term count restricted to what a "
        f"family can see, true weights): last 50 behaviours only "
        f"{summary.get('last_50_oracle_gauc', math.nan):.4f} GAUC; same-category behaviours + last 50 "
        f"{summary.get('same_category_oracle_gauc', math.nan):.4f} GAUC.",
        "",
        f"![GAUC by model]({png_name})",
        "",
        "## Closing note: the holds",
        "",
        '"Beyond 2 std" means the difference of the mean GAUCs exceeds twice the standard deviation '
        "of that difference, √(s₁² + s₂²), with s the sample std over seeds.",
        "",
    ]
    for hold in holds:
        verdict = {True: "**holds**", False: "**does not hold**", None: "not measured"}[hold.holds]
        lines.append(f"- {hold.claim}: {verdict}. {hold.detail}.")
    if ordering is not None:
        lines += ["", "### MUSE ablations (SA-TA + SimTier is MUSE itself)", "", ordering]
    lines += [
        "",
        "The last column is the share of each impression's 10 most similar behaviours (exact MM "
        "cosine to the target) that the model's trained first stage keeps among its top-K, over "
        "the first 4,096 test impressions, with the best weights of the model's first seed.",
        "",
        "Samples/s is the mean training throughput of the runs (training steps only, evaluation "
        f"excluded; {jobs_note}), measured while other jobs shared the machine, so compare "
        "rows, not machines.",
    ]
    return "\n".join(lines) + "\n"


# ---- main ------------------------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """``3`` → seeds 1, 2, 3; ``7,8`` → seeds 7 and 8."""
    if "," in text:
        return [int(part) for part in text.split(",") if part]
    return list(range(1, int(text) + 1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seeds", help="a count (3 → seeds 1,2,3) or a comma list (default 3; 2 with --quick)"
    )
    parser.add_argument("--models", help="comma list of config names in --configs (default: all)")
    parser.add_argument("--configs", type=Path, default=DEFAULT_CONFIGS)
    parser.add_argument("--data-config", type=Path, default=DEFAULT_DATA_CONFIG)
    parser.add_argument(
        "--data-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="synthetic-data override",
    )
    parser.add_argument(
        "--train-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="training override for every model",
    )
    parser.add_argument(
        "--runs-dir", type=Path, help=f"default {DEFAULT_RUNS} ({DEFAULT_RUNS}-quick with --quick)"
    )
    parser.add_argument(
        "--report", type=Path, help=f"default {DEFAULT_REPORT} (<runs-dir>/ranking.md with --quick)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="parallel training subprocesses; 0 trains in this process (default 2; 0 with --quick)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument(
        "--quick", action="store_true", help="tiny smoke run (see the module docstring)"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    quick = args.quick
    runs_dir = args.runs_dir or (Path(f"{DEFAULT_RUNS}-quick") if quick else DEFAULT_RUNS)
    report = args.report or (runs_dir / "ranking.md" if quick else DEFAULT_REPORT)
    seeds = parse_seeds(args.seeds or ("2" if quick else "3"))
    jobs = args.jobs if args.jobs is not None else (0 if quick else 2)
    if args.models:
        models = [name.strip() for name in args.models.split(",") if name.strip()]
    elif quick:
        models = list(QUICK_MODELS)
    else:
        models = sorted(path.stem for path in args.configs.glob("*.toml"))
    data_overrides = [*(QUICK_DATA if quick else ()), *args.data_set]
    training_overrides = [*BENCHMARK_TRAINING, *(QUICK_TRAINING if quick else ()), *args.train_set]

    info = prepare_dataset(
        args.data_config, data_overrides, runs_dir / "data", not args.no_progress
    )
    specs = plan_runs(models, args.configs, seeds, info, training_overrides, runs_dir, args.threads)
    execute(specs, jobs, runs_dir / "logs")
    results, oracle = collect(specs)

    holds = [
        beyond_two_std(results, MUSE, SIM_SOFT),
        beyond_two_std(results, SIM_HARD, DIN_LAST_50),
        gap_closed(results, oracle["gauc"] if oracle else None),
    ]
    ordering = ablation_ordering(results)
    first_seed = {spec.model: spec for spec in reversed(specs)}  # each model's first seed
    overlaps = {model: search_overlap(spec) for model, spec in first_seed.items()}
    png = report.with_name(f"{report.stem}_gauc.png")
    plot(results, oracle, png)
    command_parts = ["python benchmarks/ranking.py"]
    if quick:
        command_parts.append("--quick")
    command_parts.append(f"--seeds {','.join(map(str, seeds))}")
    if args.models:
        command_parts.append(f"--models {','.join(models)}")
    command_parts += [f"--data-set {item}" for item in args.data_set]
    command_parts += [f"--train-set {item}" for item in args.train_set]
    text = format_report(
        results,
        oracle,
        info,
        holds,
        ordering,
        " ".join(command_parts),
        png.name,
        training_overrides,
        f"{'in-process runs' if jobs == 0 else f'{jobs} runs in parallel'}, "
        f"{args.threads} torch thread(s) each",
        overlaps,
        describe_training_pass(runs_dir / TRAINING_PASS, len(specs), time.perf_counter() - started),
    )
    report.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(report, text)
    summary = {
        "models": {name: row._asdict() for name, row in results.items()},
        "share_of_10_nearest_kept": overlaps,
        "oracle": oracle,
        "holds": [hold._asdict() for hold in holds],
        "dataset": info.summary,
    }
    write_text_atomic(runs_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    print(text)
    print(
        f"report → {report}, chart → {png}, per-run configs and metrics under {runs_dir / 'runs'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
