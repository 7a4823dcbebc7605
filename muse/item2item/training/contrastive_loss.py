"""NoteLLM-2's training loss: in-batch NT-Xent over co-engaged item pairs.

A batch of N pairs (a_i, b_i) gives 2N embeddings; each one's positive is its partner and every
other embedding in the batch is a negative (its own similarity is masked out). The logit scale is
exp(t) with t learnable, initialised at 3 (τ ≈ 0.05). NoteLLM-2 sums the loss of the multimodal
embeddings and of the visual ones (the hidden state before the image-compression token) 9 : 1, so
the image part learns to stand on its own instead of being neglected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ContrastiveLossConfig:
    """temperature_init: t of the logit scale exp(t). The two weights mix the multimodal and the
    visual NT-Xent (0.9 and 0.1 in NoteLLM-2; a text-only model has no visual loss)."""

    temperature_init: float = 3.0
    learn_temperature: bool = True
    multimodal_weight: float = 0.9
    visual_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.multimodal_weight < 0 or self.visual_weight < 0:
            raise ValueError("multimodal_weight and visual_weight must be ≥ 0")
        if self.multimodal_weight + self.visual_weight <= 0:
            raise ValueError("at least one of multimodal_weight, visual_weight must be > 0")


class ContrastiveLossParts(NamedTuple):
    """total: the weighted sum (scalar). multimodal, visual: each NT-Xent (scalar; visual is None
    without visual embeddings). logit_scale: exp(t), for logging."""

    total: torch.Tensor
    multimodal: torch.Tensor
    visual: torch.Tensor | None
    logit_scale: torch.Tensor


class ContrastiveLoss(nn.Module):
    """The weighted multimodal + visual in-batch NT-Xent with its learnable temperature."""

    def __init__(self, config: ContrastiveLossConfig) -> None:
        super().__init__()
        self.config = config
        initial = torch.tensor(float(config.temperature_init))
        self.temperature = nn.Parameter(initial, requires_grad=config.learn_temperature)

    def forward(
        self,
        multimodal_a: torch.Tensor,
        multimodal_b: torch.Tensor,
        visual_a: torch.Tensor | None = None,
        visual_b: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> ContrastiveLossParts:
        """Embeddings of the pairs' two sides: (N, D) each, L2-normalised; weights (N,) or None."""
        scale = self.temperature.exp()
        multimodal = nt_xent(multimodal_a, multimodal_b, scale, weights)
        visual = None
        total = self.config.multimodal_weight * multimodal
        if visual_a is not None and visual_b is not None and self.config.visual_weight > 0:
            visual = nt_xent(visual_a, visual_b, scale, weights)
            total = total + self.config.visual_weight * visual
        return ContrastiveLossParts(total, multimodal, visual, scale.detach())


def nt_xent(
    side_a: torch.Tensor,
    side_b: torch.Tensor,
    logit_scale: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch NT-Xent of N pairs: side_a, side_b (N, D) → scalar.

    Each of the 2N rows is a softmax over the other 2N − 1 embeddings with its partner as the
    target; rows are averaged, weighted by their pair's weight (N,) when given.
    """
    if side_a.shape != side_b.shape or side_a.dim() != 2:
        raise ValueError(f"pair sides must both be (N, D), got {side_a.shape} and {side_b.shape}")
    count = side_a.shape[0]
    embeddings = torch.cat([side_a, side_b])  # (2N, D)
    logits = logit_scale * embeddings @ embeddings.T  # (2N, 2N)
    self_pairs = torch.eye(2 * count, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))
    rows = torch.arange(count, device=logits.device)
    partners = torch.cat([rows + count, rows])
    per_row = F.cross_entropy(logits, partners, reduction="none")  # (2N,)
    if weights is None:
        return per_row.mean()
    row_weights = torch.cat([weights, weights]).to(per_row.dtype)
    return (per_row * row_weights).sum() / row_weights.sum()
