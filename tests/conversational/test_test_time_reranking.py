"""Test-time reranking: the α mix, missing beams kept last, cosines, and α tuned on validation."""

from __future__ import annotations

import numpy as np
import pytest

from muse.conversational.models.test_time_reranking import (
    cosine_relevance,
    rerank,
    tune_alpha,
)


def test_alpha_one_keeps_the_retrievers_order_and_zero_sorts_by_relevance() -> None:
    rows = np.array([[5, 7, 9, -1]])
    log_probs = np.array([[-0.1, -1.0, -2.0, -np.inf]])
    relevance = np.array([[0.1, 0.9, 0.5, 0.0]])
    assert rerank(rows, log_probs, relevance, 1.0).rows.tolist() == [[5, 7, 9, -1]]
    assert rerank(rows, log_probs, relevance, 0.0).rows.tolist() == [[7, 9, 5, -1]]
    mixed = rerank(rows, log_probs, relevance, 0.5)
    # 0.5·(−0.1) + 0.5·0.1 = 0, 0.5·(−1) + 0.5·0.9 = −0.05, 0.5·(−2) + 0.25 = −0.75.
    assert mixed.rows.tolist() == [[5, 7, 9, -1]]
    np.testing.assert_allclose(mixed.scores[0, :3], [0.0, -0.05, -0.75], atol=1e-6)
    assert mixed.scores[0, 3] == -np.inf


def test_reranking_a_permutation_of_the_beams_gives_the_same_order() -> None:
    rng = np.random.default_rng(0)
    rows = np.arange(20).reshape(2, 10)
    log_probs = rng.normal(size=(2, 10))
    relevance = rng.normal(size=(2, 10))
    permutation = rng.permutation(10)
    straight = rerank(rows, log_probs, relevance, 0.3).rows
    shuffled = rerank(
        rows[:, permutation], log_probs[:, permutation], relevance[:, permutation], 0.3
    )
    assert np.array_equal(straight, shuffled.rows)


def test_cosine_relevance_reads_each_candidates_embedding() -> None:
    items = np.eye(4, dtype=np.float32)
    queries = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.6, 0.8, 0.0]], dtype=np.float32)
    rows = np.array([[0, 1, -1], [2, 1, 3]])
    np.testing.assert_allclose(
        cosine_relevance(rows, queries, items), [[1.0, 0.0, 0.0], [0.8, 0.6, 0.0]], atol=1e-6
    )


def test_tune_alpha_finds_the_mix_that_ranks_targets_first() -> None:
    # The retriever prefers row 0, the encoder row 1; targets are row 1 for every query.
    rows = np.tile(np.array([[0, 1]]), (3, 1))
    log_probs = np.tile(np.array([[-0.2, -0.4]]), (3, 1))
    relevance = np.tile(np.array([[0.0, 1.0]]), (3, 1))
    choice = tune_alpha(rows, log_probs, relevance, np.array([1, 1, 1]), (0.0, 0.5, 0.9, 1.0))
    assert choice.alpha == 0.5  # ties go to the larger α: 0.0 and 0.5 both rank row 1 first
    assert choice.mrr == pytest.approx((1.0, 1.0, 0.5, 0.5))


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="same"):
        rerank(np.zeros((2, 3), np.int64), np.zeros((2, 2)), np.zeros((2, 3)), 0.5)
