"""Capping lifelong sequences: keep each row's most recent ``max_length`` events."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class CappedRows(NamedTuple):
    """``keep`` (E,) bool mask over the flat events; ``lengths`` (U,) int64 row lengths after capping."""

    keep: np.ndarray
    lengths: np.ndarray


def cap_rows(lengths: np.ndarray, max_length: int) -> CappedRows:
    """Mask that keeps the last ``max_length`` events of each row of a flat, oldest-first array."""
    lengths = np.asarray(lengths, dtype=np.int64)
    capped = np.minimum(lengths, max_length)
    total = int(lengths.sum())
    if total == int(capped.sum()):
        return CappedRows(keep=np.ones(total, dtype=bool), lengths=capped)
    ends = np.cumsum(lengths)
    # An event is kept when it lies within the last `capped` positions before its row's end.
    distance_from_end = np.repeat(ends, lengths) - np.arange(total, dtype=np.int64)
    keep = distance_from_end <= np.repeat(capped, lengths)
    return CappedRows(keep=keep, lengths=capped)
