"""Carve the early-stopping validation set out of the train samples (never out of test)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from muse.ranking.training.sample_table import SampleTable
from muse.ranking.training.train_config import ValidationSplit


class SplitRows(NamedTuple):
    """Row numbers into the train SampleTable: fitting rows and validation rows (both sorted)."""

    fit: np.ndarray
    validation: np.ndarray


def split_validation(
    samples: SampleTable, method: ValidationSplit, fraction: float, seed: int
) -> SplitRows:
    """Rows for fitting and for validation.

    USER: a seeded ``fraction`` of distinct raw user ids (at least one, and never all when there
    are two or more) goes to validation with all its samples. TIME: the latest ``fraction`` of
    samples by timestamp (ties broken by row order).
    """
    size = len(samples)
    if size < 2:
        raise ValueError(f"need at least 2 train samples to carve a validation split, got {size}")
    if method is ValidationSplit.USER:
        users = np.unique(samples.user_id)
        count = min(max(1, round(fraction * users.size)), max(users.size - 1, 1))
        chosen = np.random.default_rng([seed, 7]).choice(users, size=count, replace=False)
        in_validation = np.isin(samples.user_id, chosen)
        if in_validation.all():  # a single user: fall back to its latest samples
            return split_validation(samples, ValidationSplit.TIME, fraction, seed)
    else:
        count = min(max(1, round(fraction * size)), size - 1)
        order = np.argsort(samples.timestamp, kind="stable")
        in_validation = np.zeros(size, dtype=bool)
        in_validation[order[size - count :]] = True
    rows = np.arange(size, dtype=np.int64)
    return SplitRows(fit=rows[~in_validation], validation=rows[in_validation])
