"""Masked softmax pooling and masked mean, with an explicit path for rows with nothing to pool.

A fully masked row is not left to softmax: eager torch and ONNX runtimes disagree on it (a
softmax over only −inf is NaN in one and uniform in another). Masked logits get a finite floor,
masked weights are zeroed, and rows without any real position pool to exact zeros.
"""

from __future__ import annotations

import torch

# Far below any real logit, yet finite, so exp() underflows to 0 without inf − inf = NaN.
MASKED_LOGIT = -1.0e9


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis of real positions; all-zero weights where a row has none.

    logits: (B, L) float; mask: (B, L) bool. Returns (B, L) float.
    """
    weights = torch.softmax(logits.masked_fill(~mask, MASKED_LOGIT), dim=-1)
    return torch.where(mask, weights, torch.zeros_like(weights))


def attention_pool(logits: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ softmax(logits) · values over real positions; zeros for an empty row.

    logits: (B, L); values: (B, L, D); mask: (B, L) bool. Returns (B, D).
    """
    weights = masked_softmax(logits, mask)
    # Batched matmuls, not einsum: onnxruntime runs them about twice as fast.
    pooled = torch.matmul(weights.unsqueeze(1), values).squeeze(1)
    has_any = mask.any(dim=-1, keepdim=True)
    return torch.where(has_any, pooled, torch.zeros_like(pooled))


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real positions; zeros for an empty row. values: (B, L, D); mask: (B, L) → (B, D)."""
    weights = mask.to(values.dtype)
    total = torch.matmul(weights.unsqueeze(1), values).squeeze(1)
    count = weights.sum(dim=-1, keepdim=True).clamp_min(1.0)
    return total / count
