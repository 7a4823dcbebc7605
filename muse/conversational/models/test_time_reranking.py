"""Test-time reranking (TTR): rescoring the retriever's beams against the inferred intent.

``s = α · log p(ID | query) + (1 − α) · r(query, item)``, with r the cosine of the NoteLLM-2
embeddings of the rewritten query and the item, or an LLM judge's log-odds. Numpy only: the same
function reranks in evaluation and in the server. Beams that found no item (row −1) stay last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from muse.core.retrieval_metrics import NO_ITEM, mean_reciprocal_rank


class Reranked(NamedTuple):
    """rows (B, K) int64 catalogue rows, best first (−1 last); scores (B, K) float32 (−inf at −1)."""

    rows: np.ndarray
    scores: np.ndarray


def rerank(
    rows: np.ndarray, log_probs: np.ndarray, relevance: np.ndarray, alpha: float
) -> Reranked:
    """Order each query's K candidates by α·log_probs + (1 − α)·relevance.

    rows: (B, K) int64 candidate rows (−1 where the retriever found fewer than K).
    log_probs: (B, K) float log p(ID | query). relevance: (B, K) float, e.g. cosines.
    A stable sort: ties keep the retriever's order.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.shape != np.shape(log_probs) or rows.shape != np.shape(relevance):
        raise ValueError(
            f"rows {rows.shape}, log_probs {np.shape(log_probs)} and relevance "
            f"{np.shape(relevance)} must have the same (B, K) shape"
        )
    missing = rows == NO_ITEM
    # A missing beam's log-probability is −inf; 0 · −inf would be NaN, so it is scored apart.
    retriever = np.where(missing, 0.0, np.asarray(log_probs, np.float64))
    score = alpha * retriever + (1.0 - alpha) * np.asarray(relevance, np.float64)
    score = np.where(missing, -np.inf, score)
    order = np.argsort(-score, axis=1, kind="stable")
    return Reranked(
        np.take_along_axis(rows, order, axis=1),
        np.take_along_axis(score, order, axis=1).astype(np.float32),
    )


def cosine_relevance(
    rows: np.ndarray, query_embeddings: np.ndarray, item_embeddings: np.ndarray
) -> np.ndarray:
    """(B, K) cosines of each query (B, D) with its candidate items (rows (B, K) into (N, D));
    embeddings are L2-normalised; 0 where a row is −1."""
    safe = np.where(rows == NO_ITEM, 0, rows)
    candidates = np.asarray(item_embeddings, np.float32)[safe]  # (B, K, D)
    cosines = np.einsum("bkd,bd->bk", candidates, np.asarray(query_embeddings, np.float32))
    return np.where(rows == NO_ITEM, 0.0, cosines).astype(np.float32)


class AlphaChoice(NamedTuple):
    """alpha: the best of the grid; mrr: the MRR each grid value gave, in grid order."""

    alpha: float
    mrr: tuple[float, ...]


def tune_alpha(
    rows: np.ndarray,
    log_probs: np.ndarray,
    relevance: np.ndarray,
    target_rows: np.ndarray,
    grid: Sequence[float],
) -> AlphaChoice:
    """The α of ``grid`` whose reranking gives the highest MRR of ``target_rows`` (B,) (ties: the
    larger α, the one closer to the retriever alone)."""
    relevant = [np.array([target]) for target in np.asarray(target_rows).tolist()]
    figures = []
    for alpha in grid:
        ranked = rerank(rows, log_probs, relevance, float(alpha)).rows
        figures.append(mean_reciprocal_rank(ranked, relevant))
    best = max(range(len(figures)), key=lambda i: (figures[i], grid[i]))
    return AlphaChoice(float(grid[best]), tuple(figures))
