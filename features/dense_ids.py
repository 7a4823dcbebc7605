"""Sorted distinct ids and each id's position among them, from one sort (a vocabulary plus lookup)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl


class DenseIds(NamedTuple):
    """``distinct`` (V,) sorted unique values; ``position`` (N,) int64 with distinct[position] == values."""

    distinct: np.ndarray
    position: np.ndarray


def dense_ids(values: np.ndarray) -> DenseIds:
    """Distinct values and positions in one multi-threaded arg-sort (vs a sort plus a search)."""
    values = np.asarray(values).ravel()
    if values.size == 0:
        return DenseIds(values.copy(), np.zeros(0, dtype=np.int64))
    order = pl.Series(values).arg_sort().to_numpy()
    ordered = values[order]
    starts = np.empty(values.size, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    position = np.empty(values.size, dtype=np.int64)
    # Run-length repeat of 0..V-1 is ~20x cheaper than a cumulative sum over the bool mask.
    position[order] = np.repeat(np.arange(first.size), np.diff(first, append=values.size))
    return DenseIds(ordered[first], position)
