"""Fused SiLU-gated key and value sides of target attention (native CPU kernels with autograd).

The official code's attention projects behaviours x (B, L, I) with SiLU-gated linear layers. The
plain torch form writes and re-reads several (B, L, O) tensors per attention in training; the
kernels of ``native/gated_attention_kernels.cpp`` recompute each projection in registers instead,
forward and backward:

- ``gated_dot(x, W, b, q)``: dots (B, L) = silu(x Wᵀ + b) · q[b]   (keys against the query)
- ``gated_pool(x, W, b, w)``: pooled (B, O) = Σ_l w[b, l] silu(x Wᵀ + b)[l]   (weighted values)

:func:`fused_kernels_apply` says when they are used: float32 CPU tensors, widths that are
multiples of 8, kernels built, and not while an exporter traces the graph (ONNX gets the plain
form). ``MUSE_ESU_DISABLE_NATIVE=1`` turns them off. The plain torch form in
:mod:`muse.ranking.models.target_attention` is the reference; a test compares values and
gradients.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from muse.core.native_build import AVX2_FLAGS, NativeSource, load_optional
from muse.search.native_library import cpu_supports_kernels

GATED_ATTENTION_KERNELS = NativeSource(
    name="gated_attention_kernels",
    path=Path(__file__).parent / "native" / "gated_attention_kernels.cpp",
    signatures={
        "gated_dot_forward": "- pppppqqqqq",
        "gated_dot_backward": "- pppppppppqqqqq",
        "gated_pool_forward": "- pppppqqqqq",
        "gated_pool_backward": "- pppppppppqqqqq",
    },
    # OpenMP: in a torch process the library shares torch's libgomp (same soname) and its threads.
    flags=(*AVX2_FLAGS, "-fopenmp"),
)
LANE = 8  # the kernels' vector width in floats: input and output widths must be multiples


@functools.cache
def load_kernels() -> ctypes.CDLL | None:
    """The loaded kernels, or None (with a logged reason) when they cannot be used here."""
    if not cpu_supports_kernels():
        return None
    return load_optional(GATED_ATTENTION_KERNELS, "MUSE_ESU_DISABLE_NATIVE")


def fused_kernels_apply(behaviours: torch.Tensor, layer: torch.nn.Linear) -> bool:
    """True when ``gated_dot``/``gated_pool`` can run ``layer`` over behaviours (B, L, I)."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
        return False
    return (
        behaviours.device.type == "cpu"
        and behaviours.dtype == torch.float32
        and behaviours.dim() == 3
        and layer.bias is not None
        and layer.weight.dtype == torch.float32
        and layer.in_features % LANE == 0
        and layer.out_features % LANE == 0
        and load_kernels() is not None
    )


def _run(kernel: Any, tensors: tuple[torch.Tensor, ...]) -> None:
    """Call ``kernel`` with the tensors' pointers, then the shape of x = tensors[0] (B, L, I), the
    output width of weight = tensors[1] (O, I), and torch's thread count."""
    x, weight = tensors[:2]
    rows, length, width_in = x.shape
    kernel(
        *(tensor.data_ptr() for tensor in tensors),
        rows,
        length,
        width_in,
        weight.shape[0],
        torch.get_num_threads(),
    )


class _GatedDot(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        query: torch.Tensor,
    ) -> torch.Tensor:
        x, weight, bias, query = (t.detach().contiguous() for t in (x, weight, bias, query))
        dots = x.new_empty((x.shape[0], x.shape[1]))
        _run(load_kernels().gated_dot_forward, (x, weight, bias, query, dots))  # type: ignore[union-attr]
        ctx.save_for_backward(x, weight, bias, query)
        return dots

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_dots: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        x, weight, bias, query = ctx.saved_tensors  # type: ignore[attr-defined]
        grad_dots = grad_dots.contiguous()
        grads = [torch.empty_like(t) for t in (x, weight, bias, query)]
        _run(load_kernels().gated_dot_backward, (x, weight, bias, query, grad_dots, *grads))  # type: ignore[union-attr]
        return tuple(grads)


class _GatedPool(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        weights: torch.Tensor,
    ) -> torch.Tensor:
        x, weight, bias, weights = (t.detach().contiguous() for t in (x, weight, bias, weights))
        pooled = x.new_empty((x.shape[0], weight.shape[0]))
        _run(load_kernels().gated_pool_forward, (x, weight, bias, weights, pooled))  # type: ignore[union-attr]
        ctx.save_for_backward(x, weight, bias, weights)
        return pooled

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_pooled: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        x, weight, bias, weights = ctx.saved_tensors  # type: ignore[attr-defined]
        grad_pooled = grad_pooled.contiguous()
        grads = [torch.empty_like(t) for t in (x, weight, bias, weights)]
        _run(load_kernels().gated_pool_backward, (x, weight, bias, weights, grad_pooled, *grads))  # type: ignore[union-attr]
        return tuple(grads)


def gated_dot(x: torch.Tensor, layer: torch.nn.Linear, query: torch.Tensor) -> torch.Tensor:
    """silu(layer(x)) · query per position. x: (B, L, I); query: (B, O) → dots (B, L)."""
    return _GatedDot.apply(x, layer.weight, layer.bias, query)


def gated_pool(x: torch.Tensor, layer: torch.nn.Linear, weights: torch.Tensor) -> torch.Tensor:
    """Σ_l weights · silu(layer(x)). x: (B, L, I); weights: (B, L) → pooled (B, O)."""
    return _GatedPool.apply(x, layer.weight, layer.bias, weights)
