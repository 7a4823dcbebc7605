"""SIM-hard's GSU: the most recent behaviours of the target's category."""

from __future__ import annotations

import torch
from torch import nn

from muse.core.ids import FIRST_ID_INDEX
from muse.ranking.models.search_stage import SearchRequest, SearchSelection
from muse.search.embedding_table import searchable_mask


class SameCategorySearch(nn.Module):
    """Top-K most recent searchable behaviours whose category equals the target's (known) one."""

    @torch.no_grad()
    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask of shape (B, C, K), most recent first; cosines left to the model.

        One stable sort of the histories by (history, category) puts each category's behaviours
        in one run, oldest first; a target's K most recent matches are the tail of its run. The
        cost is one O(B·L log) sort however many candidates share a history (the server's C).
        """
        history_items, history_categories = request.history_items, request.history_categories
        batch, length = history_items.shape
        count, k = request.target_items.shape[1], request.top_k
        device = history_items.device
        stride = 1 + max(_largest(history_categories), _largest(request.target_categories))
        owners = torch.arange(batch, device=device)[:, None]
        # An unsearchable behaviour (padding, OOV) sorts first under a key no target asks for.
        keys = torch.where(
            searchable_mask(history_items), owners * stride + history_categories, -1
        ).reshape(-1)
        sorted_keys, order = torch.sort(keys, stable=True)
        sorted_positions = order % max(length, 1)
        if sorted_positions.numel() == 0:  # no history column at all: nothing can match
            sorted_positions = sorted_positions.new_full((1,), -1)
        wanted = (owners * stride + request.target_categories).reshape(-1)  # (B·C,)
        starts = torch.searchsorted(sorted_keys, wanted, right=False)
        ends = torch.searchsorted(sorted_keys, wanted, right=True)
        slots = ends[:, None] - 1 - torch.arange(k, device=device)  # most recent first
        # An OOV target category matches nothing: OOV behaviours share index 1 but not a category.
        mask = (slots >= starts[:, None]) & (
            request.target_categories.reshape(-1, 1) >= FIRST_ID_INDEX
        )
        positions = torch.where(mask, sorted_positions[slots.clamp_min(0)], -1)
        return SearchSelection(
            positions=positions.reshape(batch, count, k),
            mask=mask.reshape(batch, count, k),
            cosines=None,
            auxiliary_logits=None,
        )


def _largest(indices: torch.Tensor) -> int:
    """The largest index in ``indices``, 0 when empty."""
    return int(indices.max()) if indices.numel() else 0
