"""Configuration of a ranking training job: the ``[model]``, ``[data]`` and ``[training]`` tables.

One TOML per model (``configs/ranking/<model>.toml``) holds all three; ``muse train --set
training.batch_size=256`` overrides single keys. Imports no torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from muse.ranking.models.ranking_config import RankingModelConfig


class ValidationSplit(enum.Enum):
    """How the early-stopping validation set is carved out of the TRAIN samples (never test)."""

    USER = "user"  # a seeded share of raw user ids, with all their samples
    TIME = "time"  # the latest share of train samples by timestamp


class EarlyStoppingMetric(enum.Enum):
    """Validation metric that early stopping and best-checkpoint selection maximise."""

    GAUC = "gauc"
    AUC = "auc"


class Device(enum.Enum):
    """Where the dense model runs; AUTO takes cuda:LOCAL_RANK when CUDA is available."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


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
class TrainingConfig:
    """Optimisation, early stopping, checkpointing and run settings.

    ``batch_size`` is per process: under torchrun the global batch is batch_size × world size.
    Dense parameters use AdamW; ID embedding rows use row-wise Adagrad (fused into the torchrec
    lookup under DistributedModelParallel, a plain optimiser step otherwise).
    """

    batch_size: int = 1024
    # Scoring needs no gradients, but MM history gathers grow with B × L: keep it near batch_size.
    evaluation_batch_size: int = 1024
    max_epochs: int = 20
    # Stop after this many validations in a row without improving the best metric.
    patience: int = 2
    early_stopping_metric: EarlyStoppingMetric = EarlyStoppingMetric.GAUC
    # Minimum improvement of the metric that counts as progress.
    minimum_improvement: float = 1e-4
    dense_learning_rate: float = 2e-4
    dense_weight_decay: float = 1e-5
    sparse_learning_rate: float = 0.01
    sparse_eps: float = 1e-8
    # Weight of a search stage's auxiliary CTR loss (SIM-soft); unused by other models.
    auxiliary_loss_weight: float = 1.0
    checkpoint_every_steps: int = 500
    log_every_steps: int = 20
    seed: int = 42
    # torch intra-op threads per process; 0 keeps torch's default.
    threads: int = 0
    # Batches built ahead in a background thread; 0 builds them inline.
    prefetch_batches: int = 2
    device: Device = Device.AUTO
    # Run directory; unset means runs/<model.name>.
    output_dir: Path | None = None

    def __post_init__(self) -> None:
        positive = (
            "batch_size",
            "evaluation_batch_size",
            "max_epochs",
            "patience",
            "checkpoint_every_steps",
            "log_every_steps",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("threads", "prefetch_batches"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("dense_learning_rate", "sparse_learning_rate", "sparse_eps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("dense_weight_decay", "auxiliary_loss_weight", "minimum_improvement"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training job: the model, the data it reads and how it is optimised."""

    model: RankingModelConfig = field(default_factory=RankingModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    @property
    def run_directory(self) -> Path:
        """Where this job writes: ``training.output_dir``, else ``runs/<model.name>``."""
        return self.training.output_dir or Path("runs") / self.model.name
