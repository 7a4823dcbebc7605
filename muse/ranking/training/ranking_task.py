"""Ranking as the generic training loop drives it (a :class:`muse.training.training_task.TrainingTask`).

Fitting and validation rows are both carved out of the TRAIN split; the test split is only
scored once, at the end, with the best validation weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from features.dataset import Dataset
from muse.core.config_loader import config_to_dict
from muse.ranking.batch import RankingBatch
from muse.ranking.models.ranking_model import build_ranking_model
from muse.ranking.training.batch_builder import BatchBuilder
from muse.ranking.training.evaluation import (
    Metrics,
    compute_metrics,
    evaluate_samples,
    to_device,
)
from muse.ranking.training.loss import ranking_loss
from muse.ranking.training.model_construction import ModelFactory, build_model
from muse.ranking.training.ranking_report import RankingReport
from muse.ranking.training.sample_table import SampleTable
from muse.ranking.training.train_config import EarlyStoppingMetric, TrainConfig
from muse.ranking.training.validation_split import split_validation
from muse.training.distributed import DistributedContext
from muse.training.training_task import Evaluation


class RankingTask:
    """The model, batches, loss and metrics of one ranking training job."""

    def __init__(
        self, config: TrainConfig, model_factory: ModelFactory = build_ranking_model
    ) -> None:
        self.config = config
        self.model_factory = model_factory
        self.dataset = Dataset(config.data.dataset)
        self.builder = BatchBuilder(self.dataset, config.data.max_history_length)
        train_samples = SampleTable.load(self.dataset, "train")
        split = split_validation(
            train_samples,
            config.data.validation_split,
            config.data.validation_fraction,
            config.training.seed,
        )
        self.fit_samples = train_samples.subset(split.fit)
        self.validation_samples = train_samples.subset(split.validation)
        self.test_samples = SampleTable.load(self.dataset, "test")

    def run_config(self) -> dict[str, Any]:
        return config_to_dict(self.config)

    def build_model(self) -> nn.Module:
        return build_model(self.config.model, self.dataset, self.model_factory)

    def num_train_rows(self) -> int:
        return len(self.fit_samples)

    def train_batch(self, rows: np.ndarray) -> RankingBatch:
        """The RankingBatch of fitting rows (B,), histories (B, L = max_history_length)."""
        return self.builder.build(self.fit_samples, rows)

    def loss(self, model: nn.Module, batch: RankingBatch, device: torch.device) -> torch.Tensor:
        """Mean BCE of the click logits (B,), plus the weighted auxiliary loss of a search stage."""
        batch = to_device(batch, device)
        return ranking_loss(model(batch), batch.label, self.config.training.auxiliary_loss_weight)

    def validate(self, model: nn.Module, context: DistributedContext, progress: bool) -> Evaluation:
        """Exact AUC, GAUC and logloss of the validation rows; the score is ``early_stopping_metric``."""
        metrics = self._metrics(model, self.validation_samples, context, progress, "validate")
        chosen = self.config.training.early_stopping_metric
        score = metrics.gauc if chosen is EarlyStoppingMetric.GAUC else metrics.auc
        return Evaluation(score=score, logs=metrics.as_dict())

    def test(self, model: nn.Module, context: DistributedContext, progress: bool) -> RankingReport:
        """Exact metrics of the whole test split, beside the oracle's when the dataset has one."""
        test = self._metrics(model, self.test_samples, context, progress, "test")
        click_probability = self.dataset.click_probability()
        oracle = (
            compute_metrics(self.test_samples, click_probability)
            if click_probability is not None
            else None
        )
        return RankingReport(
            model=self.config.model.name,
            dataset=str(self.config.data.dataset),
            test=test,
            oracle=oracle,
        )

    def _metrics(
        self,
        model: nn.Module,
        samples: SampleTable,
        context: DistributedContext,
        progress: bool,
        description: str,
    ) -> Metrics:
        settings = self.config.training
        return evaluate_samples(
            model,
            self.builder,
            samples,
            context,
            settings.evaluation_batch_size,
            settings.prefetch_batches,
            progress,
            description=description,
        )
