"""Seeded epoch order, resumable batch positions, and equal rank shards covering every row."""

from __future__ import annotations

import numpy as np
import pytest

from muse.training.sampler import EpochSampler


def test_order_is_a_seeded_permutation_that_changes_per_epoch() -> None:
    sampler = EpochSampler(100, 16, seed=3)
    first, again, second = (
        sampler.order(0),
        EpochSampler(100, 16, seed=3).order(0),
        sampler.order(1),
    )
    assert sorted(first.tolist()) == list(range(100))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, EpochSampler(100, 16, seed=4).order(0))


def test_batches_from_a_position_are_the_tail_of_the_full_epoch() -> None:
    sampler = EpochSampler(103, 10, seed=1)
    full = sampler.batches(2)
    assert len(full) == sampler.batches_per_epoch == 11
    assert [len(b) for b in full] == [10] * 10 + [3]
    for start in (0, 4, 10, 11):
        tail = sampler.batches(2, start)
        assert len(tail) == len(full) - start
        assert all(np.array_equal(a, b) for a, b in zip(tail, full[start:], strict=True))


@pytest.mark.parametrize("num_samples", [7, 8, 100])
def test_rank_shards_have_equal_steps_and_cover_every_row(num_samples: int) -> None:
    shards = [EpochSampler(num_samples, 4, seed=0, rank=r, world_size=3) for r in range(3)]
    assert len({s.batches_per_epoch for s in shards}) == 1
    rows = np.concatenate([s.shard(5) for s in shards])
    assert set(rows.tolist()) == set(range(num_samples))
    assert rows.size - num_samples < 3  # padding only rounds up to a multiple of the world size


def test_unshuffled_order_is_the_identity() -> None:
    assert EpochSampler(5, 2, seed=9, shuffle=False).shard(3).tolist() == [0, 1, 2, 3, 4]
