"""The batch every ranking model reads: indices only; histories are sliced at batch time."""

from __future__ import annotations

from typing import NamedTuple

import torch


class RankingBatch(NamedTuple):
    """One batch of ranking samples.

    Histories are right-aligned: the most recent behaviour is at position L-1, and padding
    (item index 0) fills the left. OOV behaviours (index 1) are real but unsearchable.

    user_profile: (B, P) int64 profile feature indices (P may be 0).
    target_item: (B,) int64 item index.
    target_category: (B,) int64 category index.
    target_attributes: (B, A) int64 item attribute indices (e.g. city, province; A may be 0).
    history_items: (B, L) int64 item indices.
    history_categories: (B, L) int64 category indices.
    history_length: (B,) int64 number of real behaviours (≤ L).
    label: (B,) float32 click label.
    """

    user_profile: torch.Tensor
    target_item: torch.Tensor
    target_category: torch.Tensor
    target_attributes: torch.Tensor
    history_items: torch.Tensor
    history_categories: torch.Tensor
    history_length: torch.Tensor
    label: torch.Tensor
