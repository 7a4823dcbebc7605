"""The CTR tower: an MLP with Dice between layers, ending in one logit."""

from __future__ import annotations

import torch
from torch import nn

from muse.ranking.models.dice import Dice


class Tower(nn.Module):
    """Linear → Dice for each hidden width, then Linear → 1.

    One logit is the 2-way softmax of the official code with the two logits' difference folded in.
    """

    def __init__(self, input_width: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_width
        for size in hidden:
            layers += [nn.Linear(width, size), Dice(size)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: (B, F) → logits (B,)."""
        return self.layers(features).squeeze(-1)
