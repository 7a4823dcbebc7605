"""SIM-soft's GSU: learned inner product (W_b e_i)·(W_a e_a) over ID embeddings, with its own
auxiliary CTR head on the soft-search result (softmax-weighted history) so the search learns."""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.id_embeddings import category_feature, item_feature
from muse.ranking.models.masked_pooling import attention_pool
from muse.ranking.models.search_stage import SearchRequest, SearchSelection, top_k_positions
from muse.ranking.models.tower import Tower
from muse.search.embedding_table import searchable_mask


class SoftInnerProductSearch(nn.Module):
    """Top-K by learned inner product; ``auxiliary_logits`` trains W_a, W_b and the embeddings."""

    def __init__(
        self, width: int, projection_dim: int, auxiliary_hidden: tuple[int, ...], top_k: int
    ) -> None:
        super().__init__()
        self.top_k = top_k
        self.target_projection = nn.Linear(width, projection_dim, bias=False)  # W_a
        self.behaviour_projection = nn.Linear(width, projection_dim, bias=False)  # W_b
        self.auxiliary_tower = Tower(2 * width, auxiliary_hidden)

    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask (B, K), best first, and auxiliary_logits (B,)."""
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
        scores = torch.einsum(
            "bp,blp->bl", self.target_projection(target), self.behaviour_projection(history)
        )
        searchable = searchable_mask(batch.history_items)
        positions, mask = top_k_positions(scores.detach(), searchable, self.top_k)
        soft_result = attention_pool(scores, history, searchable)
        auxiliary_logits = self.auxiliary_tower(torch.cat([soft_result, target], dim=-1))
        return SearchSelection(
            positions=positions, mask=mask, cosines=None, auxiliary_logits=auxiliary_logits
        )
