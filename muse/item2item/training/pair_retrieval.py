"""NoteLLM's retrieval protocol over test pairs of co-engaged items: Recall@k, exact search.

Each test pair (a, b) makes ``a`` a query and ``b`` its ground truth. The pool is every test item
that is not a query, so a query never finds itself or another query; a query's relevant set is
all its partners in the pool (pairs whose partner is also a query drop out). Items are ranked by
the inner product of their L2-normalised embeddings (exact ``faiss.knn``). With link kinds given
(image-only, text-only, both), each kind is scored over the queries' partners of that kind only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import faiss
import numpy as np

from muse.core.retrieval_metrics import NO_ITEM, recall_at_k

DEFAULT_KS = (1, 10, 100, 1000)
ALL_LINKS = "all"


class PairRetrievalQueries(NamedTuple):
    """query_ids (Q,) int64, their relevant pool ids (Q arrays), and each query's link kind
    (Q,) str (ALL_LINKS when kinds were not given)."""

    query_ids: np.ndarray
    relevant: list[np.ndarray]
    link_kinds: np.ndarray


def pair_queries(
    pairs_a: np.ndarray, pairs_b: np.ndarray, link_kinds: np.ndarray | None = None
) -> tuple[PairRetrievalQueries, np.ndarray]:
    """The queries of NoteLLM's protocol and the pool ids (sorted) they are ranked against.

    pairs_a, pairs_b: (P,) int64 item ids; link_kinds: (P,) str or None. One query per distinct
    (query id, link kind); queries without a partner in the pool are left out.
    """
    pairs_a, pairs_b = np.asarray(pairs_a, np.int64), np.asarray(pairs_b, np.int64)
    if pairs_a.shape != pairs_b.shape or pairs_a.ndim != 1:
        raise ValueError(f"pairs_a and pairs_b must be (P,), got {pairs_a.shape}, {pairs_b.shape}")
    kinds = (
        np.full(pairs_a.size, ALL_LINKS, dtype=object)
        if link_kinds is None
        else np.asarray(link_kinds, dtype=object)
    )
    queries = np.unique(pairs_a)
    pool = np.setdiff1d(np.unique(np.concatenate([pairs_a, pairs_b])), queries)
    in_pool = np.isin(pairs_b, pool)
    grouped: dict[tuple[int, str], list[int]] = {}
    for query, partner, kind in zip(
        pairs_a[in_pool], pairs_b[in_pool], kinds[in_pool], strict=True
    ):
        grouped.setdefault((int(query), str(kind)), []).append(int(partner))
    keys = sorted(grouped)
    return (
        PairRetrievalQueries(
            query_ids=np.array([query for query, _ in keys], dtype=np.int64),
            relevant=[np.unique(np.array(grouped[key], dtype=np.int64)) for key in keys],
            link_kinds=np.array([kind for _, kind in keys], dtype=object),
        ),
        pool,
    )


def pair_retrieval_recall(
    item_ids: np.ndarray,
    embeddings: np.ndarray,
    pairs_a: np.ndarray,
    pairs_b: np.ndarray,
    link_kinds: np.ndarray | None = None,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, dict[int, float]]:
    """Recall@k by link kind (plus ALL_LINKS over every query): {kind: {k: recall}}.

    item_ids: (M,) int64 ids of the embedded items (every pair id among them);
    embeddings: (M, D) float, one row per item (normalised here).
    """
    item_ids = np.asarray(item_ids, np.int64)
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != item_ids.size:
        raise ValueError(f"embeddings must be ({item_ids.size}, D), got {vectors.shape}")
    order = np.argsort(item_ids)
    sorted_ids = item_ids[order]
    queries, pool = pair_queries(pairs_a, pairs_b, link_kinds)
    missing = np.setdiff1d(np.concatenate([queries.query_ids, pool]), sorted_ids)
    if missing.size:
        raise ValueError(f"{missing.size} pair item id(s) have no embedding, e.g. {missing[0]}")
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def rows_of(ids: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(vectors[order[np.searchsorted(sorted_ids, ids)]])

    depth = min(max(ks), pool.size)
    ranked = np.full((queries.query_ids.size, max(ks)), NO_ITEM, dtype=np.int64)
    if depth and queries.query_ids.size:
        _, positions = faiss.knn(
            rows_of(queries.query_ids), rows_of(pool), depth, metric=faiss.METRIC_INNER_PRODUCT
        )
        ranked[:, :depth] = np.where(positions >= 0, pool[np.maximum(positions, 0)], NO_ITEM)
    results: dict[str, dict[int, float]] = {}
    for kind in [ALL_LINKS, *sorted(set(queries.link_kinds) - {ALL_LINKS})]:
        chosen = np.ones(queries.query_ids.size, bool)
        if kind != ALL_LINKS:
            chosen = queries.link_kinds == kind
        relevant = [queries.relevant[index] for index in np.flatnonzero(chosen)]
        results[kind] = {k: recall_at_k(ranked[chosen], relevant, k) for k in ks}
    return results
