"""The fused key/value projection of target attention against the two plain projections."""

from __future__ import annotations

import pytest
import torch

from muse.ranking.models.esu_config import AttentionVariant
from muse.ranking.models.masked_pooling import attention_pool
from muse.ranking.models.similarity_aware_attention import SimilarityAwareAttention
from muse.ranking.models.target_attention import IdTargetAttention


@pytest.mark.parametrize("variant", list(AttentionVariant))
@pytest.mark.parametrize("attention_class", [IdTargetAttention, SimilarityAwareAttention])
def test_fused_projection_matches_separate_layers(
    variant: AttentionVariant, attention_class: type[IdTargetAttention]
) -> None:
    torch.manual_seed(3)
    attention = attention_class(12, variant)
    target = torch.randn(4, 12)
    behaviours = torch.randn(4, 7, 12, requires_grad=True)
    cosines = torch.rand(4, 7) * 2 - 1
    mask = torch.rand(4, 7) > 0.3
    mask[0] = False  # a row with nothing to attend to

    keys, values = attention.keys_and_values(behaviours)
    torch.testing.assert_close(keys, attention.project(attention.key, behaviours))
    torch.testing.assert_close(values, attention.project(attention.value, behaviours))

    fused = attention(target, behaviours, cosines, mask)
    (fused_gradient,) = torch.autograd.grad(fused.sum(), behaviours)
    # The plain reference: each layer on its own, logits from the behaviours.
    plain = attention_pool(
        attention.logits(target, behaviours, cosines),
        attention.project(attention.value, behaviours),
        mask,
    )
    (plain_gradient,) = torch.autograd.grad(plain.sum(), behaviours)
    torch.testing.assert_close(fused, plain)
    torch.testing.assert_close(fused_gradient, plain_gradient)
    assert torch.all(fused[0] == 0)
