"""Hashed int64 raw ids for the synthetic dataset (distinct, seed-dependent, often negative)."""

from __future__ import annotations

import numpy as np

_MASK_64 = (1 << 64) - 1

# Id kinds; each gets its own salt so that e.g. item 3 and category 3 have unrelated raw ids.
ITEM, CATEGORY, CITY, PROVINCE, USER = 1, 2, 3, 4, 5
PROFILE_BASE = 10  # profile column f (0-based) uses kind PROFILE_BASE + f


def hashed_ids(seed: int, kind: int, indices: np.ndarray) -> np.ndarray:
    """Raw int64 ids of dense ``indices`` (splitmix64 finaliser: a bijection, so never colliding)."""
    salt = (seed * 0x9E3779B97F4A7C15 + kind * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & _MASK_64
    x = np.asarray(indices, dtype=np.int64).astype(np.uint64) + np.uint64(salt)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x.view(np.int64)
