"""TWIN's GSU: the ESU's own long-term attention logits score the whole history (consistency)."""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.search_stage import (
    SearchRequest,
    SearchSelection,
    history_cosines,
    per_target,
    top_k_positions,
)
from muse.search.embedding_table import searchable_mask


class SharedAttentionSearch(nn.Module):
    """Top-K by the ESU attention's logits; owns no parameters (it borrows the ESU's at call time)."""

    @torch.no_grad()
    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask/cosines (B, C, K), highest attention logit first."""
        attention = request.long_term_attention
        if attention is None:
            raise ValueError("the shared-attention search needs the ESU's long-term attention")
        history, target = request.id_embedded()  # (B·C, L, 2D), (B·C, 2D)
        cosines = history_cosines(request)
        logits = attention.logits(target, history, cosines)
        items, _ = request.per_target_histories()
        positions, mask = top_k_positions(logits, searchable_mask(items), request.top_k)
        kept_cosines = torch.gather(cosines, 1, positions.clamp_min(0)).masked_fill(~mask, 0.0)
        return SearchSelection(
            positions=per_target(positions, request),
            mask=per_target(mask, request),
            cosines=per_target(kept_cosines, request),
            auxiliary_logits=None,
        )
