"""The contract of every first stage (GSU): what it is given and what it returns."""

from __future__ import annotations

from typing import NamedTuple

import torch

from muse.ranking.batch import RankingBatch
from muse.ranking.models.id_embeddings import IdEmbeddings
from muse.ranking.models.target_attention import IdTargetAttention
from muse.search import EmbeddingTable


class SearchRequest(NamedTuple):
    """Everything a search may read.

    batch: the ranking batch (histories (B, L), right-aligned).
    table: the frozen item multimodal embedding table.
    target_multimodal: (B, Dm) L2-normalised target MM embedding, or None when the model reads no
        MM embedding.
    id_embeddings: the model's ID embedding tables (SIM-soft and TWIN score ID embeddings).
    long_term_attention: the ESU's long-term attention (TWIN scores the history with it), or None.
    """

    batch: RankingBatch
    table: EmbeddingTable
    target_multimodal: torch.Tensor | None
    id_embeddings: IdEmbeddings
    long_term_attention: IdTargetAttention | None


class SearchSelection(NamedTuple):
    """Kept history positions, best first.

    positions: (B, K) int64 index into the history's L axis; -1 where ``mask`` is False.
    mask: (B, K) bool, True for a kept real behaviour (never padding or OOV).
    cosines: (B, K) float32 MM cosine of each kept behaviour (0 masked), or None if not computed.
    auxiliary_logits: (B,) the search's own auxiliary CTR logit (SIM-soft), else None.
    """

    positions: torch.Tensor
    mask: torch.Tensor
    cosines: torch.Tensor | None
    auxiliary_logits: torch.Tensor | None


def top_k_positions(
    scores: torch.Tensor, searchable: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the k highest scores among searchable behaviours, highest first.

    scores: (B, L) float; searchable: (B, L) bool. Returns positions (B, k) int64 (-1 where fewer
    than k are searchable) and mask (B, k) bool.
    """
    batch, length = scores.shape
    kept = min(k, length)
    floor = torch.finfo(scores.dtype).min
    _, positions = torch.topk(scores.masked_fill(~searchable, floor), kept, dim=-1, sorted=True)
    mask = torch.gather(searchable, 1, positions)
    if kept < k:
        positions = torch.cat([positions, positions.new_full((batch, k - kept), -1)], dim=1)
        mask = torch.cat([mask, mask.new_zeros((batch, k - kept))], dim=1)
    return positions.masked_fill(~mask, -1), mask


def history_cosines(request: SearchRequest) -> torch.Tensor:
    """MM cosine of every history behaviour to the target: (B, L) float32 (0 for padding/OOV/no MM)."""
    items = request.batch.history_items
    if request.target_multimodal is None:
        return torch.zeros(items.shape, dtype=torch.float32, device=items.device)
    return request.table.cosines(items, request.target_multimodal)
