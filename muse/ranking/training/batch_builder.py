"""Sample rows → :class:`muse.ranking.batch.RankingBatch`, slicing histories from the CSR store at batch time.

The fast path: per-row start/stop from the offsets, one (B, L) position matrix, one fancy-index
gather per memory-mapped sequence array. Nothing is copied per sample; a plain per-row version
lives in :mod:`muse.ranking.training.reference_batch` and a test compares the two.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from features.dataset import Dataset
from muse.core.errors import DataError
from muse.core.ids import OOV_INDEX, PADDING_INDEX
from muse.ranking.batch import RankingBatch
from muse.ranking.training.sample_table import SampleTable


class ItemLookup(NamedTuple):
    """Per-item-index features: category (V,) and attributes (V, A), int64; padding row 0."""

    category: np.ndarray
    attributes: np.ndarray


def item_lookup(dataset: Dataset) -> ItemLookup:
    """Dense item_index → category / attribute arrays from ``items.parquet``.

    Item indices without a row (padding, OOV) map to padding / OOV feature indices.
    """
    items = dataset.items()
    size = dataset.vocabulary_size("item")
    index = items["item_index"].to_numpy().astype(np.int64)
    if index.size and (index.min() < 0 or index.max() >= size):
        raise DataError(
            dataset.root / "items.parquet", f"item_index outside [0, {size})", column="item_index"
        )
    columns = ["category_index"] + [f"{name}_index" for name in dataset.item_attributes]
    table = np.full((size, len(columns)), OOV_INDEX, dtype=np.int64)
    table[PADDING_INDEX] = PADDING_INDEX
    for position, column in enumerate(columns):
        if column not in items.columns:
            raise DataError(dataset.root / "items.parquet", "column missing", column=column)
        table[index, position] = items[column].to_numpy()
    return ItemLookup(
        category=np.ascontiguousarray(table[:, 0]), attributes=np.ascontiguousarray(table[:, 1:])
    )


def profile_matrix(dataset: Dataset) -> np.ndarray:
    """(U, P) int64 profile feature indices in the manifest's ``profile_features`` order."""
    users = dataset.users()
    columns = []
    for name in dataset.profile_features:
        column = name if name in users.columns else f"profile_{name}"
        if column not in users.columns:
            raise DataError(dataset.root / "users.parquet", "profile column missing", column=column)
        columns.append(users[column].to_numpy().astype(np.int64))
    if not columns:
        return np.zeros((users.height, 0), dtype=np.int64)
    return np.stack(columns, axis=1)


class BatchBuilder:
    """Builds right-aligned RankingBatches of at most ``max_history_length`` recent behaviours."""

    def __init__(self, dataset: Dataset, max_history_length: int) -> None:
        if max_history_length < 1:
            raise ValueError(f"max_history_length must be ≥ 1, got {max_history_length}")
        self.max_history_length = max_history_length
        self.offsets = np.asarray(dataset.sequence_offsets)
        self.sequence_items = dataset.sequence_items
        self.sequence_categories = dataset.sequence_categories
        self.items = item_lookup(dataset)
        self.profiles = profile_matrix(dataset)

    def history_positions(
        self, user_index: np.ndarray, history_end: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, L) positions into the flat sequence arrays, (B, L) padding mask, (B,) real lengths.

        Row b holds its user's last ``length[b]`` visible behaviours at the right end; padding
        slots on the left point at position 0 and are True in the mask.
        """
        start = self.offsets[user_index]
        stop = np.minimum(self.offsets[user_index + 1], start + np.maximum(history_end, 0))
        length = np.minimum(stop - start, self.max_history_length)
        slot = np.arange(self.max_history_length, dtype=np.int64)
        # Slot s of a row holds event stop - L + s; slots left of the real history are padding.
        positions = stop[:, None] - self.max_history_length + slot[None, :]
        padding = slot[None, :] < (self.max_history_length - length)[:, None]
        positions[padding] = 0
        return positions, padding, length

    def gather_history(
        self, positions: np.ndarray, padding: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, L) int64 item and category indices at ``positions``, 0 where ``padding``."""
        if self.sequence_items.size == 0:  # a store without events: every history is empty
            empty = np.zeros(positions.shape, dtype=np.int64)
            return empty, empty.copy()
        items = np.asarray(self.sequence_items[positions], dtype=np.int64)
        categories = np.asarray(self.sequence_categories[positions], dtype=np.int64)
        items[padding] = PADDING_INDEX
        categories[padding] = PADDING_INDEX
        return items, categories

    def build(self, samples: SampleTable, rows: np.ndarray) -> RankingBatch:
        """The RankingBatch of ``samples`` at ``rows`` (B,), histories (B, L = max_history_length)."""
        user_index = samples.user_index[rows]
        target = samples.item_index[rows]
        positions, padding, length = self.history_positions(user_index, samples.history_end[rows])
        history_items, history_categories = self.gather_history(positions, padding)
        return RankingBatch(
            user_profile=torch.from_numpy(self.profiles[user_index]),
            target_item=torch.from_numpy(target),
            target_category=torch.from_numpy(self.items.category[target]),
            target_attributes=torch.from_numpy(self.items.attributes[target]),
            history_items=torch.from_numpy(history_items),
            history_categories=torch.from_numpy(history_categories),
            history_length=torch.from_numpy(length),
            label=torch.from_numpy(samples.label[rows]),
        )
