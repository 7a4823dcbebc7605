"""MUSE's GSU: parameter-free cosine top-K of the target's MM embedding against the history's.

A target without an MM embedding (an unknown item, or a known one whose row is zero) has no
direction: every cosine ties at 0 and any K would do. It keeps the K most recent searchable
behaviours instead, a rule that every caller (training batches, the server's prepared history)
applies the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.search_stage import SearchRequest, SearchSelection, top_k_positions

# The one line that picks the search implementation: the fast exact top-K (native kernels on CPU),
# same signature and results as muse.search.reference.reference_top_k (tests compare them).
from muse.search.cosine_top_k import top_k as search_top_k
from muse.search.cosine_top_k import top_k_prepared
from muse.search.embedding_table import searchable_mask
from muse.search.search_result import SearchResult


class MultimodalCosineSearch(nn.Module):
    """Top-K history behaviours by MM cosine to each target; no parameters, no gradients."""

    @torch.no_grad()
    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask/cosines of shape (B, C, K), highest cosine first."""
        if request.target_multimodal is None:
            raise ValueError("the multimodal search needs the targets' MM embeddings")
        if request.prepared_history is not None:
            if request.history_items.shape[0] != 1:
                raise ValueError("a prepared history is one user's: the request must have B = 1")
            result = top_k_prepared(
                request.prepared_history, request.target_multimodal[0], request.top_k
            )
        else:
            result = search_top_k(
                request.table, request.history_items, request.target_multimodal, request.top_k
            )
        positions, mask, cosines = result.positions, result.mask, result.cosines
        directionless = request.target_multimodal.abs().amax(dim=-1) == 0  # (B, C)
        if bool(directionless.any()):
            positions, mask, cosines = _most_recent_for(directionless, request, result)
        return SearchSelection(
            positions=positions, mask=mask, cosines=cosines, auxiliary_logits=None
        )


def _most_recent_for(
    rows: torch.Tensor, request: SearchRequest, result: SearchResult
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``result`` (B, C, K) with the targets marked in ``rows`` (B, C) keeping the K most recent
    searchable behaviours, cosine 0."""
    history = request.history_items.to(result.positions.device)
    owners = rows.nonzero()[:, 0]  # the history of each marked target
    length = history.shape[1]
    recency = torch.arange(length, dtype=torch.float32, device=history.device)
    recent, recent_mask = top_k_positions(
        recency.expand(owners.numel(), length), searchable_mask(history[owners]), request.top_k
    )
    positions, mask, cosines = result.positions.clone(), result.mask.clone(), result.cosines.clone()
    positions[rows], mask[rows], cosines[rows] = recent, recent_mask, 0.0
    return positions, mask, cosines
