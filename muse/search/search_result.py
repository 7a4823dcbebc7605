"""The output of a GSU search."""

from __future__ import annotations

from typing import NamedTuple

import torch

# Score given to padding / OOV positions so they sort below every real cosine (which is ≥ -1).
EXCLUDED_SCORE = -2.0


class SearchResult(NamedTuple):
    """Top-K history positions per candidate, highest cosine first.

    positions: (B, C, K) int64 index into the history's L axis; -1 where the history holds
        fewer than K real behaviours.
    cosines: (B, C, K) float32 cosine of each kept behaviour; 0 where ``mask`` is False.
    mask: (B, C, K) bool, True for a real kept behaviour.
    """

    positions: torch.Tensor
    cosines: torch.Tensor
    mask: torch.Tensor
