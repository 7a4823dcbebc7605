"""ID target attention: one head, q/k/v projections, softmax over the behaviours, sum of values.

The official code's form gates each projection with SiLU (x·sigmoid(x)) and does not scale the
dot product; the paper's form is plain linear projections with 1/√D scaling.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from muse.models.masked_pooling import attention_pool
from muse.models.ranking_config import SimilarityAwareVariant


class IdTargetAttention(nn.Module):
    """Target attention over ID embeddings of behaviours; output width = input width E."""

    def __init__(
        self, width: int, variant: SimilarityAwareVariant = SimilarityAwareVariant.CODE
    ) -> None:
        super().__init__()
        self.variant = variant
        gated = variant is SimilarityAwareVariant.CODE
        self.query = nn.Linear(width, width, bias=gated)
        self.key = nn.Linear(width, width, bias=gated)
        self.value = nn.Linear(width, width, bias=gated)
        self.scale = 1.0 if gated else 1.0 / math.sqrt(width)

    def project(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        projected = layer(x)
        if self.variant is SimilarityAwareVariant.CODE:
            return nn.functional.silu(projected)
        return projected

    def id_logits(self, target: torch.Tensor, behaviours: torch.Tensor) -> torch.Tensor:
        """Scaled q·k. target: (B, E); behaviours: (B, L, E) → (B, L)."""
        query = self.project(self.query, target)
        keys = self.project(self.key, behaviours)
        return torch.einsum("be,ble->bl", query, keys) * self.scale

    def logits(
        self, target: torch.Tensor, behaviours: torch.Tensor, cosines: torch.Tensor
    ) -> torch.Tensor:
        """Attention logits (cosines unused here). target: (B, E); behaviours: (B, L, E) → (B, L)."""
        return self.id_logits(target, behaviours)

    def forward(
        self,
        target: torch.Tensor,
        behaviours: torch.Tensor,
        cosines: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """target: (B, E); behaviours: (B, L, E); cosines: (B, L); mask: (B, L) bool → (B, E)."""
        values = self.project(self.value, behaviours)
        return attention_pool(self.logits(target, behaviours, cosines), values, mask)
