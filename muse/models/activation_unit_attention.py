"""DIN's attention: an MLP "activation unit" scores each behaviour against the target.

Weights are softmax-normalised (the DIN paper leaves them raw); normalising keeps the pooled
scale independent of history length, which DIN over a 1,000-long history needs.
"""

from __future__ import annotations

import torch
from torch import nn

from muse.models.masked_pooling import attention_pool


class ActivationUnitAttention(nn.Module):
    """MLP over [q, k, q − k, q ⊙ k] → one logit per behaviour; pools the behaviours themselves."""

    def __init__(self, width: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_width = 4 * width
        for size in hidden:
            # PReLU rather than Dice: batch statistics across padded positions would leak padding.
            layers += [nn.Linear(in_width, size), nn.PReLU()]
            in_width = size
        layers.append(nn.Linear(in_width, 1))
        self.score = nn.Sequential(*layers)

    def logits(
        self, target: torch.Tensor, behaviours: torch.Tensor, cosines: torch.Tensor
    ) -> torch.Tensor:
        """target: (B, E); behaviours: (B, L, E); cosines unused → (B, L)."""
        query = target.unsqueeze(1).expand_as(behaviours)
        pair = torch.cat([query, behaviours, query - behaviours, query * behaviours], dim=-1)
        return self.score(pair).squeeze(-1)

    def forward(
        self,
        target: torch.Tensor,
        behaviours: torch.Tensor,
        cosines: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """target: (B, E); behaviours: (B, L, E); cosines: (B, L); mask: (B, L) bool → (B, E)."""
        return attention_pool(self.logits(target, behaviours, cosines), behaviours, mask)
