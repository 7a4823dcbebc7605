"""The contract of every first stage (GSU): what it is given and what it returns.

A request holds B histories and C targets per history. Training asks for one target per history
(B samples, C = 1); serving asks for one history and all of a request's candidates (B = 1, C
candidates), so the history work is shared by every candidate. Both run the same search code.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from muse.ranking.models.id_embeddings import IdEmbeddings, category_feature, item_feature
from muse.ranking.models.target_attention import IdTargetAttention
from muse.search import EmbeddingTable
from muse.search.prepared_history import PreparedHistory


class SearchRequest(NamedTuple):
    """Everything a search may read.

    history_items, history_categories: (B, L) int64 indices, right-aligned (padding 0 on the left).
    target_items, target_categories: (B, C) int64 indices of the targets searched for.
    target_multimodal: (B, C, Dm) L2-normalised target MM embeddings, or None when the model
        reads no MM embedding.
    top_k: K, the number of behaviours to keep per target.
    table: the frozen item multimodal embedding table.
    prepared_history: the single history (B = 1) already gathered for the fast search (the
        server's per-user cache), or None to gather it from ``table``.
    id_embeddings: the model's ID tables (SIM-soft and TWIN score ID embeddings), or None.
    long_term_attention: the ESU's long-term attention (TWIN scores the history with it), or None.
    """

    history_items: torch.Tensor
    history_categories: torch.Tensor
    target_items: torch.Tensor
    target_categories: torch.Tensor
    target_multimodal: torch.Tensor | None
    top_k: int
    table: EmbeddingTable
    prepared_history: PreparedHistory | None = None
    id_embeddings: IdEmbeddings | None = None
    long_term_attention: IdTargetAttention | None = None

    def per_target_histories(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Histories repeated for each target: items, categories (B·C, L) (views when C = 1)."""
        batch, count = self.target_items.shape
        length = self.history_items.shape[1]
        shape = (batch, count, length)
        return (
            self.history_items[:, None].expand(shape).reshape(batch * count, length),
            self.history_categories[:, None].expand(shape).reshape(batch * count, length),
        )

    def id_embedded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ⊕ category ID embeddings of histories (B·C, L, 2D) and targets (B·C, 2D)."""
        if self.id_embeddings is None:
            raise ValueError("this search scores ID embeddings, but the request carries none")
        items, categories = self.per_target_histories()
        embedded = self.id_embeddings(
            {
                item_feature("history"): items,
                category_feature("history"): categories,
                item_feature("target"): self.target_items.reshape(-1, 1),
                category_feature("target"): self.target_categories.reshape(-1, 1),
            }
        )
        history = torch.cat(
            [embedded[item_feature("history")], embedded[category_feature("history")]], -1
        )
        target = torch.cat(
            [embedded[item_feature("target")], embedded[category_feature("target")]], -1
        )[:, 0]
        return history, target


class SearchSelection(NamedTuple):
    """Kept history positions per target, best first.

    positions: (B, C, K) int64 index into the history's L axis; -1 where ``mask`` is False.
    mask: (B, C, K) bool, True for a kept real behaviour (never padding or OOV).
    cosines: (B, C, K) float32 MM cosine of each kept behaviour (0 masked), or None if not computed.
    auxiliary_logits: (B, C) the search's own auxiliary CTR logit (SIM-soft), else None.
    """

    positions: torch.Tensor
    mask: torch.Tensor
    cosines: torch.Tensor | None
    auxiliary_logits: torch.Tensor | None


def top_k_positions(
    scores: torch.Tensor, searchable: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the k highest scores among searchable behaviours, highest first.

    scores: (R, L) float; searchable: (R, L) bool. Returns positions (R, k) int64 (-1 where fewer
    than k are searchable) and mask (R, k) bool.
    """
    rows, length = scores.shape
    kept = min(k, length)
    floor = torch.finfo(scores.dtype).min
    _, positions = torch.topk(scores.masked_fill(~searchable, floor), kept, dim=-1, sorted=True)
    mask = torch.gather(searchable, 1, positions)
    if kept < k:
        positions = torch.cat([positions, positions.new_full((rows, k - kept), -1)], dim=1)
        mask = torch.cat([mask, mask.new_zeros((rows, k - kept))], dim=1)
    return positions.masked_fill(~mask, -1), mask


def history_cosines(request: SearchRequest) -> torch.Tensor:
    """MM cosine of every history behaviour to each target: (B·C, L) float32 (0 for padding/OOV)."""
    items, _ = request.per_target_histories()
    if request.target_multimodal is None:
        return torch.zeros(items.shape, dtype=torch.float32, device=items.device)
    return request.table.cosines(items, request.target_multimodal.reshape(items.shape[0], -1))


def per_target(selection_rows: torch.Tensor, request: SearchRequest) -> torch.Tensor:
    """(B·C, ...) rows back to (B, C, ...)."""
    return selection_rows.reshape(*request.target_items.shape, *selection_rows.shape[1:])
