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

    bin_ids: torch.Tensor

    def __init__(self, tier_width: float = 0.1) -> None:
        super().__init__()
        self.tiers_per_unit = round(1.0 / tier_width)
        self.num_bins = 2 * self.tiers_per_unit + 2
        self.weight = nn.Parameter(torch.rand(self.num_bins))  # the official init: uniform [0, 1)
        self.register_buffer("bin_ids", torch.arange(self.num_bins), persistent=False)

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
        # Masked positions get bin -1, which matches no bin: one comparison, no extra mask pass.
        bins = self.bins(cosines).masked_fill(~mask, -1)
        matches = torch.eq(bins.unsqueeze(-1), self.bin_ids)
        return matches.sum(dim=1).to(cosines.dtype)

    def forward(self, cosines: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """cosines: (B, K) float; mask: (B, K) bool → (B, num_bins) features."""
        return torch.log1p(self.counts(cosines, mask)) * self.weight
