"""NoteLLM's test-pair retrieval protocol: queries, pool, Recall@k by link kind."""

from __future__ import annotations

import numpy as np
import pytest

from muse.item2item.training.pair_retrieval import (
    ALL_LINKS,
    pair_queries,
    pair_retrieval_recall,
)


def test_queries_and_pool_follow_the_protocol() -> None:
    # 10 → 11 and 10 → 12 (one query, two partners), 20 → 10 (partner is a query: dropped).
    queries, pool = pair_queries(np.array([10, 10, 20]), np.array([11, 12, 10]))
    assert pool.tolist() == [11, 12]
    assert queries.query_ids.tolist() == [10]
    assert [r.tolist() for r in queries.relevant] == [[11, 12]]


def test_recall_by_link_kind_on_planted_embeddings() -> None:
    # Queries 1, 2, 3; their partners 101, 102, 103; 10 distractors. Query 1 points straight at
    # its partner, query 2 at a distractor, query 3 halfway.
    ids = np.array([1, 2, 3, 101, 102, 103, *range(200, 210)])
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(ids.size, 8))
    vectors[0] = vectors[3]  # 1 ≈ 101
    vectors[1] = vectors[6]  # 2 ≈ distractor 200
    vectors[2] = vectors[5] + vectors[7]  # 3 between 103 and distractor 201
    kinds = np.array(["image", "text", "both"], dtype=object)
    result = pair_retrieval_recall(
        ids, vectors, np.array([1, 2, 3]), np.array([101, 102, 103]), kinds, ks=(1, 13)
    )
    assert result["image"] == {1: 1.0, 13: 1.0}
    assert result["text"][1] == 0.0 and result["text"][13] == 1.0  # the pool has 13 items
    assert result[ALL_LINKS][13] == 1.0
    assert result[ALL_LINKS][1] == pytest.approx((1.0 + 0.0 + result["both"][1]) / 3)


def test_recall_matches_a_plain_ranking_on_random_pairs() -> None:
    rng = np.random.default_rng(1)
    ids = np.arange(300, dtype=np.int64) * 3 - 100
    vectors = rng.normal(size=(300, 16))
    pairs_a = rng.choice(ids[:100], size=150)
    pairs_b = rng.choice(ids[100:], size=150)
    got = pair_retrieval_recall(ids, vectors, pairs_a, pairs_b, ks=(1, 5, 50))[ALL_LINKS]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    row = {item: index for index, item in enumerate(ids)}
    pool = np.setdiff1d(np.union1d(pairs_a, pairs_b), np.unique(pairs_a))
    for k in (1, 5, 50):
        recalls = []
        for query in np.unique(pairs_a):
            scores = unit[[row[item] for item in pool]] @ unit[row[query]]
            top = set(pool[np.argsort(-scores, kind="stable")[:k]].tolist())
            wanted = set(pairs_b[pairs_a == query].tolist())
            recalls.append(len(top & wanted) / len(wanted))
        assert got[k] == pytest.approx(float(np.mean(recalls)), abs=1e-9)


def test_missing_embeddings_are_named() -> None:
    with pytest.raises(ValueError, match="no embedding, e.g. 7"):
        pair_retrieval_recall(np.array([1]), np.ones((1, 2)), np.array([1]), np.array([7]))
