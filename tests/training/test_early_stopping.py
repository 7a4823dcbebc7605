"""Early stopping counts validations without improvement and survives a state round trip."""

from __future__ import annotations

import math

from muse.training.early_stopping import EarlyStopping


def test_stops_after_patience_validations_without_improvement() -> None:
    stopping = EarlyStopping(patience=2, minimum_improvement=0.01)
    assert stopping.update(0.60, step=10, epoch=1)
    assert not stopping.update(0.605, step=20, epoch=2)  # below the minimum improvement
    assert not stopping.should_stop
    assert stopping.update(0.70, step=30, epoch=3)
    assert not stopping.update(math.nan, step=40, epoch=4)
    assert not stopping.update(0.69, step=50, epoch=5)
    assert stopping.should_stop
    assert (stopping.best_metric, stopping.best_step, stopping.best_epoch) == (0.70, 30, 3)
    restored = EarlyStopping(patience=2)
    restored.load_state_dict(stopping.state_dict())
    assert restored == stopping
