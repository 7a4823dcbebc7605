"""Where a training run keeps its files."""

from __future__ import annotations

from pathlib import Path

from muse.training.checkpoint import BEST, LAST

CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.json"


class RunDirectory:
    """``config.toml`` (resolved config), ``metrics.json``, ``checkpoints/{last,best}.pt``,
    ``tensorboard/`` (event files)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / LAST

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / BEST

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDirectory:
        """The run a checkpoint belongs to (``<run>/checkpoints/<name>.pt``), else its folder."""
        checkpoint = Path(checkpoint).resolve()
        if checkpoint.parent.name == "checkpoints":
            return cls(checkpoint.parent.parent)
        return cls(checkpoint.parent)
