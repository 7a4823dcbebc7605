"""What the generic training loop needs from a task (ranking, and later others).

The loop owns everything a task should not repeat: seeding, placing and sharding the model,
optimisers, the epoch sampler and prefetching, checkpoints and resume, early stopping, progress
bars, TensorBoard and the run directory. A task supplies its model, batches, loss, validation and
final report; the loop calls it through this protocol and never imports it.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from muse.training.distributed import DistributedContext

Batch = TypeVar("Batch")
Report = TypeVar("Report", bound="TestReport", covariant=True)


class Evaluation(NamedTuple):
    """One validation pass.

    score: what early stopping and best-checkpoint selection maximise (NaN never improves).
    logs: named figures, logged to TensorBoard as ``validation/<name>`` and saved in the
    validation history, the best checkpoint and ``metrics.json``.
    """

    score: float
    logs: dict[str, float]


class TestReport(Protocol):
    """A task's report on its test split, made once with the best validation weights."""

    def scalars(self) -> dict[str, float]:
        """Figures logged to TensorBoard as ``test/<name>``."""
        ...

    def as_dict(self) -> dict[str, Any]:
        """Its ``metrics.json`` entries (JSON values); the loop adds the run's own after them."""
        ...


class TrainingTask(Protocol[Batch, Report]):
    """A task as the loop drives it. Methods that take a model get the placed (maybe sharded) one."""

    def run_config(self) -> dict[str, Any]:
        """The resolved config as a plain dict, generic settings under ``training``.

        Saved as ``config.toml`` and in every checkpoint; resuming with a different one fails.
        """
        ...

    def build_model(self) -> nn.Module:
        """The unsharded model on the CPU (called after seeding, so its init is reproducible)."""
        ...

    def num_train_rows(self) -> int:
        """How many training rows an epoch covers."""
        ...

    def train_batch(self, rows: np.ndarray) -> Batch:
        """The batch of training rows (B,) int64; runs in the prefetch thread."""
        ...

    def loss(self, model: nn.Module, batch: Batch, device: torch.device) -> torch.Tensor:
        """Scalar mean loss of ``model`` on ``batch`` (which this moves to ``device``)."""
        ...

    def validate(self, model: nn.Module, context: DistributedContext, progress: bool) -> Evaluation:
        """Score the validation rows; collective under torchrun, same result on every rank."""
        ...

    def test(self, model: nn.Module, context: DistributedContext, progress: bool) -> Report:
        """Score the test split; collective under torchrun, same result on every rank."""
        ...
