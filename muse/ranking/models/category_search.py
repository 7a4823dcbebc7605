"""SIM-hard's GSU: the most recent behaviours of the target's category."""

from __future__ import annotations

import torch
from torch import nn

from muse.core.ids import FIRST_ID_INDEX
from muse.ranking.models.search_stage import SearchRequest, SearchSelection, top_k_positions
from muse.search.embedding_table import searchable_mask


class SameCategorySearch(nn.Module):
    """Top-K most recent searchable behaviours whose category equals the target's (known) one."""

    def __init__(self, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k

    @torch.no_grad()
    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask of shape (B, K), most recent first; cosines left to the model."""
        batch = request.batch
        target = batch.target_category.unsqueeze(1)
        # An OOV target category matches nothing: OOV behaviours share index 1 but not a category.
        matches = (
            searchable_mask(batch.history_items)
            & (batch.history_categories == target)
            & (target >= FIRST_ID_INDEX)
        )
        length = batch.history_items.shape[1]
        recency = torch.arange(length, dtype=torch.float32, device=matches.device).expand(
            matches.shape
        )
        positions, mask = top_k_positions(recency, matches, self.top_k)
        return SearchSelection(positions=positions, mask=mask, cosines=None, auxiliary_logits=None)
