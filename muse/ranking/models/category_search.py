"""SIM-hard's GSU: the most recent behaviours of the target's category."""

from __future__ import annotations

import torch
from torch import nn

from muse.core.ids import FIRST_ID_INDEX
from muse.ranking.models.search_stage import SearchRequest, SearchSelection, top_k_positions
from muse.search.embedding_table import searchable_mask


class SameCategorySearch(nn.Module):
    """Top-K most recent searchable behaviours whose category equals the target's (known) one."""

    @torch.no_grad()
    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask of shape (B, C, K), most recent first; cosines left to the model.

        Each distinct (history, category) pair is searched once: a request's candidates share
        few categories, so serving C candidates costs one (U, L) pass over U distinct categories.
        """
        batch, count = request.target_items.shape
        categories = request.target_categories
        owners = torch.arange(batch, device=categories.device)[:, None].expand(batch, count)
        stride = int(categories.max()) + 1 if categories.numel() else 1
        pairs, inverse = torch.unique(owners * stride + categories, return_inverse=True)
        owner, category = pairs // stride, pairs % stride  # (U,) each
        # An OOV target category matches nothing: OOV behaviours share index 1 but not a category.
        matches = (
            searchable_mask(request.history_items[owner])
            & (request.history_categories[owner] == category[:, None])
            & (category[:, None] >= FIRST_ID_INDEX)
        )
        length = request.history_items.shape[1]
        recency = torch.arange(length, dtype=torch.float32, device=matches.device).expand(
            matches.shape
        )
        positions, mask = top_k_positions(recency, matches, request.top_k)  # (U, K)
        return SearchSelection(
            positions=positions[inverse], mask=mask[inverse], cosines=None, auxiliary_logits=None
        )
