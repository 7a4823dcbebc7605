"""Late fusion (NoteLLM-2): gate the raw visual signal back into the LLM's item state.

v = W_v · pooled; z = sigmoid(W_g [h; v]) elementwise; out = z ⊙ h + (1 − z) ⊙ v. The gate is
per dimension, so the LLM state keeps what it compressed well and the image fills in the rest.
"""

from __future__ import annotations

import torch
from torch import nn


class LateFusion(nn.Module):
    """h (B, H) and pooled vision (B, C) → fused (B, H). ``llm_width`` H, ``vision_width`` C."""

    def __init__(self, llm_width: int, vision_width: int) -> None:
        super().__init__()
        self.llm_width = llm_width
        self.vision = nn.Linear(vision_width, llm_width)  # W_v
        self.gate = nn.Linear(2 * llm_width, llm_width)  # W_g over [h; v]

    @property
    def output_width(self) -> int:
        """H: fusion keeps the LLM width."""
        return self.llm_width

    def forward(self, hidden: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """hidden (B, H), pooled (B, C) → z ⊙ h + (1 − z) ⊙ v (B, H)."""
        visual = self.vision(pooled)
        gate = torch.sigmoid(self.gate(torch.cat([hidden, visual], dim=-1)))
        return gate * hidden + (1 - gate) * visual
