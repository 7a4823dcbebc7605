"""ETA's GSU: SimHash codes (signs of fixed random projections) of MM embeddings; Hamming top-K."""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.search_stage import (
    SearchRequest,
    SearchSelection,
    per_target,
    top_k_positions,
)
from muse.search.embedding_table import searchable_mask


class SimHashSearch(nn.Module):
    """Top-K behaviours by fewest differing code bits from the target; ties go to the most recent."""

    projections: torch.Tensor

    def __init__(self, multimodal_dim: int, bits: int, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        # A buffer, not a parameter: ETA's hash functions are fixed, and checkpoints carry them.
        self.register_buffer("projections", torch.randn(multimodal_dim, bits, generator=generator))

    def codes(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Sign bits. embeddings: (..., Dm) → (..., bits) bool."""
        return embeddings @ self.projections > 0

    @torch.no_grad()
    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask of shape (B, C, K), nearest code first; cosines left to the model."""
        if request.target_multimodal is None:
            raise ValueError("the SimHash search needs the targets' MM embeddings")
        items = request.history_items
        # Each distinct item is hashed once (a batch's histories repeat items many times); the
        # codes are the same as hashing every position: codes(gather_normalized(items)).
        distinct, inverse = torch.unique(items, return_inverse=True)
        history_codes = self.codes(request.table.gather_normalized(distinct))[inverse]
        target_codes = self.codes(request.target_multimodal)  # (B, C, bits)
        hamming = (history_codes[:, None] != target_codes[:, :, None]).sum(dim=-1)  # (B, C, L)
        batch, count, length = hamming.shape
        # Recency in [0, 0.5) breaks ties without ever outranking one bit of distance.
        recency = torch.arange(length, dtype=torch.float32, device=items.device) / (
            2.0 * max(length, 1)
        )
        searchable, _ = request.per_target_histories()
        positions, mask = top_k_positions(
            (recency - hamming.to(torch.float32)).reshape(batch * count, length),
            searchable_mask(searchable),
            request.top_k,
        )
        return SearchSelection(
            positions=per_target(positions, request),
            mask=per_target(mask, request),
            cosines=None,
            auxiliary_logits=None,
        )
