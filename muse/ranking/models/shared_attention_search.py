"""TWIN's GSU: the ESU's own long-term attention logits score the whole history (consistency)."""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.id_embeddings import category_feature, item_feature
from muse.ranking.models.search_stage import (
    SearchRequest,
    SearchSelection,
    history_cosines,
    top_k_positions,
)
from muse.search.embedding_table import searchable_mask


class SharedAttentionSearch(nn.Module):
    """Top-K by the ESU attention's logits; owns no parameters (it borrows the ESU's at call time)."""

    def __init__(self, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k

    @torch.no_grad()
    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask/cosines (B, K), highest attention logit first."""
        attention = request.long_term_attention
        if attention is None:
            raise ValueError("the shared-attention search needs the ESU's long-term attention")
        batch = request.batch
        embedded = request.id_embeddings(
            {
                item_feature("history"): batch.history_items,
                category_feature("history"): batch.history_categories,
                item_feature("target"): batch.target_item.unsqueeze(1),
                category_feature("target"): batch.target_category.unsqueeze(1),
            }
        )
        history = torch.cat(
            [embedded[item_feature("history")], embedded[category_feature("history")]], -1
        )
        target = torch.cat(
            [embedded[item_feature("target")], embedded[category_feature("target")]], -1
        )[:, 0]
        cosines = history_cosines(request)
        logits = attention.logits(target, history, cosines)
        positions, mask = top_k_positions(logits, searchable_mask(batch.history_items), self.top_k)
        kept_cosines = torch.gather(cosines, 1, positions.clamp_min(0)).masked_fill(~mask, 0.0)
        return SearchSelection(
            positions=positions, mask=mask, cosines=kept_cosines, auxiliary_logits=None
        )
