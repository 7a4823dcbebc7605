"""(user row, timestamp) packed into one int64 that sorts like the pair, for one-pass sorts and searches."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class UserTimeKey(NamedTuple):
    """``key = user << bits | (timestamp - origin)``; valid for times in [origin, origin + 2**bits - 1]."""

    origin: int
    bits: int

    def pack(self, user_index: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
        """(N,) int64 keys; times outside the range are clipped to it (they sort before / after all)."""
        offset = np.clip(
            np.asarray(timestamps, dtype=np.int64) - self.origin, 0, (1 << self.bits) - 1
        )
        return (np.asarray(user_index, dtype=np.int64) << self.bits) | offset


def user_time_key(num_users: int, min_time: int, max_time: int) -> UserTimeKey | None:
    """A key for times in [min_time, max_time] plus one slot past the end, or None if 63 bits are too few."""
    bits = max(int(max_time - min_time + 1).bit_length(), 1)
    user_bits = max(int(num_users).bit_length(), 1)
    if bits + user_bits > 62:
        return None
    return UserTimeKey(origin=int(min_time), bits=bits)
