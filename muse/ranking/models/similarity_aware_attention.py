"""SA-TA: ID target attention whose logit is fused with the behaviour's multimodal cosine R.

Code version (default): logit = b1·dot + b2·mm + b3·dot·mm with mm = R / a1, a1 a learned
temperature (init 0.1), b init 1. Paper version: α = γ1·α_ID + γ2·R + γ3·α_ID⊙R.
"""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.esu_config import AttentionVariant
from muse.ranking.models.target_attention import IdTargetAttention


class SimilarityAwareAttention(IdTargetAttention):
    """Target attention fused with cosines; ``fusion`` holds (b1, b2, b3) or (γ1, γ2, γ3)."""

    def __init__(
        self,
        width: int,
        variant: AttentionVariant = AttentionVariant.CODE,
        temperature_init: float = 0.1,
        fusion_init: float = 1.0,
    ) -> None:
        super().__init__(width, variant)
        self.fusion = nn.Parameter(torch.full((3,), float(fusion_init)))
        self.temperature: nn.Parameter | None = None
        if variant is AttentionVariant.CODE:
            self.temperature = nn.Parameter(torch.tensor(float(temperature_init)))

    def fuse_logits(self, dots: torch.Tensor, cosines: torch.Tensor) -> torch.Tensor:
        """Scaled q·k dots (B, L) fused with cosines (B, L) → logits (B, L)."""
        similarity = cosines if self.temperature is None else cosines / self.temperature
        return (
            self.fusion[0] * dots + self.fusion[1] * similarity + self.fusion[2] * dots * similarity
        )
