"""``train(config)``: a ranking training job, run by the generic loop of :mod:`muse.training`.

Run directory: ``config.toml`` (resolved config), ``metrics.json`` (test AUC / GAUC / logloss,
oracle metrics on synthetic data, epochs, validation history, train samples/s),
``checkpoints/last.pt`` (resume point) and ``best.pt`` (best validation weights, full tensors),
``tensorboard/`` (train loss, samples/s, validation and test metrics).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from torch import nn

from muse.ranking.models.ranking_model import build_ranking_model
from muse.ranking.training.evaluation import Metrics
from muse.ranking.training.model_construction import ModelFactory
from muse.ranking.training.ranking_task import RankingTask
from muse.ranking.training.train_config import TrainConfig
from muse.training.trainer import train_task


class TrainResult(NamedTuple):
    """What a finished run returns (on every rank).

    test: metrics of the best-validation weights on the whole test set. validation: the best
    validation metrics. oracle: the true click probabilities' test metrics (synthetic data).
    epochs: epochs trained (early stopping included). samples_per_second: training throughput
    over all ranks. model: the trained module, best weights loaded.
    """

    run_dir: Path
    test: Metrics
    validation: Metrics
    oracle: Metrics | None
    epochs: int
    best_epoch: int
    steps: int
    samples_per_second: float
    model: nn.Module


def train(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    model_factory: ModelFactory = build_ranking_model,
) -> TrainResult:
    """Train ``config``'s model on its dataset; see the module docstring.

    run_dir defaults to ``config.run_directory`` (``training.output_dir`` or runs/<model>).
    Without ``resume`` the run directory must not already hold a checkpoint; with it, training
    continues from ``checkpoints/last.pt`` (after a crash or kill -9: same batches, same result).
    """
    outcome = train_task(
        RankingTask(config, model_factory),
        config.training,
        run_dir or config.run_directory,
        resume,
        progress,
    )
    validation = (
        Metrics.from_dict(outcome.validation)
        if outcome.validation is not None
        else Metrics(math.nan, math.nan, math.nan, 0)
    )
    return TrainResult(
        run_dir=outcome.run_dir,
        test=outcome.test.test,
        validation=validation,
        oracle=outcome.test.oracle,
        epochs=outcome.epochs,
        best_epoch=outcome.best_epoch,
        steps=outcome.steps,
        samples_per_second=outcome.samples_per_second,
        model=outcome.model,
    )
