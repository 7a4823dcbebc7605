"""The generic ``[training]`` settings of every task: optimisation, stopping, checkpoints, device.

A task's own config embeds these (or a subclass adding the task's knobs) as its ``training``
table. Imports no torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class Device(enum.Enum):
    """Where the dense model runs; AUTO takes cuda:LOCAL_RANK when CUDA is available."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation, early stopping, checkpointing and run settings.

    ``batch_size`` is per process: under torchrun the global batch is batch_size × world size.
    Dense parameters use AdamW; ID embedding rows use row-wise Adagrad (fused into the torchrec
    lookup under DistributedModelParallel, a plain optimiser step otherwise).
    """

    batch_size: int = 1024
    # Scoring needs no gradients, but held-out batches can still be large: keep it near batch_size.
    evaluation_batch_size: int = 1024
    max_epochs: int = 20
    # Stop after this many validations in a row without improving the best score.
    patience: int = 2
    # Minimum improvement of the validation score that counts as progress.
    minimum_improvement: float = 1e-4
    dense_learning_rate: float = 2e-4
    dense_weight_decay: float = 1e-5
    sparse_learning_rate: float = 0.01
    sparse_eps: float = 1e-8
    checkpoint_every_steps: int = 500
    log_every_steps: int = 20
    seed: int = 42
    # torch intra-op threads per process; 0 keeps torch's default.
    threads: int = 0
    # Batches built ahead in a background thread; 0 builds them inline.
    prefetch_batches: int = 2
    device: Device = Device.AUTO
    # Run directory; unset means the task's default (e.g. runs/<model.name>).
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
        for name in ("dense_weight_decay", "minimum_improvement"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
