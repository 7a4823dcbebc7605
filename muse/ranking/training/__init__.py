"""Offline training and evaluation of ranking models, on the generic loop of :mod:`muse.training`.

Command line::

    muse train --config configs/ranking/muse.toml [--set training.batch_size=256 ...] [--out DIR]
    muse train --out DIR --resume                  # after a crash or kill -9: same batches, same result
    torchrun --standalone --nproc_per_node=2 -m muse.cli train --config ...   # DistributedModelParallel
    muse evaluate --checkpoint DIR/checkpoints/best.pt [--dataset OTHER] [--out DIR2] [--predictions F]

Python API:
- ``train(config: TrainConfig, run_dir=None, resume=False) -> TrainResult``
- ``evaluate(checkpoint, dataset=None, out=None, predictions=None) -> Metrics``
- ``BatchBuilder(dataset, max_history_length).build(samples, rows) -> muse.ranking.batch.RankingBatch``
- ``RankingTask(config)``: the :class:`muse.training.training_task.TrainingTask` that ``train`` runs
"""

from muse.ranking.training.batch_builder import BatchBuilder
from muse.ranking.training.checkpoint_evaluation import evaluate
from muse.ranking.training.evaluation import Metrics
from muse.ranking.training.ranking_task import RankingTask
from muse.ranking.training.train_config import DataConfig, RankingTrainingConfig, TrainConfig
from muse.ranking.training.training_job import TrainResult, train

__all__ = [
    "BatchBuilder",
    "DataConfig",
    "Metrics",
    "RankingTask",
    "RankingTrainingConfig",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "train",
]
