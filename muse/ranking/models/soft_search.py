"""SIM-soft's GSU: learned inner product (W_b e_i)·(W_a e_a) over ID embeddings, with its own
auxiliary CTR head on the soft-search result (softmax-weighted history) so the search learns."""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.masked_pooling import attention_pool
from muse.ranking.models.search_stage import (
    SearchRequest,
    SearchSelection,
    per_target,
    top_k_positions,
)
from muse.ranking.models.tower import Tower
from muse.search.embedding_table import searchable_mask


class SoftInnerProductSearch(nn.Module):
    """Top-K by learned inner product; ``auxiliary_logits`` trains W_a, W_b and the embeddings."""

    def __init__(self, width: int, projection_dim: int, auxiliary_hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.target_projection = nn.Linear(width, projection_dim, bias=False)  # W_a
        self.behaviour_projection = nn.Linear(width, projection_dim, bias=False)  # W_b
        self.auxiliary_tower = Tower(2 * width, auxiliary_hidden)

    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask (B, C, K), best first, and auxiliary_logits (B, C)."""
        history, target = request.id_embedded()  # (B·C, L, 2D), (B·C, 2D)
        scores = torch.einsum(
            "bp,blp->bl", self.target_projection(target), self.behaviour_projection(history)
        )
        items, _ = request.per_target_histories()
        searchable = searchable_mask(items)
        positions, mask = top_k_positions(scores.detach(), searchable, request.top_k)
        soft_result = attention_pool(scores, history, searchable)
        auxiliary_logits = self.auxiliary_tower(torch.cat([soft_result, target], dim=-1))
        return SearchSelection(
            positions=per_target(positions, request),
            mask=per_target(mask, request),
            cosines=None,
            auxiliary_logits=per_target(auxiliary_logits, request),
        )
