"""The validation split comes from train only, by user or by time, and is seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from features.dataset import Dataset
from muse.ranking.training.sample_table import SampleTable
from muse.ranking.training.train_config import ValidationSplit
from muse.ranking.training.validation_split import split_validation


def test_user_split_keeps_each_user_on_one_side(planted_dataset: Path) -> None:
    samples = SampleTable.load(Dataset(planted_dataset), "train")
    split = split_validation(samples, ValidationSplit.USER, 0.25, seed=5)
    assert np.array_equal(np.sort(np.concatenate(split)), np.arange(len(samples)))
    fit_users, validation_users = (
        set(samples.user_id[split.fit]),
        set(samples.user_id[split.validation]),
    )
    assert not fit_users & validation_users
    assert len(validation_users) == round(0.25 * len(fit_users | validation_users))
    again = split_validation(samples, ValidationSplit.USER, 0.25, seed=5)
    assert np.array_equal(again.validation, split.validation)
    other = split_validation(samples, ValidationSplit.USER, 0.25, seed=6)
    assert not np.array_equal(other.validation, split.validation)


def test_time_split_takes_the_latest_samples(planted_dataset: Path) -> None:
    samples = SampleTable.load(Dataset(planted_dataset), "train")
    split = split_validation(samples, ValidationSplit.TIME, 0.1, seed=0)
    assert split.validation.size == round(0.1 * len(samples))
    assert samples.timestamp[split.validation].min() >= samples.timestamp[split.fit].max()
