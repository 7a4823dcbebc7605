"""MUSE's GSU: parameter-free cosine top-K of the target's MM embedding against the history's."""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.search_stage import SearchRequest, SearchSelection

# The one line that picks the search implementation: the fast exact top-K (native kernels on CPU),
# same signature and results as muse.search.reference.reference_top_k (tests compare them).
from muse.search.cosine_top_k import top_k as search_top_k


class MultimodalCosineSearch(nn.Module):
    """Top-K history behaviours by MM cosine to the target; no parameters, no gradients."""

    def __init__(self, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k

    @torch.no_grad()
    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask/cosines of shape (B, K), highest cosine first."""
        if request.target_multimodal is None:
            raise ValueError("the multimodal search needs the target's MM embedding")
        result = search_top_k(
            request.table,
            request.batch.history_items,
            request.target_multimodal.unsqueeze(1),
            self.top_k,
        )
        return SearchSelection(
            positions=result.positions[:, 0],
            mask=result.mask[:, 0],
            cosines=result.cosines[:, 0],
            auxiliary_logits=None,
        )
