"""Seeded per-epoch shuffles of sample rows, split into one process's batches.

Epoch e's order is a pure function of (seed, e), so resuming at (epoch, batch) replays exactly the
batches an uninterrupted run would have seen. Under torchrun every rank takes an interleaved
shard of the same permutation, padded by wrapping so every rank runs the same number of steps
(collectives in DistributedModelParallel need that).
"""

from __future__ import annotations

import numpy as np


class EpochSampler:
    """Rows of ``num_samples`` in batches of at most ``batch_size`` for one of ``world_size`` ranks."""

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        if num_samples < 1:
            raise ValueError("the sampler needs at least one sample")
        if batch_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad batch_size {batch_size} or rank {rank} of {world_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle

    @property
    def shard_size(self) -> int:
        """Rows each rank sees per epoch (wrapped padding included)."""
        return -(-self.num_samples // self.world_size)

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.shard_size // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The global row order of ``epoch`` (a permutation when shuffling), before sharding."""
        if not self.shuffle:
            return np.arange(self.num_samples, dtype=np.int64)
        return (
            np.random.default_rng([self.seed, epoch]).permutation(self.num_samples).astype(np.int64)
        )

    def shard(self, epoch: int) -> np.ndarray:
        """This rank's rows of ``epoch`` in order: every world_size-th row of the wrapped order."""
        order = self.order(epoch)
        padded_size = self.shard_size * self.world_size
        wrapped = np.resize(order, padded_size)  # np.resize repeats from the start to fill
        return wrapped[self.rank :: self.world_size]

    def batches(self, epoch: int, start_batch: int = 0) -> list[np.ndarray]:
        """This rank's batches of ``epoch`` from batch number ``start_batch`` on."""
        rows = self.shard(epoch)
        return [
            rows[begin : begin + self.batch_size]
            for begin in range(start_batch * self.batch_size, rows.size, self.batch_size)
        ]
