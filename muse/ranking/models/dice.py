"""Dice activation (DIN): a PReLU whose switch point follows the batch statistics of its input."""

from __future__ import annotations

import torch
from torch import nn


class Dice(nn.Module):
    """p = sigmoid(BN(x)); out = p·x + (1 − p)·α·x, α learned per channel (init 0).

    Only used on per-sample rows (tower layers), never across padded sequence positions, so the
    batch statistics cover real samples only.
    """

    def __init__(self, width: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(width, eps=eps, affine=False)
        self.alpha = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, W) → (B, W)."""
        if self.training and x.shape[0] == 1:
            # One sample has no batch statistics (BatchNorm refuses it): use the running ones.
            normalized = nn.functional.batch_norm(
                x, self.norm.running_mean, self.norm.running_var, training=False, eps=self.norm.eps
            )
        else:
            normalized = self.norm(x)
        gate = torch.sigmoid(normalized)
        return gate * x + (1.0 - gate) * self.alpha * x
