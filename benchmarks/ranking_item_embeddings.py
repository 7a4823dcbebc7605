"""Close the loop into ranking: MUSE on the synthetic lifelong benchmark built over the multimodal
catalogue, once per set of item embeddings (NoteLLM-2's, the text-only baseline's, ground truth).

    .venv/bin/python benchmarks/ranking_item_embeddings.py --catalogue DIR \\
        [--embeddings notellm2=PATH --embeddings text_only=PATH ...] [--oracle-views all,text]
        [--train-i2i] [--seeds 3] [--jobs 2] [--quick]
        [--report docs/results/ranking_item_embeddings.md] [--runs-dir runs/ranking-item-embeddings]

1. Generates the synthetic ranking data (``--data-config``, default
   configs/data/synth_default.toml, with ``items.catalogue`` set to ``--catalogue``): the ranking
   world's items are the catalogue's, users' interests are its image and text styles and the click
   model runs on its ground-truth vectors (docs/synthetic-data.md, "Ranking over the multimodal
   catalogue"). Reused when the runs directory holds it from the same config and catalogue.
2. Gathers the embedding sets, each a parquet of ``item_id`` + ``embedding`` (``muse i2i embed``'s
   output) or an ``.npy`` with ``ids_path``: every ``--embeddings NAME=PATH``, the catalogue's
   oracle views named in ``--oracle-views`` (``all`` = the ground truth, ``text`` / ``image`` = a
   perfect single-modality embedding), and with ``--train-i2i`` NoteLLM-2 and the text-only LLM
   trained on the catalogue here (``--i2i-config``, one seed) and embedded with ``muse i2i embed``.
3. Converts the raw data once per set with the Taobao-MM reader and the set as its embedding
   source (``TaobaoMMConfig.embeddings``; the item vocabulary, histories and samples are identical
   across sets, only ``item_embeddings.npy`` differs), then trains ``--model-config`` (default
   configs/ranking/muse.toml) on each with ``muse train --set data.dataset=...``, once per seed.
   Each run keeps its resolved config.toml and metrics.json under ``<runs-dir>/runs/<set>/seed<N>``;
   a finished run with an identical config is reused.
4. Writes the report: test AUC / GAUC / logloss mean ± std over seeds per set side by side, the
   generator's oracle and its text-view / image-view ceilings, a PNG beside it, the holds (ground
   truth and NoteLLM-2 each beat the text-only embeddings beyond 2 std), the command and configs.

``--quick`` is a smoke run: tiny ranking data, 2 epochs, in-process training, report under the
runs directory unless ``--report`` says otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys

# Idle OpenMP threads sleep instead of spinning (set before torch is imported anywhere).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shlex
import shutil
import subprocess
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # benchmarks.* beside this script

from benchmarks.ranking import (  # noqa: E402 (after the path)
    BENCHMARK_TRAINING,
    ModelResult,
    RunSpec,
    collect,
    execute,
    parse_seeds,
)
from features.synthetic_config import SynthConfig  # noqa: E402
from muse.core.atomic_write import write_text_atomic  # noqa: E402
from muse.core.config_loader import config_to_dict, dump_toml, load_config  # noqa: E402

DEFAULT_DATA_CONFIG = Path("configs/data/synth_default.toml")
DEFAULT_MODEL_CONFIG = Path("configs/ranking/muse.toml")
DEFAULT_I2I_CONFIG = Path("configs/item2item/notellm2_bench.toml")
DEFAULT_RUNS = Path("runs/ranking-item-embeddings")
DEFAULT_REPORT = Path("docs/results/ranking_item_embeddings.md")
NOTELLM2, TEXT_ONLY = "notellm2", "text_only"
GROUND_TRUTH = "oracle_all"
LABELS = {
    NOTELLM2: "NoteLLM-2 (mICL + late fusion)",
    TEXT_ONLY: "text-only LLM (NoteLLM)",
    GROUND_TRUTH: "ground truth (catalogue oracle)",
    "oracle_text": "oracle text view (a perfect text-only embedding)",
    "oracle_image": "oracle image view (a perfect image-only embedding)",
}
# The two item-to-item variants --train-i2i trains, as benchmarks/item2item.py's VARIANTS define
# them (overrides of the base NoteLLM-2 config).
I2I_VARIANTS: dict[str, tuple[str, ...]] = {
    NOTELLM2: ('model.prompt.kind="micl"', "model.late_fusion=true"),
    TEXT_ONLY: ('model.prompt.kind="text_only"', "model.late_fusion=false"),
}
# --quick: small enough for a test (seconds per run), large enough that MUSE learns (500 users,
# 100-long histories, 7,500 train samples; ground truth ≈ 0.81 test GAUC on a 600-item catalogue).
QUICK_DATA = (
    "num_users=500",
    "history.length=100",
    "history.test_time_gap=10",
    "history.short_term_window=10",
    "history.long_term_share=0.1",
    "impressions.train_per_user=15",
    "impressions.test_per_user=10",
    "click.calibration_users=200",
)
QUICK_TRAINING = (
    "training.max_epochs=3",
    "training.batch_size=256",
    "training.evaluation_batch_size=1024",
)
# --quick with --train-i2i: one epoch of a tiny vision encoder.
QUICK_I2I = ("training.max_epochs=1", 'model.vision.kind="tiny_conv"')
SUMMARY_FILE = "synth_summary.json"


class EmbeddingSet(NamedTuple):
    """One set of item embeddings: its name, the file and (for .npy) its id file."""

    name: str
    path: Path
    ids_path: Path | None = None

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)


class RawData(NamedTuple):
    """The generated raw (Taobao-MM schema) data and its synthetic summary."""

    raw: Path
    history_length: int
    summary: dict[str, Any]


def file_digest(*paths: Path | None) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path is not None:
            digest.update(Path(path).read_bytes())
    return digest.hexdigest()


# ---- data ------------------------------------------------------------------------------------


def prepare_raw(
    data_config: Path, overrides: Sequence[str], catalogue: Path, data_dir: Path, progress: bool
) -> RawData:
    """Generate the ranking data over ``catalogue`` unless ``data_dir`` holds it from this config."""
    from features.synthetic import generate_synthetic
    from features.synthetic_catalogue_items import read_catalogue

    config = load_config(
        SynthConfig,
        data_config,
        [*overrides, f"items.catalogue={json.dumps(str(catalogue))}"],
    )
    resolved = config_to_dict(config)
    catalogue_digest = read_catalogue(catalogue).oracle_sha256
    summary_path = data_dir / SUMMARY_FILE
    raw = data_dir / "raw"
    if summary_path.is_file() and (raw / "synth_config.toml").is_file():
        saved = json.loads(summary_path.read_text())
        if saved.get("config") == resolved and saved.get("catalogue_oracle") == catalogue_digest:
            print(f"reusing the synthetic ranking data in {raw}")
            return RawData(raw, config.history.length, saved)
    started = time.perf_counter()
    summary = generate_synthetic(config, raw, progress=progress)
    record = {
        "config": resolved,
        "catalogue_oracle": catalogue_digest,
        **{
            name: (str(value) if isinstance(value, Path) else value)
            for name, value in summary._asdict().items()
        },
    }
    write_text_atomic(summary_path, json.dumps(record, indent=2) + "\n")
    views = ", ".join(
        f"{view} view {value:.4f}" for view, value in summary.view_oracle_gauc.items()
    )
    print(
        f"synthetic ranking data over {catalogue}: {summary.num_users:,} users, "
        f"{summary.num_items:,} items, {summary.num_train_samples:,} train / "
        f"{summary.num_test_samples:,} test samples; oracle GAUC {summary.oracle_gauc:.4f} "
        f"({views}) ({time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    return RawData(raw, config.history.length, record)


def prepare_dataset(
    raw: RawData, embedding: EmbeddingSet, out_dir: Path, stale_runs: Path
) -> dict[str, Any]:
    """The internal dataset of ``raw`` with ``embedding`` as its table; reused when unchanged
    (same raw data, same embedding bytes). A rebuilt dataset deletes ``stale_runs`` (the set's
    earlier runs, whose configs name the same dataset path).

    Returns the manifest's record of the embedding source (dimension, vocabulary coverage).
    """
    from features.dataset import Dataset, write_dataset
    from features.embedding_reader import EmbeddingSourceConfig
    from features.taobao_mm import TaobaoMMConfig, read_taobao_mm

    stamp = {
        "raw": file_digest(raw.raw / "synth_config.toml", raw.raw / "item_features.parquet"),
        "raw_summary": raw.summary.get("oracle_gauc"),
        "embeddings": file_digest(embedding.path, embedding.ids_path),
    }
    stamp_path = out_dir.with_name(f"{out_dir.name}.json")
    if (
        stamp_path.is_file()
        and (out_dir / "manifest.json").is_file()
        and json.loads(stamp_path.read_text()) == stamp
    ):
        record: dict[str, Any] = Dataset(out_dir).manifest["source"]["embeddings"]
        return record
    if stale_runs.exists():
        shutil.rmtree(stale_runs)
    source = EmbeddingSourceConfig(path=embedding.path, ids_path=embedding.ids_path)
    parts = read_taobao_mm(raw.raw, TaobaoMMConfig(embeddings=source))
    write_dataset(parts, out_dir)
    write_text_atomic(stamp_path, json.dumps(stamp) + "\n")
    record = parts.source["embeddings"]
    print(
        f"dataset {out_dir.name}: {record['dim']}-d embeddings for "
        f"{record['vocabulary_items_covered']:,} of {record['vocabulary_items']:,} items",
        flush=True,
    )
    return record


# ---- embedding sets --------------------------------------------------------------------------


def oracle_sets(catalogue: Path, views: Sequence[str], out_dir: Path) -> list[EmbeddingSet]:
    """The catalogue's oracle views as parquet embedding files (``all`` is the ground truth)."""
    from features.synthetic_catalogue_items import write_oracle_view

    sets = []
    for view in views:
        path = out_dir / f"oracle_{view}.parquet"
        write_oracle_view(catalogue, view, path)
        sets.append(EmbeddingSet(f"oracle_{view}", path))
    return sets


def parse_embedding_argument(text: str) -> EmbeddingSet:
    """``NAME=PATH`` or ``NAME=PATH.npy:IDS.npy`` → EmbeddingSet."""
    if "=" not in text:
        raise SystemExit(f"--embeddings {text!r}: expected NAME=PATH")
    name, path = text.split("=", 1)
    ids_path = None
    if ".npy:" in path:
        path, ids = path.split(".npy:", 1)
        path, ids_path = f"{path}.npy", Path(ids)
    if not Path(path).is_file():
        raise SystemExit(f"--embeddings {name}: no file {path}")
    return EmbeddingSet(name.strip(), Path(path), ids_path)


def i2i_commands(
    variant: str,
    i2i_config: Path,
    catalogue: Path,
    run_dir: Path,
    out: Path,
    overrides: Sequence[str],
) -> tuple[list[str], list[str], tuple[str, ...]]:
    """(train command, embed command, train overrides) for one item-to-item variant."""
    train_overrides = (
        *I2I_VARIANTS[variant],
        f"name={json.dumps(variant)}",
        f"data.dataset={json.dumps(str(catalogue))}",
        f"training.output_dir={json.dumps(str(run_dir))}",
        *overrides,
    )
    train = [sys.executable, "-m", "muse.cli", "train", "--config", str(i2i_config)]
    for override in train_overrides:
        train += ["--set", override]
    train += ["--out", str(run_dir), "--no-progress"]
    embed = [sys.executable, "-m", "muse.cli", "i2i", "embed", "--checkpoint"]
    embed += [str(run_dir / "checkpoints" / "best.pt"), "--dataset", str(catalogue)]
    embed += ["--out", str(out)]
    return train, embed, train_overrides


def train_i2i_sets(
    catalogue: Path,
    i2i_config: Path,
    overrides: Sequence[str],
    runs_dir: Path,
    log_dir: Path,
) -> list[EmbeddingSet]:
    """Train NoteLLM-2 and the text-only LLM on ``catalogue`` and embed every item (reused when
    the run's saved config is unchanged)."""
    from muse.item2item.training.train_config import ItemTrainConfig

    sets = []
    log_dir.mkdir(parents=True, exist_ok=True)
    for variant in I2I_VARIANTS:
        run_dir = runs_dir / "i2i" / variant
        out = runs_dir / "embeddings" / f"{variant}.parquet"
        train, embed, train_overrides = i2i_commands(
            variant, i2i_config, catalogue, run_dir, out, overrides
        )
        resolved = tomllib.loads(
            dump_toml(
                config_to_dict(load_config(ItemTrainConfig, i2i_config, list(train_overrides)))
            )
        )
        saved = run_dir / "config.toml"
        done = (
            saved.is_file()
            and (run_dir / "metrics.json").is_file()
            and tomllib.loads(saved.read_text()) == resolved
        )
        began = time.perf_counter()
        if not done:
            if run_dir.exists():  # a stale or different run starts over
                shutil.rmtree(run_dir)
            print(f"training item-to-item {variant} on {catalogue} ...", flush=True)
            _run_logged(train, log_dir / f"i2i-{variant}.log", f"i2i {variant}")
        if not done or not out.is_file():
            _run_logged(embed, log_dir / f"i2i-{variant}-embed.log", f"i2i {variant} embed")
        recall = json.loads((run_dir / "metrics.json").read_text()).get("test", {})
        print(
            f"item-to-item {variant}: test R@10 {recall.get('all', {}).get('10', math.nan):.3f}"
            f"{' (reused)' if done else ''}, {time.perf_counter() - began:.0f} s",
            flush=True,
        )
        sets.append(EmbeddingSet(variant, out))
    return sets


def _run_logged(command: list[str], log: Path, what: str) -> None:
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}); see {log}")


# ---- runs ------------------------------------------------------------------------------------


def plan_runs(
    sets: Sequence[EmbeddingSet],
    datasets: dict[str, Path],
    model_config: Path,
    seeds: Sequence[int],
    history_length: int,
    training_overrides: Sequence[str],
    runs_dir: Path,
    threads: int,
) -> list[RunSpec]:
    """One RunSpec per (embedding set, seed); the set's name stands in the ``model`` slot."""
    specs = []
    for embedding in sets:
        for seed in seeds:
            run_dir = runs_dir / "runs" / embedding.name / f"seed{seed}"
            overrides = (
                f"data.dataset={json.dumps(str(datasets[embedding.name]))}",
                f"data.max_history_length={history_length}",
                f"training.seed={seed}",
                f"training.threads={threads}",
                f"training.output_dir={json.dumps(str(run_dir))}",
                *training_overrides,
            )
            specs.append(RunSpec(embedding.name, model_config, seed, overrides, run_dir))
    return specs


# ---- results ---------------------------------------------------------------------------------


class Hold(NamedTuple):
    claim: str
    holds: bool | None
    detail: str


def beyond_two_std(
    results: dict[str, ModelResult], better: str, worse: str, metric: str = "gauc"
) -> Hold:
    """mean(better) − mean(worse) > 2 × √(s₁² + s₂²) on ``metric`` over seeds."""
    claim = f"{LABELS.get(better, better)} > {LABELS.get(worse, worse)} on {metric.upper()}, beyond 2 std"
    if better not in results or worse not in results:
        return Hold(claim, None, "not run")
    high, low = getattr(results[better], metric), getattr(results[worse], metric)
    difference = ModelResult.mean(high) - ModelResult.mean(low)
    spread = math.sqrt(ModelResult.std(high) ** 2 + ModelResult.std(low) ** 2)
    holds = difference > 2 * spread if not math.isnan(spread) else None
    return Hold(
        claim,
        holds,
        f"{ModelResult.mean(high):.4f} − {ModelResult.mean(low):.4f} = {difference:+.4f}; "
        f"2 std of the difference = {2 * spread:.4f}",
    )


def pm(values: Sequence[float]) -> str:
    std = ModelResult.std(values)
    return (
        f"{ModelResult.mean(values):.4f} ± {std:.4f}" if not math.isnan(std) else f"{values[0]:.4f}"
    )


def plot(
    sets: Sequence[EmbeddingSet],
    results: dict[str, ModelResult],
    oracle: dict[str, float] | None,
    path: Path,
) -> None:
    """Side-by-side bars of test AUC and GAUC (mean ± std over seeds) with the oracle as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.name for s in sets if s.name in results]
    labels = [LABELS.get(name, name) for name in names]
    figure, axes = plt.subplots(1, 2, figsize=(11, 0.5 * len(names) + 2.0), sharey=True)
    for axis, metric in zip(axes, ("auc", "gauc"), strict=True):
        means = [ModelResult.mean(getattr(results[name], metric)) for name in names]
        errors = [
            0.0 if math.isnan(s) else s
            for s in (ModelResult.std(getattr(results[name], metric)) for name in names)
        ]
        colours = [
            "tab:green" if name == GROUND_TRUTH else "tab:red" if name == NOTELLM2 else "tab:blue"
            for name in names
        ]
        axis.barh(labels, means, xerr=errors, color=colours, capsize=4)
        low, high = min(m - e for m, e in zip(means, errors, strict=True)), max(means)
        if oracle is not None:
            axis.axvline(
                oracle[metric], color="black", linestyle="--", label=f"oracle {oracle[metric]:.4f}"
            )
            high = max(high, oracle[metric])
            axis.legend(loc="lower right")
        axis.set_xlim(max(0.0, low - 0.03), min(1.0, high + 0.02))
        for row, mean in enumerate(means):
            axis.text(axis.get_xlim()[0] + 0.003, row, f"{mean:.4f}", va="center", color="white")
        axis.set_xlabel(f"test {metric.upper()} (mean ± std over seeds)")
    axes[0].invert_yaxis()
    figure.suptitle("MUSE on the catalogue-based synthetic ranking data, by item embeddings")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(staging, dpi=110)
    plt.close(figure)
    os.replace(staging, path)


def format_report(
    sets: Sequence[EmbeddingSet],
    results: dict[str, ModelResult],
    oracle: dict[str, float] | None,
    raw: RawData,
    catalogue: Path,
    coverage: dict[str, dict[str, Any]],
    holds: Sequence[Hold],
    command: str,
    png_name: str,
    model_config_text: str,
    data_config_text: str,
    training_note: str,
) -> str:
    summary = raw.summary
    catalogue_config = summary.get("config", {}).get("items", {})
    views = summary.get("view_oracle_gauc", {}) or {}
    view_aucs = summary.get("view_oracle_auc", {}) or {}
    lines = [
        "# MUSE with NoteLLM-2, text-only and ground-truth item embeddings",
        "",
        f"Command: `{command}`. {training_note}",
        "",
        f"Data: the synthetic lifelong benchmark generated over the multimodal catalogue "
        f"`{catalogue}` (config key `items.catalogue = {json.dumps(catalogue_config.get('catalogue', str(catalogue)))}`; "
        f"{summary.get('num_users', 0):,} users, {summary.get('num_items', 0):,} items — the "
        f"catalogue's —, {raw.history_length:,}-long histories, {summary.get('num_train_samples', 0):,} "
        f"train / {summary.get('num_test_samples', 0):,} test samples, test positive rate "
        f"{summary.get('test_positive_rate', math.nan):.1%}). Users' interests are the catalogue's "
        "image styles and text styles, and the click model counts history behaviours close to the "
        "target in the catalogue's ground-truth vectors, so half of the interests can only be "
        'recognised from the images (docs/synthetic-data.md, "Ranking over the multimodal '
        'catalogue"). Every set below trains the same model config on the same samples and '
        "histories; only the item embedding table differs. Early stopping on validation GAUC "
        "(10% of the train users), scored on the whole test set.",
        "",
        "| item embeddings | file | dim | items covered | runs | test AUC | test GAUC | test logloss | epochs (best) |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    for embedding in sets:
        if embedding.name not in results:
            continue
        row = results[embedding.name]
        record = coverage.get(embedding.name, {})
        covered = (
            f"{record['vocabulary_items_covered']:,} / {record['vocabulary_items']:,}"
            if "vocabulary_items" in record
            else "–"
        )
        epochs = ", ".join(f"{e} ({b})" for e, b in zip(row.epochs, row.best_epochs, strict=True))
        lines.append(
            f"| {embedding.label} (`{embedding.name}`) | `{embedding.path}` | {record.get('dim', '–')} | "
            f"{covered} | {len(row.seeds)} | {pm(row.auc)} | **{pm(row.gauc)}** | {pm(row.logloss)} | {epochs} |"
        )
    if oracle is not None:
        lines.append(
            f"| oracle (true click probability) | – | – | – | – | {oracle['auc']:.4f} | "
            f"{oracle['gauc']:.4f} | {oracle['logloss']:.4f} | – |"
        )
    for view in ("text", "image"):
        if view in views:
            lines.append(
                f"| ceiling: click model seeing only what the oracle {view} view singles out | – | – "
                f"| – | – | {view_aucs.get(view, math.nan):.4f} | {views[view]:.4f} | – | – |"
            )
    lines += [
        "",
        "The ceilings score the true click model (true weights) with its long-term and recent "
        "counts restricted to the behaviours an embedding of one modality can tell apart from the "
        "rest of the target's category (a perfect text-only embedding sees the target's brand and "
        "material, not its colour, pattern or shape); like the ranking report's ceilings they are "
        "not bounds on a trained model.",
        "",
        f"![AUC and GAUC by item embeddings]({png_name})",
        "",
        "## Holds",
        "",
        '"Beyond 2 std" means the difference of the means exceeds twice √(s₁² + s₂²), s the sample '
        "std over ranking seeds (the item embeddings themselves come from one item-to-item run).",
        "",
    ]
    for hold in holds:
        verdict = {True: "**holds**", False: "**does not hold**", None: "not measured"}[hold.holds]
        lines.append(f"- {hold.claim}: {verdict}. {hold.detail}.")
    lines += [
        "",
        "## Config",
        "",
        "Ranking model and training (the resolved config of the first run; every run's own "
        "config.toml is kept beside its metrics, differing only in dataset, seed and output "
        "directory):",
        "",
        "```toml",
        model_config_text.rstrip(),
        "```",
        "",
        "Synthetic ranking data (resolved):",
        "",
        "```toml",
        data_config_text.rstrip(),
        "```",
    ]
    return "\n".join(lines) + "\n"


# ---- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--catalogue", type=Path, required=True, help="`muse data synth-items` output directory"
    )
    parser.add_argument(
        "--embeddings",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an embedding set: parquet item_id + embedding (`muse i2i embed`), or PATH.npy:IDS.npy; "
        f"names {NOTELLM2} and {TEXT_ONLY} get their labels (repeatable)",
    )
    parser.add_argument(
        "--oracle-views",
        default="all",
        help="catalogue oracle views to add as sets: all (ground truth), text, image; '' for none "
        "(default: all)",
    )
    parser.add_argument(
        "--train-i2i",
        action="store_true",
        help=f"train {NOTELLM2} and {TEXT_ONLY} on the catalogue here and embed the items",
    )
    parser.add_argument("--i2i-config", type=Path, default=DEFAULT_I2I_CONFIG)
    parser.add_argument(
        "--i2i-set", action="append", default=[], metavar="KEY=VALUE", help="item-to-item override"
    )
    parser.add_argument(
        "--seeds", help="a count (3 → 1,2,3) or a comma list (default 3; 1 with --quick)"
    )
    parser.add_argument("--model-config", type=Path, default=DEFAULT_MODEL_CONFIG)
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
        help="ranking training override",
    )
    parser.add_argument(
        "--runs-dir", type=Path, help=f"default {DEFAULT_RUNS} ({DEFAULT_RUNS}-quick with --quick)"
    )
    parser.add_argument(
        "--report", type=Path, help=f"default {DEFAULT_REPORT} (<runs-dir>/report.md with --quick)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="parallel training subprocesses; 0 trains in this process (default 2; 0 with --quick)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    quick = args.quick
    runs_dir = args.runs_dir or Path(f"{DEFAULT_RUNS}-quick" if quick else DEFAULT_RUNS)
    report = args.report or (runs_dir / "report.md" if quick else DEFAULT_REPORT)
    seeds = parse_seeds(args.seeds or ("1" if quick else "3"))
    jobs = args.jobs if args.jobs is not None else (0 if quick else 2)
    views = [view.strip() for view in args.oracle_views.split(",") if view.strip()]
    data_overrides = [*(QUICK_DATA if quick else ()), *args.data_set]
    training_overrides = [*BENCHMARK_TRAINING, *(QUICK_TRAINING if quick else ()), *args.train_set]
    if not (args.catalogue / "manifest.json").is_file():
        raise SystemExit(f"--catalogue {args.catalogue}: not a `muse data synth-items` directory")

    raw = prepare_raw(
        args.data_config, data_overrides, args.catalogue, runs_dir / "data", not args.no_progress
    )
    sets: list[EmbeddingSet] = []
    if args.train_i2i:
        sets += train_i2i_sets(
            args.catalogue,
            args.i2i_config,
            [*(QUICK_I2I if quick else ()), *args.i2i_set],
            runs_dir,
            runs_dir / "logs",
        )
    sets += [parse_embedding_argument(text) for text in args.embeddings]
    sets += oracle_sets(args.catalogue, views, runs_dir / "embeddings")
    names = [embedding.name for embedding in sets]
    if len(set(names)) != len(names):
        raise SystemExit(f"embedding set names must be distinct, got {names}")
    if not sets:
        raise SystemExit("no embedding sets: pass --embeddings, --oracle-views or --train-i2i")

    datasets = {s.name: runs_dir / "data" / "datasets" / s.name for s in sets}
    coverage = {
        s.name: prepare_dataset(raw, s, datasets[s.name], runs_dir / "runs" / s.name) for s in sets
    }
    specs = plan_runs(
        sets,
        datasets,
        args.model_config,
        seeds,
        raw.history_length,
        training_overrides,
        runs_dir,
        args.threads,
    )
    execute(specs, jobs, runs_dir / "logs")
    results, oracle = collect(specs)

    holds = [
        beyond_two_std(results, GROUND_TRUTH, TEXT_ONLY),
        beyond_two_std(results, NOTELLM2, TEXT_ONLY),
        beyond_two_std(results, GROUND_TRUTH, NOTELLM2),
        beyond_two_std(results, GROUND_TRUTH, "oracle_text"),
    ]
    holds = [hold for hold in holds if hold.holds is not None or "not run" not in hold.detail]
    png = report.with_name(f"{report.stem}.png")
    plot(sets, results, oracle, png)
    command = " ".join(
        ["python benchmarks/ranking_item_embeddings.py"]
        + [shlex.quote(part) for part in (argv if argv is not None else sys.argv[1:])]
    )
    first = specs[0].run_dir / "config.toml"
    text = format_report(
        sets,
        results,
        oracle,
        raw,
        args.catalogue,
        coverage,
        holds,
        command,
        png.name,
        first.read_text(),
        (raw.raw / "synth_config.toml").read_text(),
        f"{len(specs)} runs ({len(sets)} embedding sets × {len(seeds)} seeds, "
        f"{'in this process' if jobs == 0 else f'{jobs} at a time'}, {args.threads} torch "
        f"thread(s) each); this invocation took {(time.perf_counter() - started) / 60:.1f} min "
        "wall on the shared 2-core machine (finished runs are reused).",
    )
    report.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(report, text)
    summary = {
        "sets": {s.name: {"path": str(s.path), **coverage[s.name]} for s in sets},
        "results": {name: row._asdict() for name, row in results.items()},
        "oracle": oracle,
        "holds": [hold._asdict() for hold in holds],
        "data": raw.summary,
    }
    write_text_atomic(runs_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    print(text)
    print(
        f"report → {report}, chart → {png}, per-run configs and metrics under {runs_dir / 'runs'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
