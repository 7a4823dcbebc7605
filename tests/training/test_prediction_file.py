"""The predictions parquet: raw ids, null for a target outside the item vocabulary, atomic write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.dataset import Dataset
from muse.core.ids import OOV_INDEX
from muse.ranking.training.prediction_file import write_predictions
from muse.ranking.training.sample_table import SampleTable


def test_unknown_targets_get_a_null_item_id_and_nothing_is_left_behind(
    planted_dataset: Path, tmp_path: Path
) -> None:
    dataset = Dataset(planted_dataset)
    samples = SampleTable.load(dataset, "test").subset(np.arange(3))
    samples.item_index[0] = OOV_INDEX
    path = write_predictions(tmp_path / "p.parquet", dataset, samples, np.array([0.1, 0.5, 0.9]))
    frame = pl.read_parquet(path)
    assert frame["item_id"][0] is None and frame["item_id"].null_count() == 1
    raw = dataset.vocabulary("item").raw_of(samples.item_index[1:])
    assert frame["item_id"].to_list()[1:] == raw.tolist()
    assert frame["probability"].to_list() == [0.1, 0.5, 0.9]
    with pytest.raises(ValueError, match="3 samples but probabilities of shape"):
        write_predictions(tmp_path / "q.parquet", dataset, samples, np.zeros(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.parquet"]
