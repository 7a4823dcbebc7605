"""Per-sample predictions of an evaluation as a parquet file, written atomically.

Columns, one row per scored sample in split order: ``user_id`` (int64 raw user id), ``item_id``
(int64 raw target item id; null for a target outside the item vocabulary), ``label`` (int8),
``probability`` (float64 predicted click probability).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from features.dataset import Dataset
from muse.core.atomic_write import atomic_file
from muse.core.ids import FIRST_ID_INDEX
from muse.ranking.training.sample_table import SampleTable


def write_predictions(
    path: str | Path, dataset: Dataset, samples: SampleTable, probabilities: np.ndarray
) -> Path:
    """Write ``probabilities`` (N,) of ``samples`` (N rows of ``dataset``) to ``path``."""
    path = Path(path)
    if probabilities.shape != (len(samples),):
        raise ValueError(f"{len(samples)} samples but probabilities of shape {probabilities.shape}")
    raw_items = pl.Series(dataset.vocabulary("item").raw_of(samples.item_index), dtype=pl.Int64)
    # A raw id may be any int64 (even -1), so an unknown target is null, not a sentinel.
    unknown = np.flatnonzero(samples.item_index < FIRST_ID_INDEX)
    frame = pl.DataFrame(
        {
            "user_id": samples.user_id.astype(np.int64),
            "item_id": raw_items.scatter(unknown, None),
            "label": samples.label.astype(np.int8),
            "probability": probabilities.astype(np.float64),
        }
    )
    with atomic_file(path) as staging:
        frame.write_parquet(staging)
    return path
