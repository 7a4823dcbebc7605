"""Plain reference GSU search: fp32 matmul over the whole history, then torch.topk.

The fast path in :mod:`muse.search.cosine_top_k` must return the same top-K as this.
"""

from __future__ import annotations

import torch

from muse.search.embedding_table import EmbeddingTable, normalize_rows, searchable_mask
from muse.search.search_result import EXCLUDED_SCORE, SearchResult


@torch.no_grad()
def reference_top_k_gathered(
    history_embeddings: torch.Tensor,
    history_searchable: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
) -> SearchResult:
    """Exact fp32 top-K cosine.

    history_embeddings: (B, L, D) float (normalised here).
    history_searchable: (B, L) bool, True where a behaviour may be returned.
    candidates: (B, C, D) float (normalised here).
    Returns SearchResult with (B, C, K) tensors; K slots beyond the searchable count are masked.
    """
    history = normalize_rows(history_embeddings.float())
    queries = normalize_rows(candidates.float())
    batch, length, _ = history.shape
    num_candidates = queries.shape[1]
    scores = torch.einsum("bcd,bld->bcl", queries, history)
    scores = scores.masked_fill(~history_searchable[:, None, :], EXCLUDED_SCORE)
    kept = min(k, length)
    values, positions = torch.topk(scores, kept, dim=-1, largest=True, sorted=True)
    mask = values > EXCLUDED_SCORE
    if kept < k:
        pad = k - kept
        values = torch.cat(
            [values, values.new_full((batch, num_candidates, pad), EXCLUDED_SCORE)], -1
        )
        positions = torch.cat([positions, positions.new_full((batch, num_candidates, pad), -1)], -1)
        mask = torch.cat([mask, mask.new_zeros((batch, num_candidates, pad))], -1)
    positions = positions.masked_fill(~mask, -1)
    values = values.masked_fill(~mask, 0.0)
    return SearchResult(positions=positions, cosines=values, mask=mask)


@torch.no_grad()
def reference_top_k(
    table: EmbeddingTable,
    history_items: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
) -> SearchResult:
    """Exact fp32 top-K cosine from item indices.

    history_items: (B, L) int64 item indices (0 padding, 1 OOV: never returned).
    candidates: (B, C, D) float candidate embeddings.
    """
    history = table.gather_normalized(history_items)
    return reference_top_k_gathered(history, searchable_mask(history_items), candidates, k)
