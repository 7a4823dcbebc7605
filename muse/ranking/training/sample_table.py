"""One split's samples as flat numpy columns, plus the raw user id that GAUC groups by."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from features.dataset import Dataset
from muse.core.errors import DataError


class SampleTable(NamedTuple):
    """Row-aligned sample columns (N,) of one split.

    user_index: int64 row of the sequence store; item_index: int64 target item; label: float32;
    history_end: int64 visible prefix length of the user's sequence; timestamp: int64;
    user_id: int64 raw user id (GAUC groups by it; one raw user may own several rows).
    """

    user_index: np.ndarray
    item_index: np.ndarray
    label: np.ndarray
    history_end: np.ndarray
    timestamp: np.ndarray
    user_id: np.ndarray

    @classmethod
    def load(cls, dataset: Dataset, split: str) -> SampleTable:
        """Read ``samples/<split>.parquet`` and attach each sample's raw user id."""
        frame = dataset.samples(split)
        user_index = frame["user_index"].to_numpy().astype(np.int64)
        if user_index.size and (user_index.min() < 0 or user_index.max() >= dataset.num_users):
            raise DataError(
                dataset.root / "samples" / f"{split}.parquet",
                f"user_index outside the {dataset.num_users} sequence rows",
                column="user_index",
            )
        user_ids = dataset.users()["user_id"].to_numpy().astype(np.int64)
        return cls(
            user_index=user_index,
            item_index=frame["item_index"].to_numpy().astype(np.int64),
            label=frame["label"].to_numpy().astype(np.float32),
            history_end=frame["history_end"].to_numpy().astype(np.int64),
            timestamp=frame["timestamp"].to_numpy().astype(np.int64),
            user_id=user_ids[user_index],
        )

    def __len__(self) -> int:  # type: ignore[override]
        return int(self.user_index.size)

    def subset(self, rows: np.ndarray) -> SampleTable:
        """The samples at ``rows`` (in that order)."""
        return SampleTable(*(column[rows] for column in self))
