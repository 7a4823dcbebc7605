"""Evaluate a saved checkpoint on a whole split: exact AUC, GAUC and logloss → ``metrics.json``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from features.dataset import Dataset
from muse.core.atomic_write import write_text_atomic
from muse.core.config_loader import config_from_dict, config_to_dict, dump_toml
from muse.ranking.models.ranking_model import build_ranking_model
from muse.ranking.training.batch_builder import BatchBuilder
from muse.ranking.training.evaluation import Metrics, compute_metrics, predict
from muse.ranking.training.model_construction import ModelFactory, prepare_model
from muse.ranking.training.prediction_file import write_predictions
from muse.ranking.training.sample_table import SampleTable
from muse.ranking.training.train_config import TrainConfig
from muse.training.checkpoint import load_checkpoint
from muse.training.distributed import DistributedContext
from muse.training.prepared_model import load_model_state
from muse.training.run_directory import CONFIG_FILE, METRICS_FILE, RunDirectory


def evaluate(
    checkpoint: str | Path,
    dataset: str | Path | None = None,
    out: str | Path | None = None,
    split: str = "test",
    batch_size: int | None = None,
    progress: bool = False,
    model_factory: ModelFactory = build_ranking_model,
    predictions: str | Path | None = None,
) -> Metrics:
    """Score every ``split`` sample of ``dataset`` (default: the one trained on) with ``checkpoint``.

    Writes ``metrics.json`` to ``out`` (default: the checkpoint's run directory, beside its
    ``config.toml``); with ``out`` given, the resolved config is written there too. With
    ``predictions``, also writes every sample's probability there (see
    :mod:`muse.ranking.training.prediction_file`).
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
        prepared = prepare_model(
            config.model,
            data,
            context,
            settings.sparse_learning_rate,
            settings.sparse_eps,
            model_factory,
        )
        load_model_state(prepared, payload["model"])
        samples = SampleTable.load(data, split)
        probabilities = predict(
            prepared.module,
            BatchBuilder(data, config.data.max_history_length),
            samples,
            context,
            batch_size or settings.evaluation_batch_size,
            settings.prefetch_batches,
            progress,
            description=split,
        )
        metrics = compute_metrics(samples, probabilities)
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
            if predictions is not None:
                write_predictions(predictions, data, samples, probabilities)
        context.barrier()
        return metrics
    finally:
        context.close()
