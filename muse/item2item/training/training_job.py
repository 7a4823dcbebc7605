"""``train(config)``: an item-to-item (NoteLLM-2) training job, run by the generic loop of :mod:`muse.training`.

Run directory: ``config.toml`` (resolved config), ``metrics.json`` (test Recall@1/10/100/1000
overall and by link kind, the oracle's on synthetic data, epochs, validation history, train
pairs/s), ``checkpoints/last.pt`` (resume point) and ``best.pt`` (best validation Recall@k;
``muse i2i embed`` reads it), ``tensorboard/``.

The generic loop takes one optimiser step per batch (no gradient accumulation): for in-batch
NT-Xent the negatives are the batch itself, so ``training.batch_size`` pairs is the contrastive
batch; accumulating smaller batches would not give the same loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from muse.item2item.training.item_pair_report import ItemPairReport
from muse.item2item.training.item_pair_task import ItemPairTask
from muse.item2item.training.pair_retrieval import ALL_LINKS
from muse.item2item.training.train_config import ItemTrainConfig
from muse.training.trainer import train_task


@dataclass(frozen=True)
class ItemTrainResult:
    """What a finished run returns (on every rank).

    test: the best-validation encoder's test report. validation: the best validation logs
    (None when no validation improved). model: the ItemPairModel, best weights loaded.
    """

    run_dir: Path
    test: ItemPairReport
    validation: dict[str, float] | None
    epochs: int
    best_epoch: int
    steps: int
    samples_per_second: float
    model: nn.Module

    def summary(self) -> str:
        """One line for the console: test Recall@k overall and the run's figures."""
        overall = self.test.recall[ALL_LINKS]
        figures = " ".join(f"R@{k} {overall[k]:.4f}" for k in sorted(overall))
        return (
            f"{self.test.model}: test {figures}; {self.epochs} epoch(s), best {self.best_epoch}; "
            f"{self.samples_per_second:,.0f} train pairs/s; metrics in {self.run_dir / 'metrics.json'}"
        )


def train(
    config: ItemTrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> ItemTrainResult:
    """Train ``config``'s item encoder on its pairs; see the module docstring.

    run_dir defaults to ``config.run_directory``. Without ``resume`` the run directory must not
    already hold a checkpoint; with it, training continues from ``checkpoints/last.pt``.
    """
    outcome = train_task(
        ItemPairTask(config), config.training, run_dir or config.run_directory, resume, progress
    )
    return ItemTrainResult(
        run_dir=outcome.run_dir,
        test=outcome.test,
        validation=outcome.validation,
        epochs=outcome.epochs,
        best_epoch=outcome.best_epoch,
        steps=outcome.steps,
        samples_per_second=outcome.samples_per_second,
        model=outcome.model,
    )
