"""The ranking loss: binary cross-entropy on the click logit, plus a search stage's auxiliary loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from muse.ranking.models.scoring_inputs import RankingOutput


def ranking_loss(
    output: RankingOutput, labels: torch.Tensor, auxiliary_weight: float
) -> torch.Tensor:
    """Mean BCE of logits (B,) against labels (B,) + auxiliary_weight × BCE of auxiliary logits (B,).

    BCE on one logit equals the official code's 2-way softmax cross-entropy.
    """
    loss = F.binary_cross_entropy_with_logits(output.logits, labels)
    if output.auxiliary_logits is not None and auxiliary_weight > 0:
        loss = loss + auxiliary_weight * F.binary_cross_entropy_with_logits(
            output.auxiliary_logits, labels
        )
    return loss
