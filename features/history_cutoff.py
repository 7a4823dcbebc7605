"""Where each sample's visible history ends: events of its user strictly before its timestamp.

The fast path answers every sample with one ``np.searchsorted`` over a key that orders events by
(user row, time): the packed ``UserTimeKey`` when user and time ranges fit in 62 bits, else the
time's rank among distinct event times. :func:`history_ends_reference` is the plain per-sample
version the tests compare it with.
"""

from __future__ import annotations

import numpy as np

from features.user_time_key import user_time_key
from features.vocabulary import sorted_positions, sorted_unique

INT64_MAX = np.iinfo(np.int64).max


def history_ends(
    offsets: np.ndarray,
    sequence_timestamps: np.ndarray,
    user_index: np.ndarray,
    sample_timestamps: np.ndarray,
) -> np.ndarray:
    """(S,) int64 count of events in row ``user_index[s]`` with timestamp < ``sample_timestamps[s]``.

    ``offsets`` is the (U + 1,) CSR row pointer; each row's ``sequence_timestamps`` must ascend.
    Ties are excluded: an event at exactly the sample's time is not visible to it.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    user_index = np.asarray(user_index, dtype=np.int64)
    sample_timestamps = np.asarray(sample_timestamps, dtype=np.int64)
    if sequence_timestamps.size == 0 or user_index.size == 0:
        return np.zeros(user_index.shape, dtype=np.int64)
    num_users = offsets.size - 1
    event_users = np.repeat(np.arange(num_users, dtype=np.int64), np.diff(offsets))
    packing = user_time_key(
        num_users, int(sequence_timestamps.min()), int(sequence_timestamps.max())
    )
    if packing is not None:
        keys = packing.pack(event_users, sequence_timestamps)
        queries = packing.pack(user_index, sample_timestamps)
    else:
        # Rank of a time = number of distinct event times strictly before it.
        distinct = sorted_unique(sequence_timestamps)
        stride = distinct.size + 1
        if num_users * stride >= INT64_MAX:
            raise ValueError("too many users x distinct timestamps for an int64 search key")
        keys = event_users * stride + sorted_positions(distinct, sequence_timestamps)
        queries = user_index * stride + sorted_positions(distinct, sample_timestamps)
    del event_users
    return sorted_positions(keys, queries) - offsets[user_index]


def history_ends_reference(
    offsets: np.ndarray,
    sequence_timestamps: np.ndarray,
    user_index: np.ndarray,
    sample_timestamps: np.ndarray,
) -> np.ndarray:
    """Plain per-sample version of :func:`history_ends` (for tests)."""
    result = np.zeros(len(user_index), dtype=np.int64)
    for sample, (user, timestamp) in enumerate(zip(user_index, sample_timestamps, strict=True)):
        row = sequence_timestamps[offsets[user] : offsets[user + 1]]
        result[sample] = int(np.sum(row < timestamp))
    return result
