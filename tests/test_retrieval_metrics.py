"""Recall@k, MRR and nDCG@k against plain per-query definitions on random and edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from muse.core.retrieval_metrics import (
    NO_ITEM,
    mean_reciprocal_rank,
    ndcg_at_k,
    recall_at_k,
    relevance_hits,
)


def _plain(ranked: np.ndarray, relevant: list[np.ndarray], k: int) -> tuple[float, float, float]:
    """The textbook definitions, one query at a time."""
    recalls, reciprocal_ranks, ndcgs = [], [], []
    for row, wanted in zip(ranked, relevant, strict=True):
        wanted_set = set(wanted.tolist())
        if not wanted_set:
            continue
        seen: list[int] = []
        for item in row.tolist():
            if item != NO_ITEM and item not in seen:
                seen.append(item)
            elif item == NO_ITEM or item in seen:
                seen.append(-(10**9))  # a repeat or a gap keeps its slot but earns nothing
        gains = [1.0 if item in wanted_set else 0.0 for item in seen]
        recalls.append(sum(gains[:k]) / len(wanted_set))
        first = next((rank for rank, gain in enumerate(gains, 1) if gain), None)
        reciprocal_ranks.append(0.0 if first is None else 1.0 / first)
        dcg = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains[:k], 1))
        ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(wanted_set), k) + 1))
        ndcgs.append(dcg / ideal)
    return float(np.mean(recalls)), float(np.mean(reciprocal_ranks)), float(np.mean(ndcgs))


@pytest.mark.parametrize("k", [1, 3, 10])
def test_metrics_match_plain_definitions_on_random_queries(k: int) -> None:
    rng = np.random.default_rng(k)
    ranked = rng.integers(-3, 30, size=(200, 10))  # negative ids are real (hashed raw ids)
    ranked[rng.random(ranked.shape) < 0.1] = NO_ITEM
    relevant = [rng.choice(40, size=rng.integers(0, 6), replace=False) - 3 for _ in range(200)]
    expected = _plain(ranked, relevant, k)
    assert recall_at_k(ranked, relevant, k) == pytest.approx(expected[0], abs=1e-12)
    assert mean_reciprocal_rank(ranked, relevant) == pytest.approx(expected[1], abs=1e-12)
    assert ndcg_at_k(ranked, relevant, k) == pytest.approx(expected[2], abs=1e-12)


def test_perfect_worst_and_repeated_rankings() -> None:
    relevant = [np.array([5, 7]), np.array([9])]
    perfect = np.array([[5, 7, 1], [9, 2, 3]])
    assert recall_at_k(perfect, relevant, 2) == 1.0
    assert ndcg_at_k(perfect, relevant, 3) == 1.0
    assert mean_reciprocal_rank(perfect, relevant) == 1.0
    miss = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(miss, relevant, 3) == 0.0 and mean_reciprocal_rank(miss, relevant) == 0.0
    # A relevant id repeated counts once, at its first position.
    repeated = np.array([[5, 5, 5], [1, 9, 9]])
    assert recall_at_k(repeated, relevant, 3) == pytest.approx((0.5 + 1.0) / 2)
    assert relevance_hits(repeated, relevant).tolist() == [
        [True, False, False],
        [False, True, False],
    ]
    assert mean_reciprocal_rank(repeated, relevant) == pytest.approx((1.0 + 0.5) / 2)
    assert mean_reciprocal_rank(np.array([[1, 5], [1, 9]]), relevant, k=1) == 0.0


def test_queries_without_relevant_ids_are_left_out_and_bad_input_is_named() -> None:
    ranked = np.array([[1, 2], [3, 4]])
    assert recall_at_k(ranked, [np.array([1]), np.array([], dtype=np.int64)], 1) == 1.0
    assert math.isnan(ndcg_at_k(ranked, [np.array([], dtype=np.int64)] * 2, 2))
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(ranked, [np.array([1])] * 2, 0)
    with pytest.raises(ValueError, match="Q = len\\(relevant\\)"):
        recall_at_k(ranked, [np.array([1])], 1)
