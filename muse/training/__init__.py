"""Offline training and evaluation of ranking models.

Public API:
- ``train(config: TrainConfig, run_dir=None, resume=False) -> TrainResult``: epochs with early
  stopping on a validation split carved from train, atomic checkpoints, TensorBoard events, and
  exact test AUC / GAUC / logloss written to ``<run>/metrics.json`` beside ``<run>/config.toml``.
  Runs unchanged under ``torchrun`` (DistributedModelParallel, gloo on CPU, NCCL on CUDA).
- ``evaluate(checkpoint, dataset=None, out=None) -> Metrics``: the same metrics for a checkpoint.
- ``BatchBuilder``: sample rows → ``muse.batch.RankingBatch`` with histories sliced at batch time.
"""

from muse.training.batch_builder import BatchBuilder
from muse.training.checkpoint_evaluation import evaluate
from muse.training.evaluation import Metrics
from muse.training.train_config import DataConfig, TrainConfig, TrainingConfig
from muse.training.trainer import TrainResult, train

__all__ = [
    "BatchBuilder",
    "DataConfig",
    "Metrics",
    "TrainConfig",
    "TrainResult",
    "TrainingConfig",
    "evaluate",
    "train",
]
