"""`muse demo`: the main job end to end on the embedded synthetic data.

Generate the synthetic lifelong benchmark (Taobao-MM raw schema) → convert it to the internal
format → train every model the default A/B experiment config serves (MUSE and the DIN
baseline) → evaluate against the oracle → export them to ONNX bundles → start the gRPC server
with the default serving and experiment configs → score one user in each variant through the
gRPC client → shut down cleanly → print a summary.

It leaves things where README's walkthrough does and the default serving config reads them: the
dataset where ``store.dataset`` points (data/synth_dataset), the bundles under ``bundle_root``
(runs/bundles), so `muse serve --config configs/serving/default.toml` serves them afterwards.
Its training runs, and its server's behaviour store, exposure log and log, go under
``output_dir`` (runs/demo), apart from the walkthrough's runs/<model>.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from muse.core.config_loader import add_override_argument

DEFAULT_CONFIG = "configs/demo.toml"


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs; paths are relative to the working directory."""

    synthetic_config: Path = Path("configs/data/synth_default.toml")
    # Where the synthetic raw files go (`muse data synth --out`); the prepared dataset goes where
    # the serving config's store reads it.
    raw_data_dir: Path = Path("data/synth")
    # One training config per bundle the experiment config names (the model name = bundle name).
    ranking_configs: tuple[Path, ...] = (
        Path("configs/ranking/muse.toml"),
        Path("configs/ranking/din_last50.toml"),
    )
    experiment_config: Path = Path("configs/experiments/default.toml")
    serving_config: Path = Path("configs/serving/default.toml")
    # Training runs, and the demo server's behaviour store, exposure log and log.
    output_dir: Path = Path("runs/demo")
    # Reuse generated data when its saved config matches; training always starts fresh.
    reuse_data: bool = True
    # Extra overrides applied to every ranking config (e.g. training.max_epochs=3).
    ranking_overrides: tuple[str, ...] = ()
    # Item-to-item: the multimodal catalogue, the NoteLLM-2 config (its text-only baseline is
    # the same config without images) and overrides for both; false skips the whole part.
    item_to_item: bool = True
    item_catalogue_config: Path = Path("configs/data/items_default.toml")
    item_data_dir: Path = Path("data/synth_items")
    item_encoder_config: Path = Path("configs/item2item/notellm2_bench.toml")
    item_overrides: tuple[str, ...] = ("training.max_epochs=2",)
    # Conversational (needs item_to_item: its semantic IDs quantise NoteLLM-2's embeddings): the
    # dialogues over the same catalogue, the retriever's config and overrides; false skips it.
    conversational: bool = True
    semantic_ids_config: Path = Path("configs/conversational/semantic_ids.toml")
    semantic_ids_overrides: tuple[str, ...] = ()
    dialogues_config: Path = Path("configs/data/dialogues_default.toml")
    dialogues_dir: Path = Path("data/synth_dialogues")
    dialogues_overrides: tuple[str, ...] = ()
    conversational_config: Path = Path("configs/conversational/default.toml")
    conversational_overrides: tuple[str, ...] = ("training.max_epochs=2",)


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"demo TOML (default: {DEFAULT_CONFIG})"
    )
    add_override_argument(parser, 'output_dir="runs/demo2"')
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from muse.core.config_loader import load_config
    from serving.serving_config import ServingConfig

    config = load_config(DemoConfig, args.config, args.overrides)
    serving = load_config(ServingConfig, config.serving_config)
    trained = _check_configs(config)
    started = time.perf_counter()
    summary: dict[str, Any] = {}
    progress = not args.no_progress
    dataset_dir = _prepare_data(config, Path(serving.store.dataset), summary, progress)
    runs = _train_models(config, trained, dataset_dir, summary, progress)
    item_to_item = _train_item_encoders(config, Path(serving.bundle_root), summary, progress)
    conversational = _train_conversational(
        config, item_to_item, Path(serving.bundle_root), summary, progress
    )
    _serve_and_score(
        config, dataset_dir, Path(serving.bundle_root), runs, summary, item_to_item, conversational
    )
    summary["elapsed"] = time.perf_counter() - started
    _print_summary(summary)
    return 0


def _check_configs(config: DemoConfig) -> dict[str, Path]:
    """Every config the demo reads, loaded before any work: model name → its training config.

    Raises ConfigError when a config is bad or the experiment config serves a bundle that no
    ranking config trains.
    """
    from muse.core.config_loader import load_config
    from muse.core.errors import ConfigError
    from muse.ranking.training import TrainConfig
    from serving.experiments import Assigner, load_validated

    trained = {}
    for path in config.ranking_configs:
        train_config = load_config(TrainConfig, path, list(config.ranking_overrides))
        trained[train_config.model.name] = path
    served = Assigner(load_validated(config.experiment_config)).bundles()
    missing = sorted(set(served) - set(trained))
    if missing:
        raise ConfigError(
            f"{config.experiment_config}: serves bundle(s) {', '.join(map(repr, missing))} that "
            f"no ranking config of the demo trains (models: {', '.join(sorted(trained))})"
        )
    return trained


def _banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def _prepare_data(
    config: DemoConfig, dataset_dir: Path, summary: dict[str, Any], progress: bool
) -> Path:
    from features.dataset import Dataset, write_dataset
    from features.synthetic import generate_synthetic
    from features.synthetic_config import SynthConfig
    from features.taobao_mm import read_taobao_mm
    from muse.core.config_loader import config_to_dict, dump_toml, load_config
    from muse.core.metrics import auc, gauc

    raw_dir = config.raw_data_dir
    synth_config = load_config(SynthConfig, config.synthetic_config)
    wanted = dump_toml(config_to_dict(synth_config))
    saved = raw_dir / "synth_config.toml"
    reusable = (
        config.reuse_data
        and saved.is_file()
        and saved.read_text() == wanted
        and (dataset_dir / "manifest.json").is_file()
    )
    if reusable:
        _banner(f"1/4 synthetic data: reusing {raw_dir} and {dataset_dir} (same config)")
    else:
        _banner(f"1/4 generating the synthetic lifelong benchmark → {raw_dir}")
        generated = generate_synthetic(synth_config, raw_dir, progress=progress)
        print(
            f"{generated.num_train_samples + generated.num_test_samples:,} samples, "
            f"{generated.num_events:,} behaviours in {generated.elapsed_seconds:.1f} s "
            f"({generated.samples_per_second:,.0f} samples/s)"
        )
        _banner(f"2/4 converting to the internal dataset format → {dataset_dir}")
        write_dataset(read_taobao_mm(raw_dir, progress=progress), dataset_dir)
    dataset = Dataset(dataset_dir)
    test = dataset.samples("test")
    probability = dataset.click_probability()
    users = dataset.users()["user_id"].to_numpy()[test["user_index"].to_numpy()]
    labels = test["label"].to_numpy()
    summary["dataset"] = {
        "path": str(dataset_dir),
        "users": dataset.num_users,
        "train_samples": dataset.manifest["num_samples"]["train"],
        "test_samples": dataset.manifest["num_samples"]["test"],
        "events": dataset.manifest["num_events"],
        "positive_rate": float(labels.mean()),
    }
    if probability is not None:
        summary["oracle"] = {
            "auc": auc(labels, probability),
            "gauc": gauc(users, labels, probability),
        }
    return dataset_dir


def _train_models(
    config: DemoConfig,
    trained: dict[str, Path],
    dataset_dir: Path,
    summary: dict[str, Any],
    progress: bool,
) -> dict[str, Path]:
    from muse.core.config_loader import load_config
    from muse.ranking.training import TrainConfig, train

    _banner("3/4 training ranking models (early stopping on a validation split of train)")
    runs: dict[str, Path] = {}
    results = {}
    for name, path in trained.items():
        overrides = [f'data.dataset="{dataset_dir}"', *config.ranking_overrides]
        train_config = load_config(TrainConfig, path, overrides)
        run_dir = config.output_dir / "runs" / name
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"\n--- {name} ({path}) ---", flush=True)
        result = train(train_config, run_dir=run_dir, progress=progress)
        runs[name] = run_dir
        results[name] = {
            "auc": result.test.auc,
            "gauc": result.test.gauc,
            "logloss": result.test.logloss,
            "epochs": result.epochs,
            "samples_per_second": result.samples_per_second,
            "run_dir": str(run_dir),
        }
    summary["models"] = results
    return runs


def _train_item_encoders(
    config: DemoConfig, bundle_root: Path, summary: dict[str, Any], progress: bool
) -> Any:
    """NoteLLM-2 and the text-only LLM on the multimodal catalogue, then the index bundles."""
    if not config.item_to_item:
        return None
    from muse.cli.demo_item2item import train_and_index

    _banner("item-to-item: multimodal catalogue → NoteLLM-2 and text-only LLM → index bundle")
    result = train_and_index(
        catalogue_config=config.item_catalogue_config,
        data_dir=config.item_data_dir,
        encoder_config=config.item_encoder_config,
        overrides=config.item_overrides,
        runs_dir=config.output_dir / "runs" / "item2item",
        bundle_root=bundle_root,
        reuse_data=config.reuse_data,
        progress=progress,
    )
    summary["item_to_item"] = result
    return result


def _train_conversational(
    config: DemoConfig,
    item_to_item: Any,
    bundle_root: Path,
    summary: dict[str, Any],
    progress: bool,
) -> Any:
    """Semantic IDs of NoteLLM-2's embeddings, dialogues, the retriever, the bundle."""
    if not config.conversational or item_to_item is None:
        return None
    from muse.cli.demo_conversational import train_and_export

    _banner("conversational: semantic IDs → dialogues → generative retriever + TTR → bundle")
    runs_dir = config.output_dir / "runs" / "conversational"
    result = train_and_export(
        embeddings=item_to_item.embeddings,
        semantic_ids_config=config.semantic_ids_config,
        semantic_ids_overrides=config.semantic_ids_overrides,
        catalogue_dir=item_to_item.data_dir,
        dialogues_config=config.dialogues_config,
        dialogues_overrides=config.dialogues_overrides,
        dialogues_dir=config.dialogues_dir,
        conversational_config=config.conversational_config,
        overrides=config.conversational_overrides,
        runs_dir=runs_dir,
        bundle_root=bundle_root,
        reuse_data=config.reuse_data,
        progress=progress,
    )
    summary["conversational"] = result
    return result


def _serve_and_score(
    config: DemoConfig,
    dataset_dir: Path,
    bundle_root: Path,
    runs: dict[str, Path],
    summary: dict[str, Any],
    item_to_item: Any,
    conversational: Any,
) -> None:
    from muse.cli.demo_conversational import conversational_overrides, converse
    from muse.cli.demo_item2item import call_similar_items, similar_items_overrides
    from muse.cli.demo_serving import export_and_score_each_variant

    _banner("4/4 export, serve over gRPC, score one user per A/B variant, SimilarItems, Converse")
    extra = list(similar_items_overrides(bundle_root)) if item_to_item else []
    if conversational:
        extra += conversational_overrides(bundle_root, conversational.catalogue_dir)

    def while_serving(address: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if item_to_item:
            found.update(call_similar_items(address, item_to_item.data_dir))
        if conversational:
            found["dialogue"] = converse(
                address, conversational.dialogues_dir, conversational.catalogue_dir
            )
        return found

    summary["serving"] = export_and_score_each_variant(
        runs=runs,
        dataset_dir=dataset_dir,
        bundle_root=bundle_root,
        experiment_config=config.experiment_config,
        serving_config=config.serving_config,
        work_dir=config.output_dir / "serving",
        extra_overrides=extra,
        while_serving=while_serving if item_to_item or conversational else None,
    )


def _print_summary(summary: dict[str, Any]) -> None:
    data = summary["dataset"]
    print("\n" + "=" * 72)
    print("muse demo summary")
    print("=" * 72)
    print(
        f"data: {data['users']:,} users, {data['events']:,} behaviours, "
        f"{data['train_samples']:,} train / {data['test_samples']:,} test samples, "
        f"{data['positive_rate']:.1%} clicks  ({data['path']})"
    )
    print(
        f"\n{'model':<16}{'test AUC':>10}{'test GAUC':>11}{'logloss':>10}{'epochs':>8}{'samples/s':>11}"
    )
    if "oracle" in summary:
        oracle = summary["oracle"]
        print(f"{'oracle':<16}{oracle['auc']:>10.4f}{oracle['gauc']:>11.4f}{'':>10}{'':>8}{'':>11}")
    for name, metrics in summary.get("models", {}).items():
        print(
            f"{name:<16}{metrics['auc']:>10.4f}{metrics['gauc']:>11.4f}{metrics['logloss']:>10.4f}"
            f"{metrics['epochs']:>8}{metrics['samples_per_second']:>11,.0f}"
        )
    serving = summary.get("serving")
    if serving:
        print(
            f"\ngRPC server at {serving['address']} ({serving['bundles']} bundles loaded from "
            f"{serving['bundle_root']})"
        )
        for row in serving["scored"]:
            scores = ", ".join(f"{score:.4f}" for score in row["scores"])
            print(
                f"  user {row['user_id']}: {row['experiment']}/{row['variant']} → model "
                f"{row['model_version']}, scores [{scores}]"
            )
        similar = serving.get("extra")
        if similar:
            query = similar["query"]
            print(
                f"  SimilarItems for item {query['item_id']} ({query['title']!r}), index "
                f"{similar['index_version']}:"
            )
            for row in similar["neighbours"]:
                mark = "  ← co-engaged in the test pairs" if row["co_engaged"] else ""
                print(f"    {row['item_id']}  {row['score']:.3f}  {row['title']}{mark}")
            top = similar["new_item_top"][:1]
            print(
                f"  the same item sent as a new item (image + text, encoded by the ONNX encoder): "
                f"top {top} at score {similar['new_item_scores'][0]:.4f}"
            )
        if similar and "dialogue" in similar:
            from muse.cli.demo_conversational import format_dialogue

            print("  Converse, one test dialogue turn by turn (one session):")
            for line in format_dialogue(similar["dialogue"]):
                print(line)
        print(f"  server shut down cleanly: {serving['clean_shutdown']}")
        print(
            f"\nserve these bundles yourself: muse serve --config {serving['serving_config']}\n"
            f"then, from another shell:      muse client --dataset {data['path']}"
        )
    item_to_item = summary.get("item_to_item")
    if item_to_item is not None:
        from muse.cli.demo_item2item import format_recall

        print("\nitem-to-item test Recall@k by link kind (NoteLLM's protocol):")
        for line in format_recall(item_to_item):
            print(f"  {line}")
    conversational = summary.get("conversational")
    if conversational is not None:
        print(
            f"\nconversational test figures at the last user turn ({conversational.beams} beams, "
            f"TTR α {conversational.alpha:.2f}):"
        )
        print(f"  {'method':<16}{'MRR':>8}{'nDCG@1':>9}{'R@10':>8}")
        for name, figures in conversational.methods.items():
            print(
                f"  {name:<16}{figures['mrr']:>8.3f}{figures['ndcg@1']:>9.3f}"
                f"{figures['recall@10']:>8.3f}"
            )
    print(f"\nfinished in {summary['elapsed'] / 60:.1f} min")
