"""SimTier: a learned-weight histogram of cosine similarities (MUSE's official code version).

Tier width w (default 0.1): bin = ceil(cos / w) + 1/w, so [−1, 1] maps onto 0 … 2/w, with one
spare bin for cosines a rounding error above 1 (22 bins for w = 0.1). The feature of bin b is
log(1 + count_b) · weight_b. Unlike the official code, padding positions are not counted.
"""

from __future__ import annotations

import torch
from torch import nn


class SimTier(nn.Module):
    """Histogram features of a set of cosines."""

    def __init__(self, tier_width: float = 0.1) -> None:
        super().__init__()
        self.tiers_per_unit = round(1.0 / tier_width)
        self.num_bins = 2 * self.tiers_per_unit + 2
        self.weight = nn.Parameter(torch.rand(self.num_bins))  # the official init: uniform [0, 1)

    @property
    def output_width(self) -> int:
        """One feature per bin."""
        return self.num_bins

    def bins(self, cosines: torch.Tensor) -> torch.Tensor:
        """Bin index of each cosine. cosines: (B, K) float → (B, K) int64 in [0, num_bins)."""
        # fp rounding can give a self-cosine of 1.0000001; clamp so it bins like 1.0 everywhere.
        raw = (
            torch.ceil(cosines.clamp(-1.0, 1.0) * self.tiers_per_unit).to(torch.int64)
            + self.tiers_per_unit
        )
        return raw.clamp(0, self.num_bins - 1)

    def counts(self, cosines: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Real positions per bin. cosines: (B, K); mask: (B, K) bool → (B, num_bins) float."""
        # One scatter-add of the mask (masked positions add 0), not a (B, K, bins) comparison.
        counts = torch.zeros(
            (cosines.shape[0], self.num_bins), dtype=cosines.dtype, device=cosines.device
        )
        return counts.scatter_add(1, self.bins(cosines), mask.to(cosines.dtype))

    def forward(self, cosines: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """cosines: (B, K) float; mask: (B, K) bool → (B, num_bins) features."""
        return torch.log1p(self.counts(cosines, mask)) * self.weight
