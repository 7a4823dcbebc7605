"""Exact retrieval metrics over a whole query set (numpy; no torch): Recall@k, MRR, nDCG@k.

Each query has a ranked list of retrieved ids (best first) and a set of relevant ids; relevance is
binary. An id retrieved twice counts once, at its first (best) position. Queries with no relevant
id are left out of every mean, since no ranking can be right or wrong for them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NO_ITEM = -1  # pads ranked lists shorter than the others; never relevant


def relevance_hits(ranked: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """(Q, M) bool: True where ``ranked[q, j]`` is relevant to query q and first seen at j.

    ranked: (Q, M) int64 ids, best first, NO_ITEM where a list is shorter.
    relevant: Q arrays of relevant ids.
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim != 2 or ranked.shape[0] != len(relevant):
        raise ValueError(
            f"ranked must be (Q, M) with Q = len(relevant) = {len(relevant)}, got {ranked.shape}"
        )
    queries, width = ranked.shape
    sizes = np.array([np.asarray(ids).size for ids in relevant], dtype=np.int64)
    relevant_ids = (
        np.concatenate([np.asarray(ids, dtype=np.int64).ravel() for ids in relevant])
        if queries
        else np.zeros(0, dtype=np.int64)
    )
    codes, inverse = np.unique(np.concatenate([ranked.ravel(), relevant_ids]), return_inverse=True)
    ranked_codes, relevant_codes = inverse[: ranked.size], inverse[ranked.size :]
    # One int64 key per (query, id): query · V + code.
    ranked_keys = np.repeat(np.arange(queries), width) * codes.size + ranked_codes
    relevant_keys = np.repeat(np.arange(queries), sizes) * codes.size + relevant_codes
    hits = np.isin(ranked_keys, relevant_keys) & (ranked.ravel() != NO_ITEM)
    # Keep only the first position of each (query, id): a repeat is no new hit.
    order = np.lexsort((np.tile(np.arange(width), queries), ranked_keys))
    first = np.ones(ranked_keys.size, dtype=bool)
    first[order[1:]] = ranked_keys[order[1:]] != ranked_keys[order[:-1]]
    return (hits & first).reshape(queries, width)


def _relevant_counts(relevant: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([np.unique(np.asarray(ids)).size for ids in relevant], dtype=np.float64)


def recall_at_k(ranked: np.ndarray, relevant: Sequence[np.ndarray], k: int) -> float:
    """Mean over queries of |relevant ∩ top-k| / |relevant|. NaN when no query has a relevant id."""
    _check_k(k)
    counts = _relevant_counts(relevant)
    found = relevance_hits(ranked, relevant)[:, :k].sum(axis=1)
    valid = counts > 0
    return float(np.mean(found[valid] / counts[valid])) if valid.any() else float("nan")


def mean_reciprocal_rank(
    ranked: np.ndarray, relevant: Sequence[np.ndarray], k: int | None = None
) -> float:
    """Mean over queries of 1 / (rank of the first relevant id), 0 when none is in the top k."""
    hits = relevance_hits(ranked, relevant)
    if k is not None:
        _check_k(k)
        hits = hits[:, :k]
    valid = _relevant_counts(relevant) > 0
    if not valid.any():
        return float("nan")
    any_hit = hits.any(axis=1)
    reciprocal = np.where(any_hit, 1.0 / (hits.argmax(axis=1) + 1.0), 0.0)
    return float(np.mean(reciprocal[valid]))


def ndcg_at_k(ranked: np.ndarray, relevant: Sequence[np.ndarray], k: int) -> float:
    """Mean over queries of DCG@k / ideal DCG@k with binary gains and log2(rank + 1) discounts."""
    _check_k(k)
    hits = relevance_hits(ranked, relevant)[:, :k]
    counts = _relevant_counts(relevant)
    valid = counts > 0
    if not valid.any():
        return float("nan")
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))  # rank 1 … k
    dcg = (hits * discounts[: hits.shape[1]]).sum(axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(counts, k).astype(np.int64)]
    return float(np.mean(dcg[valid] / ideal[valid]))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
