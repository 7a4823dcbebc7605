"""Benchmark: encoding new items for SimilarItems on CPU, onnxruntime against torch eager, one run.

    .venv/bin/python benchmarks/item_encoding.py            # SmolLM2 NoteLLM-2 → docs/results/item2item_serving.md
    .venv/bin/python benchmarks/item_encoding.py --config configs/item2item/notellm2_tiny.toml \\
        --requests 50 --batches 5 --out /tmp/item_encoding.md
    .venv/bin/python benchmarks/item_encoding.py --checkpoint runs/notellm2/checkpoints/best.pt

1. A synthetic catalogue (``muse data synth-items``'s generator, seeded): ``--items`` items with
   titles, topics, content and ``--image-size`` PNG images, resized by the encoder as served.
2. The encoder: a training checkpoint's (``--checkpoint``), or the untrained encoder of
   ``--config`` (default configs/item2item/notellm2_smollm2.toml: SmolLM2-135M truncated to 4
   layers, EfficientNet-Lite0 at 224, Q = 16; weights do not change the cost) with the prompt and
   tokenizer training would use. Its encoder bundle is written by ``muse i2i export``'s code
   (ONNX export and its parity check timed, wall and CPU).
3. Each catalogue item is sent as a new item (its PNG bytes and text). Three paths, all in this
   process, interleaved call by call so that the shared machine's noise falls on all alike:
   - **onnxruntime**: the server's ``NewItemEncoder.encode`` (decode, resize, tokenise, ONNX run),
     CPUExecutionProvider, ``--threads`` intra-op threads;
   - **torch eager**: the same inputs (``NewItemInputs.feeds``) as tensors through the torch
     encoder under ``inference_mode``, ``--threads`` torch threads;
   - **inputs only**: ``NewItemInputs.feeds`` alone, the share of both that is not the model.
   At batch 1 (``--requests`` calls of one item) and batch 32 (``--batches`` calls of 32 items):
   per-call latency p50 / p99, per-item latency, items/s, and CPU ms per item (process CPU time:
   every thread of the process) beside wall time; torch / onnxruntime ratios.
4. The section "Encoding new items" of ``--out`` (between marker comments, the rest of the file
   kept), written atomically; the figures as JSON under ``--workdir``.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # muse, features and serving beside this script

DEFAULT_OUT = REPOSITORY / "docs" / "results" / "item2item_serving.md"
DEFAULT_WORKDIR = REPOSITORY / "runs" / "bench_item_encoding"
DEFAULT_CONFIG = REPOSITORY / "configs" / "item2item" / "notellm2_smollm2.toml"
CATALOGUE_CONFIG = REPOSITORY / "configs" / "data" / "items_default.toml"
SECTION_BEGIN = "<!-- item-encoding:begin -->"
SECTION_END = "<!-- item-encoding:end -->"
BATCH_SIZES = (1, 32)
WARMUP_CALLS = 3
MIN_ITEMS = 120
PATHS = ("onnxruntime", "torch eager", "inputs only")


@dataclass
class PathTimes:
    """Wall seconds of each call of one path at one batch size, and the process CPU they took."""

    path: str
    batch: int
    latencies: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1e3 if self.latencies else math.nan

    @property
    def items(self) -> int:
        return self.batch * len(self.latencies)

    def figures(self) -> dict[str, Any]:
        items, wall = self.items, float(sum(self.latencies))
        return {
            "path": self.path,
            "batch": self.batch,
            "calls": len(self.latencies),
            "items": items,
            "p50_ms": self.percentile_ms(50),
            "p99_ms": self.percentile_ms(99),
            "p50_ms_per_item": self.percentile_ms(50) / self.batch,
            "items_per_second": items / wall if wall > 0 else math.nan,
            "wall_ms_per_item": wall / items * 1e3 if items else math.nan,
            "cpu_ms_per_item": self.cpu_seconds / items * 1e3 if items else math.nan,
        }


@dataclass
class Outcome:
    arguments: dict[str, Any]
    encoder: dict[str, Any]
    export: dict[str, Any]
    timings: list[dict[str, Any]]
    ratios: list[dict[str, Any]]
    parity_max_abs: float
    load_average: tuple[float, float]
    threads: int


# ---- inputs: catalogue, encoder, bundle ---------------------------------------------------------


def synthetic_items(workdir: Path, items: int, image_size: int, seed: int) -> Any:
    """The catalogue of ``items`` synthetic items with ``image_size`` PNGs (generated once)."""
    from features.item_catalogue import ITEMS_FILE, read_items
    from features.multimodal_catalogue import generate_multimodal_catalogue
    from features.multimodal_catalogue_config import MultimodalCatalogueConfig
    from muse.core.config_loader import load_config

    out = workdir / f"items_{items}_{image_size}_{seed}"
    if not (out / ITEMS_FILE).is_file():
        # Pairs are drawn too (the generator's contract), though only the items are used here.
        overrides = [f"num_items={items}", f"image.size={image_size}", f"seed={seed}"]
        overrides += ["test_item_share=0.5", "pairs.train_pairs=200", "pairs.test_pairs=40"]
        config = load_config(MultimodalCatalogueConfig, CATALOGUE_CONFIG, overrides)
        generate_multimodal_catalogue(config, out, progress=False)
    return read_items(out / ITEMS_FILE)


def load_encoder(args: argparse.Namespace, catalogue: Any) -> tuple[Any, Any, Any, Any, str]:
    """(encoder, model config, prompt, (mean, std), label) of --checkpoint or --config."""
    from muse.core.config_loader import load_config
    from muse.item2item.models.item_encoder import build_item_encoder
    from muse.item2item.training.item_embeddings import load_trained_encoder
    from muse.item2item.training.item_inputs import build_prompt
    from muse.item2item.training.train_config import ItemTrainConfig

    if args.checkpoint is not None:
        trained = load_trained_encoder(args.checkpoint)
        data = trained.config.data
        label = f"trained `{trained.config.name}` ({args.checkpoint})"
        return (
            trained.encoder,
            trained.config.model,
            trained.prompt,
            (data.image_mean, data.image_std),
            label,
        )
    config = load_config(ItemTrainConfig, args.config, args.overrides)
    encoder = build_item_encoder(config.model).eval()
    prompt = build_prompt(config, catalogue)
    label = f"untrained `{config.name}` ({Path(args.config).name})"
    return encoder, config.model, prompt, (config.data.image_mean, config.data.image_std), label


def new_items(catalogue: Any) -> list[Any]:
    """Every catalogue item as a new item: its PNG bytes and its text fields."""
    from muse.item2item.export.new_item_inputs import NewItem

    return [
        NewItem(
            title=catalogue.titles[row],
            content=catalogue.contents[row],
            topics=catalogue.topics[row],
            category=catalogue.categories[row],
            image=catalogue.image_bytes(row),
        )
        for row in range(len(catalogue))
    ]


def parameters(encoder: Any) -> int:
    return int(sum(p.numel() for p in encoder.parameters()))


# ---- timing -------------------------------------------------------------------------------------


def time_paths(
    paths: dict[str, Callable[[Sequence[Any]], Any]],
    items: list[Any],
    batch: int,
    calls: int,
    progress: Callable[[int], None] | None = None,
) -> list[PathTimes]:
    """``calls`` calls of each path on consecutive batches of ``items`` (cycled), interleaved."""
    times = {name: PathTimes(name, batch) for name in paths}
    for call in range(-WARMUP_CALLS, calls):
        start = (max(call, 0) * batch) % len(items)
        chunk = [items[(start + i) % len(items)] for i in range(batch)]
        for name, run in paths.items():
            cpu, wall = time.process_time(), time.perf_counter()
            run(chunk)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if call >= 0:
                times[name].latencies.append(wall)
                times[name].cpu_seconds += cpu
        if progress is not None and call >= 0:
            progress(1)
    return list(times.values())


def ratios(timings: list[PathTimes]) -> list[dict[str, Any]]:
    """torch eager / onnxruntime at each batch size: p50 latency, items/s and CPU per item."""
    rows = []
    for batch in BATCH_SIZES:
        by_path = {t.path: t.figures() for t in timings if t.batch == batch}
        ours, theirs = by_path.get("onnxruntime"), by_path.get("torch eager")
        if ours is None or theirs is None:
            continue
        rows.append(
            {
                "batch": batch,
                "p50_latency": theirs["p50_ms"] / ours["p50_ms"],
                "items_per_second": ours["items_per_second"] / theirs["items_per_second"],
                "cpu_per_item": theirs["cpu_ms_per_item"] / ours["cpu_ms_per_item"],
            }
        )
    return rows


# ---- report -------------------------------------------------------------------------------------


def section_text(outcome: Outcome, command: str) -> str:
    """The markdown of the "Encoding new items" section, markers included."""

    def cell(value: float, digits: int = 2) -> str:
        return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"

    encoder, export, arguments = outcome.encoder, outcome.export, outcome.arguments
    lines = [
        SECTION_BEGIN,
        "## Encoding new items",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} cores, shared; load average at start / end "
        f"{outcome.load_average[0]:.1f} / {outcome.load_average[1]:.1f}. The paths are timed "
        "call by call in turn in one process, so compare them within this run; CPU ms per item "
        "(process CPU time, every thread) moves least with other jobs.",
        "",
        f"Encoder: {encoder['label']}: `{encoder['kind']}`, prompt `{encoder['prompt']}`, "
        f"{encoder['parameters'] / 1e6:.1f} M parameters, {encoder['image_size']}×"
        f"{encoder['image_size']} images, {encoder['output_dim']}-d output. Encoder bundle "
        f"(`muse i2i export`'s code: ONNX opset {export['opset']}, dynamo exporter) written in "
        f"{export['wall_seconds']:.1f} s wall / {export['cpu_seconds']:.1f} s CPU, "
        f"{export['bundle_bytes'] / 2**20:.1f} MiB; its own parity check "
        f"{export['check_max_abs']:.2g} max abs on {export['check_items']} items; here, "
        f"onnxruntime against torch on {arguments['parity_items']} catalogue items: "
        f"{outcome.parity_max_abs:.2g} max abs.",
        "",
        f"New items: {arguments['items']} synthetic catalogue items (seed {arguments['seed']}), "
        f"{arguments['image_size']}×{arguments['image_size']} PNG bytes + title, topics and "
        f"content, cycled; batch 1: {arguments['requests']} calls, batch 32: "
        f"{arguments['batches']} calls, after {WARMUP_CALLS} warm-up calls each. Every path "
        f"includes the inputs (decode, resize, normalise, tokenise); {outcome.threads} intra-op "
        "thread(s) for onnxruntime (CPUExecutionProvider) and torch alike.",
        "",
        "| path | batch | calls | p50 ms / call | p99 ms / call | p50 ms / item | items/s | "
        "wall ms / item | CPU ms / item |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in outcome.timings:
        lines.append(
            f"| {row['path']} | {row['batch']} | {row['calls']} | {cell(row['p50_ms'])} | "
            f"{cell(row['p99_ms'])} | {cell(row['p50_ms_per_item'])} | "
            f"{cell(row['items_per_second'], 1)} | {cell(row['wall_ms_per_item'])} | "
            f"{cell(row['cpu_ms_per_item'])} |"
        )
    lines += [
        "",
        "torch eager / onnxruntime (above 1: onnxruntime is faster or cheaper):",
        "",
        "| batch | p50 latency | items/s | CPU per item |",
        "| --- | --- | --- | --- |",
    ]
    for row in outcome.ratios:
        lines.append(
            f"| {row['batch']} | {cell(row['p50_latency'])}× | {cell(row['items_per_second'])}× | "
            f"{cell(row['cpu_per_item'])}× |"
        )
    lines.append(SECTION_END)
    return "\n".join(lines)


def replace_section(existing: str | None, section: str) -> str:
    """``existing`` with this benchmark's marked section replaced by ``section``."""
    from benchmarks.report_section import replace_section as replace

    return replace(existing, section, SECTION_BEGIN, SECTION_END, "Item-to-item serving")


# ---- main ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from muse.core.config_loader import add_override_argument

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="item-to-item training TOML whose untrained encoder is timed (default: %(default)s)",
    )
    source.add_argument("--checkpoint", type=Path, help="a trained item-to-item checkpoint instead")
    add_override_argument(parser, "model.backbone.num_layers=8")
    parser.add_argument("--items", type=int, default=256, help="synthetic catalogue items")
    parser.add_argument("--image-size", type=int, default=256, help="catalogue PNG side (px)")
    parser.add_argument("--requests", type=int, default=200, help="batch-1 calls per path")
    parser.add_argument("--batches", type=int, default=20, help="batch-32 calls per path")
    parser.add_argument("--parity-items", type=int, default=32, help="items compared ORT vs torch")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (ORT and torch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report (markdown)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="catalogue, bundle")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    for name in ("requests", "batches", "parity_items", "threads"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be ≥ 1")
    if args.items < MIN_ITEMS:
        raise SystemExit(f"--items must be ≥ {MIN_ITEMS} (the generator draws pairs of each kind)")
    return run(args, argv)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    import torch
    from tqdm import tqdm

    from muse.core.atomic_write import write_text_atomic
    from muse.export.bundle_format import MANIFEST_FILE
    from muse.item2item.batch import ItemBatch
    from muse.item2item.export.encoder_bundle_writer import write_encoder_bundle
    from serving.item2item.new_item_encoder import NewItemEncoder

    load_start = os.getloadavg()[0]
    args.workdir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    catalogue = synthetic_items(args.workdir, args.items, args.image_size, args.seed)
    encoder, model_config, prompt, (mean, std), label = load_encoder(args, catalogue)
    encoder = encoder.eval()
    print(f"exporting {label} ...", flush=True)
    bundle = args.workdir / "encoder"
    cpu, wall = time.process_time(), time.perf_counter()
    manifest = write_encoder_bundle(encoder, model_config, prompt, mean, std, bundle)
    export = {
        "wall_seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "bundle_bytes": sum(f.stat().st_size for f in bundle.iterdir() if f.is_file()),
        "opset": manifest["opset"],
        "check_max_abs": manifest["export_check"]["max_abs_difference"],
        "check_items": manifest["export_check"]["items"],
        "version": manifest["version"],
    }
    served = NewItemEncoder.load(
        bundle, onnx_threads=args.threads, providers=["CPUExecutionProvider"]
    )
    inputs = served.inputs

    def torch_encode(chunk: Sequence[Any]) -> np.ndarray:
        feeds = inputs.feeds(chunk)
        images = feeds.get("images")
        batch = ItemBatch(
            token_ids=torch.from_numpy(feeds["token_ids"]),
            attention_mask=torch.from_numpy(feeds["attention_mask"]),
            image_placeholder_index=torch.from_numpy(feeds["image_placeholder_index"]),
            image_compression_index=torch.from_numpy(feeds["image_compression_index"]),
            last_index=torch.from_numpy(feeds["last_index"]),
            images=torch.from_numpy(images) if images is not None else None,
        )
        with torch.inference_mode():
            return encoder(batch).multimodal.numpy()

    items = new_items(catalogue)
    parity_items = items[: args.parity_items]
    parity = float(np.abs(served.encode(parity_items) - torch_encode(parity_items)).max())
    paths: dict[str, Callable[[Sequence[Any]], Any]] = {
        "onnxruntime": served.encode,
        "torch eager": torch_encode,
        "inputs only": inputs.feeds,
    }
    timings: list[PathTimes] = []
    for batch, calls in zip(BATCH_SIZES, (args.requests, args.batches), strict=True):
        with tqdm(total=calls, desc=f"batch {batch}", disable=not args.progress) as bar:
            timings += time_paths(paths, items, batch, calls, bar.update)
    outcome = Outcome(
        arguments={
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()
        }
        | {"argv": argv},
        encoder={
            "label": label,
            "kind": model_config.kind.value,
            "prompt": model_config.prompt.kind.value,
            "parameters": parameters(encoder),
            "image_size": model_config.vision.image_size,
            "output_dim": int(manifest["encoder"]["output_dim"]),
            "bundle": str(bundle / MANIFEST_FILE),
        },
        export=export,
        timings=[t.figures() for t in timings],
        ratios=ratios(timings),
        parity_max_abs=parity,
        load_average=(load_start, os.getloadavg()[0]),
        threads=args.threads,
    )
    command = shlex.join([".venv/bin/python", "benchmarks/item_encoding.py", *argv])
    section = section_text(outcome, command)
    existing = args.out.read_text() if args.out.exists() else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, replace_section(existing, section))
    write_text_atomic(
        args.workdir / "item_encoding.json", json.dumps(asdict(outcome), indent=2) + "\n"
    )
    print(
        f"exported in {export['wall_seconds']:.1f} s wall / {export['cpu_seconds']:.1f} s CPU; "
        f"onnxruntime vs torch on {len(parity_items)} items: {parity:.2g} max abs"
    )
    for row in outcome.timings:
        print(
            f"{row['path']:<12} batch {row['batch']:>2}: p50 {row['p50_ms']:.2f} ms, "
            f"p99 {row['p99_ms']:.2f} ms per call; {row['items_per_second']:.1f} items/s; "
            f"CPU {row['cpu_ms_per_item']:.2f} ms/item"
        )
    for row in outcome.ratios:
        print(
            f"torch / onnxruntime at batch {row['batch']}: p50 {row['p50_latency']:.2f}×, "
            f"items/s {row['items_per_second']:.2f}×, CPU/item {row['cpu_per_item']:.2f}×"
        )
    print(f"report → {args.out} (section 'Encoding new items')", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
