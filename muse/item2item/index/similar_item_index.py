"""Nearest catalogue items by embedding: one faiss index over unit vectors, ids and categories.

Every kind ranks by inner product of L2-normalised embeddings (cosine). The approximate kinds
keep a plain exact path beside them (``exact_search``), which the build uses to measure their
recall and the tests compare against. A category filter restricts a search to one category's
items inside faiss (an ID selector), so a filtered query still returns k results when it can.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import faiss
import numpy as np

from muse.item2item.index.index_config import IndexConfig, IndexKind

NO_ITEM = -1  # pads results when fewer than k items qualify
# Rows added to faiss per call while building (progress is reported between calls).
ADD_CHUNK_ROWS = 65_536
# exact_search scores at most this many (query, item) pairs at once: 256 MB of float32.
EXACT_CHUNK_SCORES = 1 << 26


class SimilarItems(NamedTuple):
    """ids: (Q, k) int64 item ids, best first (NO_ITEM padding). scores: (Q, k) float32 cosines."""

    ids: np.ndarray
    scores: np.ndarray


class SimilarItemIndex:
    """An index over ``item_ids`` (N,) with ``vectors`` (N, D) and ``categories`` (N,) int64
    codes; ``category_names[code]`` is a code's name in the catalogue (empty when unnamed)."""

    def __init__(
        self,
        config: IndexConfig,
        item_ids: np.ndarray,
        vectors: np.ndarray,
        categories: np.ndarray,
        index: faiss.Index,
        category_names: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.category_names = category_names
        self._category_code = {name: code for code, name in enumerate(category_names)}
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        self.vectors = vectors
        self.categories = np.asarray(categories, dtype=np.int64)
        self.index = index
        self._row_of = np.argsort(self.item_ids)
        self._sorted_ids = self.item_ids[self._row_of]  # once: a per-lookup gather costs O(N)
        self._category_rows: dict[int, np.ndarray] = {}

    @classmethod
    def build(
        cls,
        config: IndexConfig,
        item_ids: np.ndarray,
        embeddings: np.ndarray,
        categories: np.ndarray | None = None,
        category_names: tuple[str, ...] = (),
        progress: Callable[[int], None] | None = None,
    ) -> SimilarItemIndex:
        """Normalise ``embeddings`` (N, D) and build the configured faiss index over them.

        progress: called with the number of rows just added, after each chunk is in the index.
        """
        item_ids = np.asarray(item_ids, dtype=np.int64)
        vectors = unit_rows(embeddings)
        if vectors.shape[0] != item_ids.size:
            raise ValueError(f"embeddings must have {item_ids.size} rows, got {vectors.shape[0]}")
        if np.unique(item_ids).size != item_ids.size:
            raise ValueError("item ids must be distinct")
        if categories is None:
            categories = np.zeros(item_ids.size, dtype=np.int64)
        return cls(
            config,
            item_ids,
            vectors,
            categories,
            _build_faiss(config, vectors, progress),
            category_names,
        )

    @property
    def size(self) -> int:
        return int(self.item_ids.size)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def category_code(self, name: str) -> int | None:
        """The code of category ``name``, or None when no item has it."""
        return self._category_code.get(name)

    def rows_of(self, item_ids: np.ndarray) -> np.ndarray:
        """(Q,) item ids → (Q,) row indices; -1 for an id not in the catalogue."""
        ids = np.asarray(item_ids, dtype=np.int64)
        if self.size == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        positions = np.minimum(np.searchsorted(self._sorted_ids, ids), self.size - 1)
        return np.where(self._sorted_ids[positions] == ids, self._row_of[positions], -1)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        category: int | None = None,
        exclude_rows: np.ndarray | None = None,
    ) -> SimilarItems:
        """The k nearest items to each query (Q, D), optionally within one ``category``.

        exclude_rows: (Q,) row of an item each query must not return (its own, when querying by
        id), -1 for none.
        """
        if k < 1:
            raise ValueError(f"k must be ≥ 1, got {k}")
        queries = unit_rows(queries)
        if category is not None and self._rows_in(category).size <= self.config.filter_exact_limit:
            return self._category_scan(queries, k, category, exclude_rows)
        extra = int(exclude_rows is not None)
        depth = min(k + extra, self.size)
        if depth == 0 or queries.shape[0] == 0:
            return _empty(queries.shape[0], k)
        scores, rows = self.index.search(queries, depth, params=self._parameters(category))
        return self._results(scores, rows, k, exclude_rows)

    def exact_search(
        self,
        queries: np.ndarray,
        k: int,
        category: int | None = None,
        exclude_rows: np.ndarray | None = None,
    ) -> SimilarItems:
        """The plain reference of :meth:`search`: every item scored (numpy), same contract.

        Ties rank the lower row first. Queries are scored in chunks of at most
        ``EXACT_CHUNK_SCORES`` (query, item) pairs, so memory stays bounded at any catalogue size.
        """
        queries = unit_rows(queries)
        depth = min(k, self.size)
        count = queries.shape[0]
        rows = np.full((count, depth), -1, dtype=np.int64)
        kept = np.full((count, depth), -np.inf, dtype=np.float32)
        excluded = None if exclude_rows is None else np.asarray(exclude_rows, dtype=np.int64)
        step = max(1, EXACT_CHUNK_SCORES // max(self.size, 1))
        for start in range(0, count, step):
            stop = min(start + step, count)
            scores = queries[start:stop] @ self.vectors.T  # (q, N)
            if category is not None:
                scores[:, self.categories != category] = -np.inf
            if excluded is not None:
                chunk = excluded[start:stop]
                valid = chunk >= 0
                scores[np.flatnonzero(valid), chunk[valid]] = -np.inf
            best = _top_rows(scores, depth)
            rows[start:stop] = best
            kept[start:stop] = np.take_along_axis(scores, best, axis=1)
        rows = np.where(np.isfinite(kept), rows, -1)
        return self._results(kept, rows, k, None)

    def recall_against_exact(self, queries: int, k: int, seed: int = 0) -> float:
        """Recall@k of :meth:`search` against exact search over ``queries`` random catalogue items
        (each item itself excluded), as :meth:`recall_of` counts it."""
        count = min(queries, self.size)
        if count == 0:
            return math.nan
        rows = np.random.default_rng(seed).choice(self.size, size=count, replace=False)
        approximate = self.search(self.vectors[rows], k, exclude_rows=rows).ids
        return self.recall_of(rows, list(approximate), k)

    def recall_of(self, query_rows: np.ndarray, found: Sequence[np.ndarray], k: int) -> float:
        """Recall@k of what some search returned for catalogue rows ``query_rows`` (Q,), each
        item itself excluded: ``found[q]`` holds the item ids answered for query q (at most k,
        NO_ITEM allowed), however they were found (this index, a server). Recall is the share of
        the exact top-k that was returned, where a returned item as close as the exact k-th counts
        too (items tied in cosine are equally right); the mean over queries.
        """
        query_rows = np.asarray(query_rows, dtype=np.int64)
        if len(found) != query_rows.size:
            raise ValueError(f"found must hold {query_rows.size} answers, got {len(found)}")
        if query_rows.size == 0:
            return math.nan
        query_vectors = self.vectors[query_rows]
        exact = self.exact_search(query_vectors, k, exclude_rows=query_rows)
        shares = []
        for query, answer, truth, truth_scores in zip(
            query_vectors, found, exact.ids, exact.scores, strict=True
        ):
            wanted = int((truth != NO_ITEM).sum())
            if wanted == 0:
                continue
            answer = np.asarray(answer, dtype=np.int64)[:k]
            returned = self.rows_of(answer[answer != NO_ITEM])
            returned = np.unique(returned[returned >= 0])  # unknown ids are wrong, repeats once
            true_scores = self.vectors[returned] @ query  # exact cosines, whatever the index kept
            threshold = truth_scores[wanted - 1] - 1e-5
            shares.append(min(int((true_scores >= threshold).sum()), wanted) / wanted)
        return float(np.mean(shares)) if shares else math.nan

    def _category_scan(
        self, queries: np.ndarray, k: int, category: int, exclude_rows: np.ndarray | None
    ) -> SimilarItems:
        """Exact search over one category's rows only (queries already unit length)."""
        rows = self._rows_in(category)
        scores = queries @ self.vectors[rows].T  # (Q, n)
        if exclude_rows is not None:
            scores[np.asarray(exclude_rows)[:, None] == rows[None, :]] = -np.inf
        depth = min(k, rows.size)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        kept = np.take_along_axis(scores, best, axis=1)
        found = np.where(np.isfinite(kept), rows[best], -1)
        return self._results(kept.astype(np.float32), found, k, None)

    def _parameters(self, category: int | None) -> Any:
        """faiss search parameters: the search beam or probes, and the category's ID selector."""
        selector = None if category is None else faiss.IDSelectorBatch(self._rows_in(category))
        kind = self.config.kind
        # faiss's bundled stubs lack the keyword arguments its SWIG classes accept.
        api: Any = faiss
        if kind is IndexKind.HNSW:
            return api.SearchParametersHNSW(sel=selector, efSearch=self.config.hnsw_search_beam)
        if kind is IndexKind.IVF_PQ:
            return api.IndexRefineSearchParameters(
                k_factor=self.config.refine_factor,
                base_index_params=api.SearchParametersIVF(
                    sel=selector, nprobe=self.config.ivf_probe
                ),
            )
        return None if selector is None else api.SearchParameters(sel=selector)

    def _rows_in(self, category: int) -> np.ndarray:
        rows = self._category_rows.get(category)
        if rows is None:
            rows = np.flatnonzero(self.categories == category).astype(np.int64)
            self._category_rows[category] = rows
        return rows

    def _results(
        self, scores: np.ndarray, rows: np.ndarray, k: int, exclude_rows: np.ndarray | None
    ) -> SimilarItems:
        if exclude_rows is not None:
            # Drop each query's own row, then keep the best k of what remains.
            own = rows == np.asarray(exclude_rows)[:, None]
            rows = np.where(own, -1, rows)
            order = np.argsort(rows < 0, axis=1, kind="stable")
            rows = np.take_along_axis(rows, order, axis=1)
            scores = np.take_along_axis(scores, order, axis=1)
        result = _empty(rows.shape[0], k)
        width = min(k, rows.shape[1])
        valid = rows[:, :width] >= 0
        result.ids[:, :width] = np.where(
            valid, self.item_ids[np.maximum(rows[:, :width], 0)], NO_ITEM
        )
        result.scores[:, :width] = np.where(valid, scores[:, :width], 0.0)
        return result


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """(N, D) float32 C-contiguous rows scaled to unit length (zero rows stay zero)."""
    vectors = np.array(embeddings, dtype=np.float32, order="C", ndmin=2)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _top_rows(scores: np.ndarray, depth: int) -> np.ndarray:
    """(Q, N) scores → (Q, depth) rows of the highest, best first, ties to the lower row: what a
    stable sort of every row would keep, found by partitioning instead of sorting all N."""
    count = scores.shape[1]
    if depth == 0 or depth * 8 >= count:
        return np.argsort(-scores, axis=1, kind="stable")[:, :depth]
    threshold = np.partition(scores, count - depth, axis=1)[:, count - depth]  # depth-th highest
    best = np.empty((scores.shape[0], depth), dtype=np.int64)
    for query, (row, bar) in enumerate(zip(scores, threshold, strict=True)):
        candidates = np.flatnonzero(row >= bar)  # ascending rows, at least depth of them
        best[query] = candidates[np.argsort(-row[candidates], kind="stable")[:depth]]
    return best


def _empty(queries: int, k: int) -> SimilarItems:
    return SimilarItems(
        np.full((queries, k), NO_ITEM, dtype=np.int64), np.zeros((queries, k), np.float32)
    )


def _build_faiss(
    config: IndexConfig, vectors: np.ndarray, progress: Callable[[int], None] | None = None
) -> faiss.Index:
    """The configured index, trained (when it needs to be) and holding every row (added in
    chunks of ``ADD_CHUNK_ROWS``, ``progress`` told after each)."""
    count, dim = vectors.shape
    metric = faiss.METRIC_INNER_PRODUCT
    if config.kind is IndexKind.EXACT:
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif config.kind is IndexKind.HNSW:
        index = faiss.IndexHNSWFlat(dim, config.hnsw_neighbours, metric)
        index.hnsw.efConstruction = config.hnsw_build_beam
    elif config.kind is IndexKind.IVF_PQ:
        if dim % config.pq_subquantizers:
            raise ValueError(
                f"index.pq_subquantizers ({config.pq_subquantizers}) must divide the embedding "
                f"width {dim}"
            )
        if count < 2**config.pq_bits:
            raise ValueError(
                f"an IVF-PQ index with pq_bits = {config.pq_bits} needs at least "
                f"{2**config.pq_bits} items, got {count}: lower index.pq_bits or use kind exact"
            )
        lists = config.ivf_lists or max(1, min(count, round(4 * math.sqrt(max(count, 1)))))
        quantizer = faiss.IndexFlatIP(dim)
        inverted = faiss.IndexIVFPQ(
            quantizer, dim, lists, config.pq_subquantizers, config.pq_bits, metric
        )
        # Small catalogues train on fewer points than faiss's rule of thumb; the build's recall
        # check against exact search reports what that costs instead of a console warning.
        inverted.cp.min_points_per_centroid = 1
        inverted.pq.cp.min_points_per_centroid = 1
        inverted.cp.seed = inverted.pq.cp.seed = config.seed
        inverted.train(vectors)
        index = faiss.IndexRefineFlat(inverted)
    else:
        raise ValueError(f"unhandled index kind {config.kind}")
    for start in range(0, count, ADD_CHUNK_ROWS):
        chunk = vectors[start : start + ADD_CHUNK_ROWS]
        index.add(chunk)
        if progress is not None:
            progress(chunk.shape[0])
    return index
