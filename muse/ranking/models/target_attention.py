"""ID target attention: one head, q/k/v projections, softmax over the behaviours, sum of values.

The official code's form gates each projection with SiLU (x·sigmoid(x)) and does not scale the
dot product; the paper's form is plain linear projections with 1/√D scaling. In training, the
official form runs through the fused native kernels of :mod:`fused_gated_attention` where they
apply; ``forward_plain`` is the torch reference that exports and tests compare with.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from muse.ranking.models.esu_config import AttentionVariant
from muse.ranking.models.fused_gated_attention import fused_kernels_apply, gated_dot, gated_pool
from muse.ranking.models.masked_pooling import attention_pool, masked_softmax


class IdTargetAttention(nn.Module):
    """Target attention over ID embeddings of behaviours; output width = input width E."""

    def __init__(self, width: int, variant: AttentionVariant = AttentionVariant.CODE) -> None:
        super().__init__()
        self.variant = variant
        gated = variant is AttentionVariant.CODE
        self.query = nn.Linear(width, width, bias=gated)
        self.key = nn.Linear(width, width, bias=gated)
        self.value = nn.Linear(width, width, bias=gated)
        self.scale = 1.0 if gated else 1.0 / math.sqrt(width)

    @property
    def output_width(self) -> int:
        """Width E of the pooled output (the values' width, that of the behaviours)."""
        return self.value.out_features

    def project(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        projected = layer(x)
        if self.variant is AttentionVariant.CODE:
            return nn.functional.silu(projected)
        return projected

    def keys_and_values(self, behaviours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``project(key, ·)`` and ``project(value, ·)`` of behaviours (B, L, E), each (B, L, E).

        One GEMM over the two layers' concatenated weights (the parameters stay separate): a
        third less training time in the ESU than two projections; a test compares them.
        """
        weight = torch.cat([self.key.weight, self.value.weight])
        bias = None if self.key.bias is None else torch.cat([self.key.bias, self.value.bias])
        projected = nn.functional.linear(behaviours, weight, bias)
        if self.variant is AttentionVariant.CODE:
            projected = nn.functional.silu(projected)
        keys, values = projected.split(self.key.out_features, dim=-1)
        return keys, values

    def id_logits_from_keys(self, target: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Scaled q·k with keys already projected. target: (B, E); keys: (B, L, E) → (B, L)."""
        query = self.project(self.query, target)
        # A batched matmul, not einsum: onnxruntime runs it about twice as fast.
        return torch.matmul(keys, query.unsqueeze(-1)).squeeze(-1) * self.scale

    def logits(
        self, target: torch.Tensor, behaviours: torch.Tensor, cosines: torch.Tensor
    ) -> torch.Tensor:
        """Attention logits (cosines unused here). target: (B, E); behaviours: (B, L, E) → (B, L)."""
        return self.logits_from_keys(target, self.project(self.key, behaviours), cosines)

    def logits_from_keys(
        self, target: torch.Tensor, keys: torch.Tensor, cosines: torch.Tensor
    ) -> torch.Tensor:
        """``logits`` with keys (B, L, E) already projected. Returns (B, L)."""
        return self.fuse_logits(self.id_logits_from_keys(target, keys), cosines)

    def fuse_logits(self, dots: torch.Tensor, cosines: torch.Tensor) -> torch.Tensor:
        """Attention logits from scaled q·k dots (B, L) and cosines (B, L); here the dots alone."""
        return dots

    def forward(
        self,
        target: torch.Tensor,
        behaviours: torch.Tensor,
        cosines: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """target: (B, E); behaviours: (B, L, E); cosines: (B, L); mask: (B, L) bool → (B, E)."""
        if not (
            self.variant is AttentionVariant.CODE
            and fused_kernels_apply(behaviours, self.key)
            and fused_kernels_apply(behaviours, self.value)
        ):
            return self.forward_plain(target, behaviours, cosines, mask)
        dots = gated_dot(behaviours, self.key, self.project(self.query, target)) * self.scale
        weights = masked_softmax(self.fuse_logits(dots, cosines), mask)
        # masked_softmax gives a row without real positions all-zero weights, so it pools to 0.
        return gated_pool(behaviours, self.value, weights)

    def forward_shared(
        self,
        target: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        request: torch.Tensor,
        cosines: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """``forward`` of C targets whose behaviours are their requests' shared windows, with the
        windows' keys and values projected once per request (a test compares).

        target: (C, E); keys, values: (R, N, E) from ``keys_and_values``; request: (C,) int64
        row of each target's window; cosines, mask: (C, N). Returns (C, E). One GEMM against
        all R windows gives the dots and one the pool, where gathering the windows per target
        would copy (C, N, E) twice for two batched matrix-vector products.
        """
        requests, length, width = keys.shape
        query = self.project(self.query, target)
        # Exact zeros off each target's own window, so the sum over R picks its block unchanged.
        own = (request[:, None] == torch.arange(requests, device=request.device)).to(query.dtype)
        dots = torch.matmul(query, keys.reshape(requests * length, width).transpose(0, 1))
        dots = (dots.reshape(-1, requests, length) * own[:, :, None]).sum(dim=1) * self.scale
        weights = masked_softmax(self.fuse_logits(dots, cosines), mask)
        spread = (own[:, :, None] * weights[:, None, :]).reshape(-1, requests * length)
        pooled = torch.matmul(spread, values.reshape(requests * length, -1))
        return torch.where(mask.any(dim=-1, keepdim=True), pooled, torch.zeros_like(pooled))

    def forward_plain(
        self,
        target: torch.Tensor,
        behaviours: torch.Tensor,
        cosines: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """``forward`` in plain torch ops (the reference, and what exporters trace)."""
        keys, values = self.keys_and_values(behaviours)
        return attention_pool(self.logits_from_keys(target, keys, cosines), values, mask)
