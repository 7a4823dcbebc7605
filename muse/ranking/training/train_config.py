"""Configuration of a ranking training job: ``task`` and the ``[model]``, ``[data]``, ``[training]`` tables.

One TOML per model (``configs/ranking/<model>.toml``) holds all three; ``muse train --set
training.batch_size=256`` overrides single keys. Imports no torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from muse.core.task_kind import TaskKind
from muse.ranking.models.ranking_config import RankingModelConfig
from muse.training.training_config import TrainingConfig


class ValidationSplit(enum.Enum):
    """How the early-stopping validation set is carved out of the TRAIN samples (never test)."""

    USER = "user"  # a seeded share of raw user ids, with all their samples
    TIME = "time"  # the latest share of train samples by timestamp


class EarlyStoppingMetric(enum.Enum):
    """Validation metric that early stopping and best-checkpoint selection maximise."""

    GAUC = "gauc"
    AUC = "auc"


@dataclass(frozen=True)
class DataConfig:
    """Which dataset to read and how histories and the validation split are cut."""

    dataset: Path = Path("data/synth_dataset")
    # Histories are capped at this many most recent behaviours (the batch's L).
    max_history_length: int = 1000
    validation_split: ValidationSplit = ValidationSplit.USER
    validation_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.max_history_length < 1:
            raise ValueError(f"max_history_length must be ≥ 1, got {self.max_history_length}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )


@dataclass(frozen=True)
class RankingTrainingConfig(TrainingConfig):
    """The generic ``[training]`` settings plus ranking's validation metric and auxiliary loss."""

    early_stopping_metric: EarlyStoppingMetric = EarlyStoppingMetric.GAUC
    # Weight of a search stage's auxiliary CTR loss (SIM-soft); unused by other models.
    auxiliary_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.auxiliary_loss_weight < 0:
            raise ValueError(f"auxiliary_loss_weight must be ≥ 0, got {self.auxiliary_loss_weight}")


@dataclass(frozen=True)
class TrainConfig:
    """A whole ranking training job: the model, the data it reads and how it is optimised."""

    task: TaskKind = TaskKind.RANKING
    model: RankingModelConfig = field(default_factory=RankingModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: RankingTrainingConfig = field(default_factory=RankingTrainingConfig)

    @property
    def run_directory(self) -> Path:
        """Where this job writes: ``training.output_dir``, else ``runs/<model.name>``."""
        return self.training.output_dir or Path("runs") / self.model.name
