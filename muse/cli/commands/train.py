"""`muse train`: train a model from a TOML config (also under torchrun); its ``task`` key picks the task."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from muse.core.config_loader import add_override_argument


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        help="TOML with a top-level task (ranking, the default, item_to_item or conversational) and its tables",
    )
    add_override_argument(parser, "training.batch_size=256")
    parser.add_argument(
        "--out", help="run directory (default: training.output_dir, else runs/<model name>)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from <run>/checkpoints/last.pt (--config defaults to <run>/config.toml)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import os

    from muse.conversational.training.train_config import ConversationalTrainConfig
    from muse.conversational.training.training_job import train as train_conversational
    from muse.core.config_loader import apply_overrides, config_from_dict, read_toml
    from muse.core.errors import ConfigError
    from muse.core.task_kind import TaskKind, task_of_config
    from muse.item2item.training.train_config import ItemTrainConfig
    from muse.item2item.training.training_job import train as train_item_to_item
    from muse.ranking.training.train_config import TrainConfig
    from muse.ranking.training.training_job import train as train_ranking
    from muse.training.run_directory import RunDirectory

    # Each task's config class, training entry point and one-line summary of its result; the
    # config's ``task`` key picks one.
    tasks: dict[TaskKind, tuple[type, Callable[..., Any], Callable[[Any, Any], str]]] = {
        TaskKind.RANKING: (TrainConfig, train_ranking, _ranking_summary),
        TaskKind.ITEM_TO_ITEM: (ItemTrainConfig, train_item_to_item, _own_summary),
        TaskKind.CONVERSATIONAL: (
            ConversationalTrainConfig,
            train_conversational,
            _own_summary,
        ),
    }

    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"training.output_dir={_toml_string(args.out)}")
    config_path = args.config
    if config_path is None:
        if not (args.resume and args.out):
            raise ConfigError("--config: required (or --resume with --out)")
        config_path = RunDirectory(args.out).config
    source = str(config_path)
    raw = apply_overrides(read_toml(config_path), overrides, source)
    kind = task_of_config(raw, source)
    if kind not in tasks:
        trainable = ", ".join(task.value for task in tasks)
        raise ConfigError(f"{source}: task {kind.value!r} is not trained by `muse train` ({trainable})")
    config_class, train_job, summary = tasks[kind]
    config: Any = config_from_dict(config_class, raw, source)
    result = train_job(config, resume=args.resume, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    print(summary(config, result))
    return 0


def _ranking_summary(config: Any, result: Any) -> str:
    return (
        f"{config.model.name}: test AUC {result.test.auc:.4f} GAUC {result.test.gauc:.4f} "
        f"logloss {result.test.logloss:.4f}; {result.epochs} epoch(s), best {result.best_epoch}; "
        f"{result.samples_per_second:,.0f} train samples/s; metrics in {result.run_dir / 'metrics.json'}"
    )


def _own_summary(config: Any, result: Any) -> str:
    """The result's own one-line summary (item-to-item, conversational)."""
    summary: str = result.summary()
    return summary


def _toml_string(text: str) -> str:
    import json

    return json.dumps(text)
