"""The native SiLU-gated attention kernels against the plain torch form: values and gradients."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from muse.ranking.models import fused_gated_attention
from muse.ranking.models.esu_config import AttentionVariant
from muse.ranking.models.fused_gated_attention import fused_kernels_apply, gated_dot, gated_pool
from muse.ranking.models.similarity_aware_attention import SimilarityAwareAttention
from muse.ranking.models.target_attention import IdTargetAttention

needs_kernels = pytest.mark.skipif(
    fused_gated_attention.load_kernels() is None, reason="ESU native kernels unavailable here"
)


def _leaf(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().clone().requires_grad_(True)


@needs_kernels
@pytest.mark.parametrize(
    ("rows", "length", "width_in", "width_out"),
    [(5, 7, 16, 24), (33, 3, 8, 8), (2, 1, 32, 32), (0, 4, 8, 16)],
)
def test_gated_dot_and_pool_match_torch(
    rows: int, length: int, width_in: int, width_out: int
) -> None:
    torch.manual_seed(rows + length)
    layer = nn.Linear(width_in, width_out)
    x = torch.randn(rows, length, width_in)
    query = torch.randn(rows, width_out)
    weights = torch.softmax(torch.randn(rows, length), -1)
    weights[: rows // 2, 0] = 0.0  # zero weights take the kernels' skip path
    upstream_dots = torch.randn(rows, length)
    upstream_pooled = torch.randn(rows, width_out)

    def run(fused: bool) -> list[torch.Tensor]:
        inputs = [_leaf(t) for t in (x, query, weights)]
        copy = nn.Linear(width_in, width_out)
        copy.load_state_dict(layer.state_dict())
        x_leaf, query_leaf, weights_leaf = inputs
        if fused:
            dots = gated_dot(x_leaf, copy, query_leaf)
            pooled = gated_pool(x_leaf, copy, weights_leaf)
        else:
            gated = nn.functional.silu(copy(x_leaf))
            dots = (gated * query_leaf[:, None]).sum(-1)
            pooled = (weights_leaf[..., None] * gated).sum(1)
        ((dots * upstream_dots).sum() + (pooled * upstream_pooled).sum()).backward()
        return [dots, pooled] + [t.grad for t in inputs] + [copy.weight.grad, copy.bias.grad]

    for fused, plain in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-4)


@needs_kernels
@pytest.mark.parametrize("attention_class", [IdTargetAttention, SimilarityAwareAttention])
def test_attention_forward_takes_the_kernels_and_matches_the_plain_form(
    attention_class: type[IdTargetAttention],
) -> None:
    torch.manual_seed(4)
    attention = attention_class(16, AttentionVariant.CODE)
    target = torch.randn(6, 16)
    behaviours = torch.randn(6, 9, 16)
    cosines = torch.rand(6, 9) * 2 - 1
    mask = torch.rand(6, 9) > 0.3
    mask[0] = False  # a row with nothing to attend to pools to zeros
    assert fused_kernels_apply(behaviours, attention.key)

    def run(form: str) -> list[torch.Tensor]:
        attention.zero_grad()
        target_leaf, behaviours_leaf = _leaf(target), _leaf(behaviours)
        method = attention if form == "fused" else attention.forward_plain
        output = method(target_leaf, behaviours_leaf, cosines, mask)
        (output * torch.linspace(-1, 1, output.numel()).reshape(output.shape)).sum().backward()
        parameters = [parameter.grad.clone() for parameter in attention.parameters()]
        return [output, target_leaf.grad, behaviours_leaf.grad, *parameters]

    fused, plain = run("fused"), run("plain")
    assert torch.all(fused[0][0] == 0)
    for fused_tensor, plain_tensor in zip(fused, plain, strict=True):
        torch.testing.assert_close(fused_tensor, plain_tensor, rtol=1e-4, atol=1e-5)


def test_kernels_apply_only_where_they_can_run() -> None:
    layer = nn.Linear(16, 16)
    behaviours = torch.randn(2, 3, 16)
    expected = fused_gated_attention.load_kernels() is not None
    assert fused_kernels_apply(behaviours, layer) is expected
    assert not fused_kernels_apply(behaviours.double(), layer)  # float32 only
    assert not fused_kernels_apply(torch.randn(2, 3, 12), nn.Linear(12, 12))  # widths % 8
    assert not fused_kernels_apply(behaviours, nn.Linear(16, 16, bias=False))  # the paper form


def test_disabled_kernels_fall_back_to_torch_in_a_fresh_process() -> None:
    code = (
        "import torch; from torch import nn; "
        "from muse.ranking.models.fused_gated_attention import fused_kernels_apply, load_kernels; "
        "print(load_kernels() is None, fused_kernels_apply(torch.zeros(1, 1, 8), nn.Linear(8, 8)))"
    )
    env = {**os.environ, "MUSE_ESU_DISABLE_NATIVE": "1"}
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    assert output == ["True", "False"]
