"""Early stopping on a validation score that should increase (e.g. ranking's AUC or GAUC)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EarlyStopping:
    """Tracks the best metric and how many validations in a row failed to beat it.

    A NaN metric (e.g. no user with both classes) never counts as an improvement.
    """

    patience: int
    minimum_improvement: float = 0.0
    best_metric: float = -math.inf
    best_step: int = -1
    best_epoch: int = -1
    validations_without_improvement: int = 0

    def update(self, metric: float, step: int, epoch: int) -> bool:
        """Record a validation result; True when it is the new best."""
        if not math.isnan(metric) and metric > self.best_metric + self.minimum_improvement:
            self.best_metric = metric
            self.best_step = step
            self.best_epoch = epoch
            self.validations_without_improvement = 0
            return True
        self.validations_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.validations_without_improvement >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
