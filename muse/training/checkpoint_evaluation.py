"""Evaluate a saved checkpoint on a whole split: exact AUC, GAUC and logloss → ``metrics.json``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from features.dataset import Dataset
from muse.core.atomic_write import write_text_atomic
from muse.core.config_loader import config_from_dict, config_to_dict, dump_toml
from muse.training.batch_builder import BatchBuilder
from muse.training.checkpoint import load_checkpoint
from muse.training.distributed import DistributedContext
from muse.training.evaluation import Metrics, compute_metrics, evaluate_samples
from muse.training.prepared_model import ModelFactory, load_model_state, prepare_model
from muse.training.run_directory import CONFIG_FILE, METRICS_FILE, RunDirectory
from muse.training.sample_table import SampleTable
from muse.training.train_config import TrainConfig


def evaluate(
    checkpoint: str | Path,
    dataset: str | Path | None = None,
    out: str | Path | None = None,
    split: str = "test",
    batch_size: int | None = None,
    progress: bool = False,
    model_factory: ModelFactory | None = None,
) -> Metrics:
    """Score every ``split`` sample of ``dataset`` (default: the one trained on) with ``checkpoint``.

    Writes ``metrics.json`` to ``out`` (default: the checkpoint's run directory, beside its
    ``config.toml``); with ``out`` given, the resolved config is written there too.
    """
    payload = load_checkpoint(checkpoint)
    config = config_from_dict(TrainConfig, payload["config"], source=str(checkpoint))
    if dataset is not None:
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, dataset=Path(dataset))
        )
    settings = config.training
    context = DistributedContext.from_environment(settings.device)
    try:
        data = Dataset(config.data.dataset)
        extra = {} if model_factory is None else {"model_factory": model_factory}
        prepared = prepare_model(
            config.model, data, context, settings.sparse_learning_rate, settings.sparse_eps, **extra
        )
        load_model_state(prepared, payload["model"])
        samples = SampleTable.load(data, split)
        metrics = evaluate_samples(
            prepared.module,
            BatchBuilder(data, config.data.max_history_length),
            samples,
            context,
            batch_size or settings.evaluation_batch_size,
            settings.prefetch_batches,
            progress,
            description=split,
        )
        oracle = None
        probability = data.click_probability() if split == "test" else None
        if probability is not None:
            oracle = compute_metrics(samples, probability)
        if context.is_main:
            target = Path(out) if out is not None else RunDirectory.of_checkpoint(checkpoint).root
            if out is not None or not (target / CONFIG_FILE).is_file():
                write_text_atomic(target / CONFIG_FILE, dump_toml(config_to_dict(config)))
            report = {
                "model": config.model.name,
                "dataset": str(config.data.dataset),
                "split": split,
                "checkpoint": str(checkpoint),
                **metrics.as_dict(),
                "oracle": oracle.as_dict() if oracle is not None else None,
                "epoch": payload.get("epoch", payload.get("progress", {}).get("epochs_completed")),
                "step": payload.get("step", payload.get("progress", {}).get("step")),
            }
            write_text_atomic(target / METRICS_FILE, json.dumps(report, indent=2) + "\n")
        context.barrier()
        return metrics
    finally:
        context.close()
