"""DIN's attention: an MLP "activation unit" scores each behaviour against the target.

Weights are softmax-normalised (the DIN paper leaves them raw); normalising keeps the pooled
scale independent of history length, which DIN over a 1,000-long history needs.
"""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.masked_pooling import attention_pool


class ActivationUnitAttention(nn.Module):
    """MLP over [q, k, q − k, q ⊙ k] → one logit per behaviour; pools the behaviours themselves."""

    def __init__(self, width: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("the activation unit needs at least one hidden layer")
        self.width = width
        self.first = nn.Linear(4 * width, hidden[0])
        layers: list[nn.Module] = [nn.PReLU()]
        # PReLU rather than Dice: batch statistics across padded positions would leak padding.
        for in_width, out_width in zip(hidden[:-1], hidden[1:], strict=True):
            layers += [nn.Linear(in_width, out_width), nn.PReLU()]
        layers.append(nn.Linear(hidden[-1], 1))
        self.rest = nn.Sequential(*layers)

    @property
    def output_width(self) -> int:
        """Width E of the pooled output (the behaviours themselves are pooled)."""
        return self.width

    def logits(
        self, target: torch.Tensor, behaviours: torch.Tensor, cosines: torch.Tensor
    ) -> torch.Tensor:
        """target: (B, E); behaviours: (B, L, E); cosines unused → (B, L)."""
        # first([q, k, q−k, q⊙k]) = (W_q + W_d)·q + (W_k − W_d)·k + W_p·(q⊙k) + bias, computed
        # without building the (B, L, 4E) concatenation (memory for DIN over long histories).
        w_q, w_k, w_d, w_p = self.first.weight.split(self.width, dim=1)
        per_sample = target @ (w_q + w_d).T + self.first.bias  # (B, H)
        per_behaviour = behaviours @ (w_k - w_d).T + (behaviours * target.unsqueeze(1)) @ w_p.T
        return self.rest(per_behaviour + per_sample.unsqueeze(1)).squeeze(-1)

    def forward(
        self,
        target: torch.Tensor,
        behaviours: torch.Tensor,
        cosines: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """target: (B, E); behaviours: (B, L, E); cosines: (B, L); mask: (B, L) bool → (B, E)."""
        return attention_pool(self.logits(target, behaviours, cosines), behaviours, mask)
