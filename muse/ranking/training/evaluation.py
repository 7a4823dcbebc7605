"""Scoring a whole split and computing exact AUC, GAUC (by raw user id) and logloss.

Under torchrun every rank scores its shard of the rows; the scores are all-gathered, so every
rank computes the same metrics from the same full array (no per-batch approximations).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from muse.core.metrics import auc, gauc, logloss
from muse.ranking.batch import RankingBatch
from muse.ranking.training.batch_builder import BatchBuilder
from muse.ranking.training.sample_table import SampleTable
from muse.training.distributed import DistributedContext
from muse.training.prefetch import Prefetcher
from muse.training.sampler import EpochSampler


class Metrics(NamedTuple):
    """Exact metrics over a whole split; NaN where undefined (e.g. a single class)."""

    auc: float
    gauc: float
    logloss: float
    num_samples: int

    def as_dict(self) -> dict[str, float | int]:
        return self._asdict()

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> Metrics:
        """The metrics saved by :meth:`as_dict` (in a checkpoint or the validation history)."""
        return cls(
            float(data["auc"]),
            float(data["gauc"]),
            float(data["logloss"]),
            int(data["num_samples"]),
        )


def compute_metrics(samples: SampleTable, probabilities: np.ndarray) -> Metrics:
    """AUC, GAUC (grouped by raw user id) and logloss of click ``probabilities`` (N,)."""
    return Metrics(
        auc=auc(samples.label, probabilities),
        gauc=gauc(samples.user_id, samples.label, probabilities),
        logloss=logloss(samples.label, probabilities),
        num_samples=len(samples),
    )


def to_device(batch: RankingBatch, device: torch.device) -> RankingBatch:
    """Every tensor of ``batch`` on ``device``."""
    if device.type == "cpu":
        return batch
    return RankingBatch(*(tensor.to(device, non_blocking=True) for tensor in batch))


@torch.no_grad()
def predict(
    model: nn.Module,
    builder: BatchBuilder,
    samples: SampleTable,
    context: DistributedContext,
    batch_size: int,
    prefetch_batches: int = 2,
    progress: bool = False,
    description: str = "evaluate",
) -> np.ndarray:
    """Click probabilities (N,) float64 of every sample, on every rank."""
    sampler = EpochSampler(
        len(samples),
        batch_size,
        seed=0,
        rank=context.rank,
        world_size=context.world_size,
        shuffle=False,
    )
    rows = sampler.shard(0)
    was_training = model.training
    model.eval()
    scores = []
    batches = Prefetcher(
        sampler.batches(0), lambda chunk: builder.build(samples, chunk), prefetch_batches
    )
    with tqdm(
        total=rows.size,
        unit="sample",
        unit_scale=True,
        desc=description,
        disable=not (progress and context.is_main),
        leave=False,
    ) as bar:
        for batch in batches:
            output = model(to_device(batch, context.device))
            scores.append(torch.sigmoid(output.logits.float()).cpu().numpy().astype(np.float64))
            bar.update(len(batch.label))
    batches.close()
    model.train(was_training)
    local = np.concatenate(scores) if scores else np.zeros(0)
    probabilities = np.empty(len(samples), dtype=np.float64)
    for rank, part in enumerate(context.all_gather_array(local)):
        # Rank r scored rows r, r + W, ... of the wrapped order; wrapped repeats rewrite equal values.
        shard = EpochSampler(
            len(samples),
            batch_size,
            seed=0,
            rank=rank,
            world_size=context.world_size,
            shuffle=False,
        ).shard(0)
        probabilities[shard] = part
    return probabilities


def evaluate_samples(
    model: nn.Module,
    builder: BatchBuilder,
    samples: SampleTable,
    context: DistributedContext,
    batch_size: int,
    prefetch_batches: int = 2,
    progress: bool = False,
    description: str = "evaluate",
) -> Metrics:
    """Metrics of ``model`` over every row of ``samples``."""
    probabilities = predict(
        model, builder, samples, context, batch_size, prefetch_batches, progress, description
    )
    return compute_metrics(samples, probabilities)
