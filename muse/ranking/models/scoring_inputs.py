"""What the first stage (select) hands the second stage (score), and what a model returns."""

from __future__ import annotations

from typing import NamedTuple

import torch


class ScoringInputs(NamedTuple):
    """Index and cosine tensors the ESU + tower read; pure tensors, so ``score`` exports to ONNX.

    user_profile: (B, P) int64 profile feature indices.
    target_item: (B,) int64; target_category: (B,) int64; target_attributes: (B, A) int64.
    selected_items, selected_categories: (B, K) int64 ids of the searched behaviours, highest
        first; 0 where ``selected_mask`` is False. K = 0 for models without a search.
    selected_cosines: (B, K) float32 MM cosine of each searched behaviour to the target (0 masked).
    selected_mask: (B, K) bool, True for a real searched behaviour.
    recent_items, recent_categories: (B, N) int64 the most recent N behaviours, oldest first,
        right-aligned, 0 padding on the left.
    recent_cosines: (B, N) float32 MM cosine of each recent behaviour to the target (0 masked).
    recent_mask: (B, N) bool, True for a real behaviour.
    """

    user_profile: torch.Tensor
    target_item: torch.Tensor
    target_category: torch.Tensor
    target_attributes: torch.Tensor
    selected_items: torch.Tensor
    selected_categories: torch.Tensor
    selected_cosines: torch.Tensor
    selected_mask: torch.Tensor
    recent_items: torch.Tensor
    recent_categories: torch.Tensor
    recent_cosines: torch.Tensor
    recent_mask: torch.Tensor


class Selection(NamedTuple):
    """Output of the first stage.

    inputs: the :class:`ScoringInputs` for ``score``.
    auxiliary_logits: (B,) logits of a search stage's own auxiliary CTR head (SIM-soft), else None.
    """

    inputs: ScoringInputs
    auxiliary_logits: torch.Tensor | None


class RankingOutput(NamedTuple):
    """logits: (B,) click logit. auxiliary_logits: (B,) SIM-soft's auxiliary logit, else None."""

    logits: torch.Tensor
    auxiliary_logits: torch.Tensor | None
