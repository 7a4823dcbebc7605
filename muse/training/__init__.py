"""Offline training and evaluation of ranking models.

Command line::

    muse train --config configs/ranking/muse.toml [--set training.batch_size=256 ...] [--out DIR]
    muse train --out DIR --resume                  # after a crash or kill -9: same batches, same result
    torchrun --standalone --nproc_per_node=2 -m muse.cli train --config ...   # DistributedModelParallel
    muse evaluate --checkpoint DIR/checkpoints/best.pt [--dataset OTHER] [--out DIR2]

Run directory: ``config.toml`` (resolved config), ``metrics.json`` (test AUC / GAUC / logloss,
oracle metrics on synthetic data, epochs, validation history, train samples/s),
``checkpoints/last.pt`` (resume point) and ``best.pt`` (best validation weights, full tensors),
``tensorboard/`` (train loss, samples/s, validation and test metrics).

Python API:
- ``train(config: TrainConfig, run_dir=None, resume=False) -> TrainResult``
- ``evaluate(checkpoint, dataset=None, out=None) -> Metrics``
- ``BatchBuilder(dataset, max_history_length).build(samples, rows) -> muse.ranking.batch.RankingBatch``
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
