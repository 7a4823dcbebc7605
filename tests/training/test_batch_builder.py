"""The vectorised batch builder matches a plain per-row reference, on every edge of slicing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from features.dataset import Dataset
from muse.core.ids import OOV_INDEX, PADDING_INDEX
from muse.ranking.batch import RankingBatch
from muse.ranking.training.batch_builder import BatchBuilder
from muse.ranking.training.reference_batch import reference_batch
from muse.ranking.training.sample_table import SampleTable


def _assert_same(fast: RankingBatch, reference: RankingBatch) -> None:
    for name in RankingBatch._fields:
        got, expected = getattr(fast, name), getattr(reference, name)
        assert got.dtype == expected.dtype, name
        assert torch.equal(got, expected), name


def _samples_with_edges(dataset: Dataset) -> SampleTable:
    """Train samples plus rows with history_end 0, beyond the row, negative, and OOV targets."""
    samples = SampleTable.load(dataset, "train")
    lengths = np.diff(np.asarray(dataset.sequence_offsets))
    longest = int(np.argmax(lengths))
    empty_user = int(np.flatnonzero(lengths == 0)[0])
    extra_users = np.array([longest, longest, longest, empty_user, longest])
    extra_end = np.array([0, lengths[longest] + 100, -3, 5, lengths[longest]])
    extra_items = np.array(
        [OOV_INDEX, samples.item_index[0], samples.item_index[1], OOV_INDEX, samples.item_index[2]]
    )
    extra = SampleTable(
        user_index=extra_users.astype(np.int64),
        item_index=extra_items.astype(np.int64),
        label=np.array([0, 1, 0, 1, 0], dtype=np.float32),
        history_end=extra_end.astype(np.int64),
        timestamp=np.zeros(5, dtype=np.int64),
        user_id=np.zeros(5, dtype=np.int64),
    )
    return SampleTable(*(np.concatenate([a, b]) for a, b in zip(samples, extra, strict=True)))


@pytest.mark.parametrize("max_history_length", [1, 5, 17, 64])
def test_builder_matches_per_row_reference(planted_dataset: Path, max_history_length: int) -> None:
    dataset = Dataset(planted_dataset)
    samples = _samples_with_edges(dataset)
    builder = BatchBuilder(dataset, max_history_length)
    rng = np.random.default_rng(max_history_length)
    rows = np.concatenate(
        [
            rng.choice(len(samples) - 5, size=60, replace=False),
            np.arange(len(samples) - 5, len(samples)),
        ]
    )
    _assert_same(
        builder.build(samples, rows), reference_batch(dataset, samples, rows, max_history_length)
    )


def test_histories_are_right_aligned_capped_and_cut_at_history_end(planted_dataset: Path) -> None:
    dataset = Dataset(planted_dataset)
    samples = _samples_with_edges(dataset)
    offsets = np.asarray(dataset.sequence_offsets)
    builder = BatchBuilder(dataset, 6)
    count = len(samples)
    batch = builder.build(samples, np.arange(count - 5, count))
    longest = int(samples.user_index[-1])
    row = np.asarray(dataset.sequence_items[offsets[longest] : offsets[longest + 1]])
    # history_end 0 → nothing visible; the target is OOV.
    assert batch.history_length[0] == 0 and torch.all(batch.history_items[0] == PADDING_INDEX)
    assert batch.target_item[0] == OOV_INDEX and batch.target_category[0] == OOV_INDEX
    # history_end past the row end → the row's last 6 events, most recent at the right.
    assert batch.history_items[1].tolist() == row[-6:].tolist()
    # Negative history_end counts as 0; a user without history has only padding.
    assert batch.history_length[2] == 0 and batch.history_length[3] == 0
    assert torch.all(batch.history_items[3] == PADDING_INDEX)
    # A short visible prefix is right-aligned after left padding.
    short = BatchBuilder(dataset, 64).build(samples, np.array([count - 1]))
    visible = row[: int(samples.history_end[-1])]
    assert short.history_items[0, 64 - visible.size :].tolist() == visible.tolist()
    assert torch.all(short.history_items[0, : 64 - visible.size] == PADDING_INDEX)


def test_target_features_come_from_the_item_table_and_profiles_from_users(
    planted_dataset: Path,
) -> None:
    dataset = Dataset(planted_dataset)
    samples = SampleTable.load(dataset, "train")
    batch = BatchBuilder(dataset, 8).build(samples, np.arange(10))
    items = dataset.items()
    for b in range(10):
        row = items.filter(items["item_index"] == int(batch.target_item[b]))
        assert int(batch.target_category[b]) == row["category_index"][0]
        assert int(batch.target_attributes[b, 0]) == row["city_index"][0]
        user = int(samples.user_index[b])
        assert int(batch.user_profile[b, 0]) == dataset.users()["profile_gender"][user]
    assert batch.user_profile.shape == (10, 1) and batch.target_attributes.shape == (10, 1)
