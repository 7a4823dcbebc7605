"""NT-Xent against its textbook per-row definition, and the 9 : 1 multimodal/visual mix."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from muse.item2item.training.contrastive_loss import (
    ContrastiveLoss,
    ContrastiveLossConfig,
    nt_xent,
)


def _plain_nt_xent(a: torch.Tensor, b: torch.Tensor, scale: float, weights: list[float]) -> float:
    """-log( exp(s·z_i·z_p) / Σ_{j≠i} exp(s·z_i·z_j) ) per row, weighted mean over 2N rows."""
    z = torch.cat([a, b]).double()
    count = a.shape[0]
    total, weight_sum = 0.0, 0.0
    for i in range(2 * count):
        partner = i + count if i < count else i - count
        others = [math.exp(scale * float(z[i] @ z[j])) for j in range(2 * count) if j != i]
        loss = -math.log(math.exp(scale * float(z[i] @ z[partner])) / sum(others))
        weight = weights[i % count]
        total += weight * loss
        weight_sum += weight
    return total / weight_sum


def _pairs(count: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = F.normalize(torch.randn(count, dim, generator=generator), dim=-1)
    b = F.normalize(a + 0.5 * torch.randn(count, dim, generator=generator), dim=-1)
    return a, b


@pytest.mark.parametrize("weighted", [False, True])
def test_nt_xent_matches_the_per_row_definition(weighted: bool) -> None:
    a, b = _pairs(6, 8, seed=1)
    weights = [1.0, 2.0, 0.5, 1.0, 3.0, 1.0] if weighted else [1.0] * 6
    scale = math.exp(3.0)
    got = nt_xent(a, b, torch.tensor(scale), torch.tensor(weights) if weighted else None)
    assert float(got) == pytest.approx(_plain_nt_xent(a, b, scale, weights), rel=1e-5)


def test_matching_pairs_give_a_lower_loss_than_shuffled_ones() -> None:
    a, b = _pairs(16, 32, seed=2)
    scale = torch.tensor(math.exp(3.0))
    assert float(nt_xent(a, b, scale)) < float(nt_xent(a, b[torch.randperm(16)], scale)) - 1.0


def test_loss_mixes_multimodal_and_visual_nine_to_one_and_learns_its_temperature() -> None:
    loss = ContrastiveLoss(ContrastiveLossConfig())
    multimodal_a, multimodal_b = _pairs(8, 16, seed=3)
    visual_a, visual_b = _pairs(8, 16, seed=4)
    parts = loss(multimodal_a, multimodal_b, visual_a, visual_b)
    assert parts.visual is not None
    expected = 0.9 * parts.multimodal + 0.1 * parts.visual
    assert float(parts.total.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert float(parts.logit_scale.detach()) == pytest.approx(math.exp(3.0), rel=1e-6)
    parts.total.backward()
    assert loss.temperature.grad is not None and float(loss.temperature.grad) != 0.0
    text_only = loss(multimodal_a, multimodal_b)
    assert text_only.visual is None
    assert float(text_only.total.detach()) == pytest.approx(
        0.9 * float(text_only.multimodal.detach()), rel=1e-6
    )


def test_bad_shapes_and_weights_are_rejected() -> None:
    with pytest.raises(ValueError, match="pair sides"):
        nt_xent(torch.zeros(3, 4), torch.zeros(2, 4), torch.tensor(1.0))
    with pytest.raises(ValueError, match="must be > 0"):
        ContrastiveLossConfig(multimodal_weight=0.0, visual_weight=0.0)
