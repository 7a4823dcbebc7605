"""Quality report for item-to-item retrieval: NoteLLM-2, its ablations and the baselines, 3 seeds.

    .venv/bin/python benchmarks/item2item.py [--seeds 3] [--variants notellm2,text_only,...]
        [--jobs 1] [--quick] [--report docs/results/item2item.md] [--runs-dir runs/item2item-benchmark]

1. Generates one synthetic multimodal catalogue per seed (``--data-config``, default
   configs/data/items_default.toml at 6,000 items and 2,000 test pairs, its ``seed`` set to the
   run's), unless the runs directory already holds it from the same resolved config.
2. Trains every variant (``VARIANTS``: NoteLLM-2, mICL without late fusion, late fusion without
   mICL, basic MLRM, the text-only LLM, the frozen vision encoder alone, MiniLM) from one base
   config (``--config``, default configs/item2item/notellm2_bench.toml) with ``muse train``, once
   per seed (data split and weights seeded too); early stopping on validation Recall@10. A
   finished run with an identical config is reused, so an interrupted benchmark resumes.
3. Writes the report: test Recall@1/10/100/1000 by link kind (mean ± std over seeds, NoteLLM's
   protocol: queries from the test pairs, pool = test items minus queries), the generator's
   oracles, a PNG of Recall@10 by link kind beside it, and the issue's hold (NoteLLM-2 beats the
   text-only LLM and the basic MLRM on image-only links beyond 2 std).

``--quick`` is a smoke run: a tiny catalogue, tiny images, 1 epoch, 2 seeds, 3 variants, report
under the runs directory.
"""

from __future__ import annotations

import argparse
import json
import math
import os

# Idle OpenMP threads sleep instead of spinning (set before torch is imported anywhere).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # benchmarks.* beside this script

from benchmarks.ranking import Hold, parse_seeds  # noqa: E402 (after the path)
from features.multimodal_catalogue_config import MultimodalCatalogueConfig  # noqa: E402
from muse.core.atomic_write import write_text_atomic  # noqa: E402
from muse.core.config_loader import config_to_dict, dump_toml, load_config  # noqa: E402

DEFAULT_DATA_CONFIG = Path("configs/data/items_default.toml")
DEFAULT_CONFIG = Path("configs/item2item/notellm2_bench.toml")
DEFAULT_RUNS = Path("runs/item2item-benchmark")
DEFAULT_REPORT = Path("docs/results/item2item.md")
BENCHMARK_DATA = ("num_items=6000", "pairs.test_pairs=2000")
KS = ("1", "10", "100", "1000")
LINKS = ("all", "image", "text", "both")
NOTELLM2, TEXT_ONLY, BASIC_MLRM = "notellm2", "text_only", "basic_mlrm"
_PLAIN = ('model.prompt.kind="plain"', "model.late_fusion=false")
# Variant → (label, overrides of the base config). All share data, loss and optimisation.
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    NOTELLM2: ("NoteLLM-2 (mICL + late fusion)", ('model.prompt.kind="micl"', "model.late_fusion=true")),
    "micl_only": ("mICL, no late fusion", ('model.prompt.kind="micl"', "model.late_fusion=false")),
    "late_fusion_only": ("late fusion, no mICL", ('model.prompt.kind="single"', "model.late_fusion=true")),
    BASIC_MLRM: ("basic MLRM (one prompt with the image)", ('model.prompt.kind="single"', "model.late_fusion=false")),
    TEXT_ONLY: ("text-only LLM (NoteLLM)", ('model.prompt.kind="text_only"', "model.late_fusion=false")),
    "vision_only": ("frozen vision encoder alone (+ projection)", ('model.kind="vision_only"', *_PLAIN)),
    "minilm": ("MiniLM sentence encoder (frozen, + projection)", ('model.kind="sentence_encoder"', *_PLAIN)),
}  # fmt: skip
QUICK_DATA = ("num_items=400", "image.size=32", "pairs.train_pairs=600", "pairs.test_pairs=200")
QUICK_TRAINING = (
    "training.max_epochs=1",
    'model.vision.kind="tiny_conv"',
    "model.vision.image_size=32",
)
QUICK_VARIANTS = (NOTELLM2, TEXT_ONLY, BASIC_MLRM)  # fmt: skip


@dataclass(frozen=True)
class RunSpec:
    """One training run: a variant, a seed, its overrides and where it writes."""

    variant: str
    seed: int
    overrides: tuple[str, ...]
    run_dir: Path


class VariantResult(NamedTuple):
    """A variant's test recall per seed: recall[link][k] is one value per seed."""

    variant: str
    seeds: list[int]
    recall: dict[str, dict[str, list[float]]]
    epochs: list[int]
    pairs_per_second: list[float]
    seconds: list[float]


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def std(values: Sequence[float]) -> float:
    """Sample standard deviation (NaN with one value)."""
    return statistics.stdev(values) if len(values) > 1 else math.nan


# ---- data ------------------------------------------------------------------------------------


def prepare_catalogue(
    data_config: Path, overrides: Sequence[str], seed: int, out_dir: Path, progress: bool
) -> dict[str, Any]:
    """Generate seed ``seed``'s catalogue into ``out_dir`` unless it is there from this config."""
    from features.multimodal_catalogue import MANIFEST_FILE, generate_multimodal_catalogue

    config = load_config(MultimodalCatalogueConfig, data_config, [*overrides, f"seed={seed}"])
    manifest = out_dir / MANIFEST_FILE
    if manifest.is_file():
        saved: dict[str, Any] = json.loads(manifest.read_text())
        if saved.get("config") == json.loads(json.dumps(config_to_dict(config))):
            return saved
    summary = generate_multimodal_catalogue(config, out_dir, progress=progress)
    print(
        f"catalogue seed {seed}: {summary.num_items:,} items ({summary.num_test_items:,} held out), "
        f"{sum(summary.test_pairs.values()):,} test pairs ({summary.elapsed_seconds:.0f} s)",
        flush=True,
    )
    loaded: dict[str, Any] = json.loads(manifest.read_text())
    return loaded


# ---- runs ------------------------------------------------------------------------------------


def plan_runs(
    variants: Sequence[str],
    seeds: Sequence[int],
    data_dirs: dict[int, Path],
    training_overrides: Sequence[str],
    runs_dir: Path,
) -> list[RunSpec]:
    specs = []
    for variant in variants:
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
        for seed in seeds:
            run_dir = runs_dir / "runs" / variant / f"seed{seed}"
            overrides = (
                *VARIANTS[variant][1],
                f"name={json.dumps(variant)}",
                f"data.dataset={json.dumps(str(data_dirs[seed]))}",
                f"data.seed={seed}",
                f"training.seed={seed}",
                f"training.output_dir={json.dumps(str(run_dir))}",
                *training_overrides,
            )
            specs.append(RunSpec(variant, seed, overrides, run_dir))
    return specs


def resolved_config(config_path: Path, spec: RunSpec) -> dict[str, Any]:
    from muse.item2item.training.train_config import ItemTrainConfig

    config = load_config(ItemTrainConfig, config_path, list(spec.overrides))
    # Through TOML, as the run saved it (TOML has no null: unset keys drop out).
    resolved: dict[str, Any] = tomllib.loads(dump_toml(config_to_dict(config)))
    return resolved


def finished(config_path: Path, spec: RunSpec) -> bool:
    """Whether ``spec`` already ran to the end with exactly this config."""
    metrics, config = spec.run_dir / "metrics.json", spec.run_dir / "config.toml"
    if not (metrics.is_file() and config.is_file()):
        return False
    with config.open("rb") as handle:
        return bool(tomllib.load(handle) == resolved_config(config_path, spec))


def run_subprocess(config_path: Path, spec: RunSpec, log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{spec.variant}-seed{spec.seed}.log"
    command = [sys.executable, "-m", "muse.cli", "train", "--config", str(config_path)]
    for override in spec.overrides:
        command += ["--set", override]
    command += ["--out", str(spec.run_dir), "--no-progress"]
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{spec.variant} seed {spec.seed} failed (exit {result.returncode}); see {log}"
        )


def execute(config_path: Path, specs: Sequence[RunSpec], jobs: int, log_dir: Path) -> None:
    """Train the unfinished specs, ``jobs`` subprocesses at a time, timing each."""
    pending = [spec for spec in specs if not finished(config_path, spec)]
    print(
        f"{len(specs) - len(pending)} of {len(specs)} runs already finished; {len(pending)} to train"
    )
    started = time.perf_counter()
    done = 0

    def one(spec: RunSpec) -> None:
        nonlocal done
        if spec.run_dir.exists():  # a stale partial run (killed mid-way) starts over
            shutil.rmtree(spec.run_dir)
        began = time.perf_counter()
        run_subprocess(config_path, spec, log_dir)
        seconds = time.perf_counter() - began
        write_text_atomic(
            spec.run_dir / "wall_seconds.json", json.dumps({"seconds": seconds}) + "\n"
        )
        done += 1
        test = json.loads((spec.run_dir / "metrics.json").read_text())["test"]
        print(
            f"[{done}/{len(pending)}] {spec.variant} seed {spec.seed}: R@10 {test['all']['10']:.3f} "
            f"(image {test['image']['10']:.3f}, text {test['text']['10']:.3f}), {seconds:.0f} s "
            f"(elapsed {time.perf_counter() - started:.0f} s)",
            flush=True,
        )

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        for future in [pool.submit(one, spec) for spec in pending]:
            future.result()


# ---- results ---------------------------------------------------------------------------------


def collect(specs: Sequence[RunSpec]) -> tuple[dict[str, VariantResult], dict[str, VariantResult]]:
    """Per-variant results, and the oracles' (views ``all``, ``image``, ``text``) per seed."""
    results: dict[str, VariantResult] = {}
    oracles: dict[str, VariantResult] = {}
    seen_oracle_seeds: set[int] = set()
    for spec in specs:
        metrics = json.loads((spec.run_dir / "metrics.json").read_text())
        row = results.setdefault(spec.variant, VariantResult(spec.variant, [], {}, [], [], []))
        row.seeds.append(spec.seed)
        for link in LINKS:
            for k in KS:
                row.recall.setdefault(link, {}).setdefault(k, []).append(metrics["test"][link][k])
        row.epochs.append(int(metrics.get("epochs", 0)))
        row.pairs_per_second.append(float(metrics.get("train_samples_per_second", math.nan)))
        wall = spec.run_dir / "wall_seconds.json"
        row.seconds.append(json.loads(wall.read_text())["seconds"] if wall.is_file() else math.nan)
        oracle = metrics.get("oracle")
        if oracle and spec.seed not in seen_oracle_seeds:
            seen_oracle_seeds.add(spec.seed)
            entry = oracles.setdefault("oracle", VariantResult("oracle", [], {}, [], [], []))
            entry.seeds.append(spec.seed)
            for link in LINKS:
                for k in KS:
                    entry.recall.setdefault(link, {}).setdefault(k, []).append(oracle[link][k])
    return results, oracles


def beyond_two_std(
    results: dict[str, VariantResult], better: str, worse: str, link: str, k: str
) -> Hold:
    """Recall(better) − Recall(worse) > 2 × √(s₁² + s₂²) over seeds."""
    claim = (
        f"{VARIANTS[better][0]} > {VARIANTS[worse][0]} on {link} links, Recall@{k}, beyond 2 std"
    )
    if better not in results or worse not in results:
        return Hold(claim, None, "not run")
    high, low = results[better].recall[link][k], results[worse].recall[link][k]
    difference = mean(high) - mean(low)
    spread = math.sqrt(std(high) ** 2 + std(low) ** 2)
    holds = None if math.isnan(spread) else difference > 2 * spread
    return Hold(
        claim,
        holds,
        f"{mean(high):.3f} − {mean(low):.3f} = {difference:+.3f}; 2 std of the difference = "
        f"{2 * spread:.3f}",
    )


def plot(results: dict[str, VariantResult], path: Path) -> None:
    """Grouped bars: Recall@10 by link kind per variant, mean ± std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    links = ("image", "text", "both", "all")
    figure, axis = plt.subplots(figsize=(11, 4.8))
    width = 0.8 / len(links)
    for index, link in enumerate(links):
        values = [mean(results[n].recall[link]["10"]) for n in names]
        errors = [
            0.0 if math.isnan(s) else s for s in (std(results[n].recall[link]["10"]) for n in names)
        ]
        positions = [i + (index - 1.5) * width for i in range(len(names))]
        axis.bar(positions, values, width, yerr=errors, capsize=3, label=f"{link} links")
    axis.set_xticks(range(len(names)))
    axis.set_xticklabels([n.replace("_", "\n") for n in names], fontsize=8)
    axis.set_ylabel("test Recall@10 (mean ± std over seeds)")
    axis.set_ylim(0, 1)
    axis.set_title("Item-to-item retrieval on the synthetic multimodal catalogue")
    axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(staging, dpi=110)
    plt.close(figure)
    os.replace(staging, path)


def _pm(values: list[float]) -> str:
    spread = std(values)
    return f"{mean(values):.3f} ± {spread:.3f}" if not math.isnan(spread) else f"{values[0]:.3f}"


def findings(results: dict[str, VariantResult], oracles: dict[str, VariantResult]) -> list[str]:
    """What the tables say, computed from them: the best variant per link kind at R@10 and how
    close each multimodal variant comes to the oracle over all links."""
    lines = ["## Reading the tables", ""]
    for link in ("image", "text", "both", "all"):
        best = max(results, key=lambda name: mean(results[name].recall[link]["10"]))
        lines.append(
            f"- Best Recall@10 on {link} links: `{best}` ({_pm(results[best].recall[link]['10'])})."
        )
    oracle = oracles.get("oracle")
    if oracle is not None and NOTELLM2 in results:
        lines.append(
            f"- Over all links, the oracle that knows every attribute reaches R@10 "
            f"{_pm(oracle.recall['all']['10'])} and NoteLLM-2 {_pm(results[NOTELLM2].recall['all']['10'])}. "
            "One embedding that serves every link kind ranks an item's `both` partners (same image "
            "and same text) first, then its image partners and text partners alike: it cannot "
            "know which kind the next engagement will be, so on a single link kind it trails the "
            "single-modality models, which rank only that kind's partners high (and score 0 on "
            "the other kind). The oracle row shows this ceiling."
        )
    return lines


def format_report(
    results: dict[str, VariantResult],
    oracles: dict[str, VariantResult],
    holds: list[Hold],
    command: str,
    png_name: str,
    config_path: Path,
    data_overrides: Sequence[str],
    training_overrides: Sequence[str],
    manifest: dict[str, Any],
    elapsed: float,
    jobs_note: str,
) -> str:
    pairs = manifest.get("pairs", {}).get("test", {})
    run_seconds = sum(sum(s for s in row.seconds if not math.isnan(s)) for row in results.values())
    lines = [
        "# Item-to-item retrieval: NoteLLM-2, ablations and baselines",
        "",
        f"Command: `{command}`. The runs took {run_seconds / 60:.0f} min of training wall time "
        f"in all ({jobs_note}; this report took {elapsed / 60:.0f} min).",
        "",
        f"Data: the synthetic multimodal catalogue (`{DEFAULT_DATA_CONFIG}` with "
        f"`{' '.join(data_overrides) or 'no overrides'}`; one catalogue per seed): "
        f"{manifest.get('num_items', 0):,} items, {manifest.get('num_test_items', 0):,} held out, "
        f"test pairs by link kind {pairs}. Base model config `{config_path}`"
        + (
            f", overrides for every run `{' '.join(training_overrides)}`"
            if training_overrides
            else ""
        )
        + ". Each variant changes only what its row names (see `VARIANTS` in the benchmark).",
        "",
        "Protocol (NoteLLM): each test pair gives a query and its ground truth; the pool is every "
        "test item but the queries; Recall@k per (query, link kind) is the share of its partners "
        "in the top k. An image or text style is shared by about 30 pool items and a category by "
        "about 170, so Recall@10 is capped well below 1 even for a perfect single-modality model, "
        "Recall@100 separates the models that miss a modality, and Recall@1000 (over a pool of "
        "about 1,350) is close to 1 for everything.",
        "",
    ]
    for link in LINKS:
        lines += [
            f"## {'All links' if link == 'all' else f'{link.capitalize()} links'}",
            "",
            "| variant | seeds | R@1 | R@10 | R@100 | R@1000 |",
            "| --- | ---: | --- | --- | --- | --- |",
        ]
        for name, row in results.items():
            bold = "**" if name == NOTELLM2 else ""
            cells = " | ".join(_pm(row.recall[link][k]) for k in KS)
            lines.append(
                f"| {bold}{VARIANTS[name][0]}{bold} (`{name}`) | {len(row.seeds)} | {cells} |"
            )
        for row in oracles.values():
            cells = " | ".join(_pm(row.recall[link][k]) for k in KS)
            lines.append(f"| generator oracle (all attributes) | {len(row.seeds)} | {cells} |")
        lines.append("")
    lines += [*findings(results, oracles), ""]
    lines += [
        f"![Recall@10 by link kind]({png_name})",
        "",
        "## Training cost",
        "",
        "| variant | epochs per seed | train pairs/s | wall s per run |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, row in results.items():
        lines.append(
            f"| `{name}` | {', '.join(map(str, row.epochs))} | {mean(row.pairs_per_second):,.0f} | "
            f"{mean(row.seconds):,.0f} |"
        )
    lines += [
        "",
        "## The hold",
        "",
        '"Beyond 2 std": the difference of the means exceeds twice √(s₁² + s₂²), s the sample std '
        "over seeds.",
        "",
    ]
    for hold in holds:
        verdict = {True: "**holds**", False: "**does not hold**", None: "not measured"}[hold.holds]
        lines.append(f"- {hold.claim}: {verdict}. {hold.detail}.")
    return "\n".join(lines) + "\n"


# ---- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", help="a count (3 → 1,2,3) or a comma list (default 3; 2 quick)")
    parser.add_argument("--variants", help=f"comma list of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--data-config", type=Path, default=DEFAULT_DATA_CONFIG)
    parser.add_argument("--data-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--train-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--runs-dir", type=Path)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="parallel training subprocesses")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    quick = args.quick
    runs_dir = args.runs_dir or (Path(f"{DEFAULT_RUNS}-quick") if quick else DEFAULT_RUNS)
    report = args.report or (runs_dir / "item2item.md" if quick else DEFAULT_REPORT)
    seeds = parse_seeds(args.seeds or ("2" if quick else "3"))
    if args.variants:
        variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    else:
        variants = list(QUICK_VARIANTS if quick else VARIANTS)
    data_overrides = [*(QUICK_DATA if quick else BENCHMARK_DATA), *args.data_set]
    training_overrides = [*(QUICK_TRAINING if quick else ()), *args.train_set]

    data_dirs = {seed: runs_dir / "data" / f"seed{seed}" for seed in seeds}
    manifests = {
        seed: prepare_catalogue(
            args.data_config, data_overrides, seed, data_dirs[seed], not args.no_progress
        )
        for seed in seeds
    }
    specs = plan_runs(variants, seeds, data_dirs, training_overrides, runs_dir)
    write_text_atomic(
        runs_dir / "benchmark_config.json",
        json.dumps(
            {"argv": list(argv or sys.argv[1:]), "specs": [s.overrides for s in specs]}, indent=2
        )
        + "\n",
    )
    execute(args.config, specs, args.jobs, runs_dir / "logs")
    results, oracles = collect(specs)
    holds = [
        beyond_two_std(results, NOTELLM2, worse, "image", k)
        for k in ("10", "100")
        for worse in (TEXT_ONLY, BASIC_MLRM)
    ]
    png = report.with_name(f"{report.stem}_recall.png")
    plot(results, png)
    command = " ".join(
        [
            "python benchmarks/item2item.py",
            *(["--quick"] if quick else []),
            f"--seeds {','.join(map(str, seeds))}",
        ]
        + ([f"--variants {','.join(variants)}"] if args.variants else [])
        + [f"--data-set {item}" for item in args.data_set]
        + [f"--train-set {item}" for item in args.train_set]
    )
    text = format_report(
        results,
        oracles,
        holds,
        command,
        png.name,
        args.config,
        data_overrides,
        training_overrides,
        manifests[seeds[0]],
        time.perf_counter() - started,
        f"{args.jobs} run(s) at a time, 1 torch thread each, on a shared 2-core CPU",
    )
    write_text_atomic(report, text)
    print(text)
    print(f"report → {report}, chart → {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
