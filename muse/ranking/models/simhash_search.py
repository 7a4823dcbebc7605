"""ETA's GSU: SimHash codes (signs of fixed random projections) of MM embeddings; Hamming top-K."""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.search_stage import SearchRequest, SearchSelection, top_k_positions
from muse.search.embedding_table import searchable_mask


class SimHashSearch(nn.Module):
    """Top-K behaviours by fewest differing code bits from the target; ties go to the most recent."""

    projections: torch.Tensor

    def __init__(self, multimodal_dim: int, bits: int, seed: int, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k
        generator = torch.Generator().manual_seed(seed)
        # A buffer, not a parameter: ETA's hash functions are fixed, and checkpoints carry them.
        self.register_buffer("projections", torch.randn(multimodal_dim, bits, generator=generator))

    def codes(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Sign bits. embeddings: (..., Dm) → (..., bits) bool."""
        return embeddings @ self.projections > 0

    @torch.no_grad()
    def forward(self, request: SearchRequest) -> SearchSelection:
        """Returns positions/mask of shape (B, K), nearest code first; cosines left to the model."""
        if request.target_multimodal is None:
            raise ValueError("the SimHash search needs the target's MM embedding")
        items = request.batch.history_items
        # Each distinct item is hashed once (a batch's histories repeat items many times); the
        # codes are the same as hashing every position: codes(gather_normalized(items)).
        distinct, inverse = torch.unique(items, return_inverse=True)
        history_codes = self.codes(request.table.gather_normalized(distinct))[inverse]
        target_codes = self.codes(request.target_multimodal).unsqueeze(1)
        hamming = (history_codes != target_codes).sum(dim=-1).to(torch.float32)
        length = items.shape[1]
        # Recency in [0, 0.5) breaks ties without ever outranking one bit of distance.
        recency = torch.arange(length, dtype=torch.float32, device=items.device) / (
            2.0 * max(length, 1)
        )
        positions, mask = top_k_positions(recency - hamming, searchable_mask(items), self.top_k)
        return SearchSelection(positions=positions, mask=mask, cosines=None, auxiliary_logits=None)
