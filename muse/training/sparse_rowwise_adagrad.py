"""Row-wise Adagrad over ID tables that reads sparse row gradients: only the rows a batch touched.

The update is torchrec's ``RowWiseAdagrad`` (the plain reference; a test compares them): for each
row r with gradient g_r (D,), ``sum_r += mean(g_r²)`` and ``w_r -= lr · g_r / (√sum_r + eps)``;
rows without a gradient are untouched in both. torchrec's version needs a dense (V, D) gradient,
and ``nn.Embedding``'s dense backward adds one row at a time (24 ms for 100K lookups on this CPU);
the sparse backward is free and this step costs O(rows looked up), not O(V). Dense gradients are
accepted too. The state ("step", "sum" (V, 1)) has torchrec's layout.

On CPU, sparse float32 gradients take the single-pass native kernel of
``native/sparse_rowwise_adagrad.cpp`` (no sort: a per-row slot map sums duplicates in lookup
order); :meth:`SparseRowWiseAdagrad.step_plain` is the torch form, kept as the reference that a
test compares with and taken where the kernel does not apply (``MUSE_ADAGRAD_DISABLE_NATIVE=1``).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from muse.core.native_build import PORTABLE_FLAGS, NativeSource, load_optional

ADAGRAD_KERNEL = NativeSource(
    name="sparse_rowwise_adagrad",
    path=Path(__file__).parent / "native" / "sparse_rowwise_adagrad.cpp",
    signatures={"sparse_rowwise_adagrad_step": "q pppppqqqff"},
    flags=PORTABLE_FLAGS,
)


@functools.cache
def load_kernel() -> ctypes.CDLL | None:
    """The loaded kernel, or None when it cannot be built here (the torch form is used)."""
    return load_optional(ADAGRAD_KERNEL, "MUSE_ADAGRAD_DISABLE_NATIVE")


class SparseRowWiseAdagrad(torch.optim.Optimizer):
    """Row-wise Adagrad for (V, D) embedding weights with sparse or dense gradients."""

    def __init__(
        self, params: Iterable[nn.Parameter], lr: float = 1e-2, eps: float = 1e-10
    ) -> None:
        if lr < 0 or eps < 0:
            raise ValueError(f"lr and eps must be ≥ 0, got {lr} and {eps}")
        super().__init__(params, {"lr": lr, "eps": eps})
        # Per-parameter slot maps of the native kernel (V,) int64, all -1 between steps; scratch,
        # so kept out of ``state`` (and out of checkpoints).
        self._slots: dict[nn.Parameter, torch.Tensor] = {}
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.dim() != 2:
                    raise ValueError(
                        f"row-wise Adagrad needs (V, D) weights, got {tuple(parameter.shape)}"
                    )
                state = self.state[parameter]
                state["step"] = torch.tensor(0.0)
                state["sum"] = torch.zeros(
                    (parameter.shape[0], 1), dtype=parameter.dtype, device=parameter.device
                )

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every parameter that has a gradient (native kernel where it applies)."""
        return self._step(closure, native=True)

    @torch.no_grad()
    def step_plain(self, closure: Callable[[], float] | None = None) -> float | None:
        """``step`` in torch ops only (the reference)."""
        return self._step(closure, native=False)

    def _native_step(self, parameter: nn.Parameter, lr: float, eps: float) -> bool:
        """Update ``parameter`` from its sparse gradient with the kernel; False if it cannot."""
        kernel = load_kernel()
        gradient = parameter.grad
        assert gradient is not None
        if kernel is None or parameter.device.type != "cpu" or parameter.dtype != torch.float32:
            return False
        if not (parameter.is_contiguous() and self.state[parameter]["sum"].is_contiguous()):
            return False
        indices = gradient._indices()[0].contiguous()
        values = gradient._values().contiguous()
        slots = self._slots.get(parameter)
        if slots is None:
            slots = self._slots[parameter] = torch.full(
                (parameter.shape[0],), -1, dtype=torch.int64
            )
        updated = kernel.sparse_rowwise_adagrad_step(
            parameter.data_ptr(),
            self.state[parameter]["sum"].data_ptr(),
            slots.data_ptr(),
            indices.data_ptr(),
            values.data_ptr(),
            indices.numel(),
            parameter.shape[0],
            parameter.shape[1],
            lr,
            eps,
        )
        if updated < 0:
            raise IndexError(
                f"a sparse gradient row is outside the table of {parameter.shape[0]} rows"
            )
        return True

    def _step(self, closure: Callable[[], float] | None, native: bool) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, eps = group["lr"], group["eps"]
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                state = self.state[parameter]
                state["step"] += 1
                row_sums = state["sum"]
                if parameter.grad.is_sparse and native and self._native_step(parameter, lr, eps):
                    continue
                if parameter.grad.is_sparse:
                    rows, gradient = summed_rows(parameter.grad)
                    sums = row_sums.index_select(0, rows) + gradient.pow(2).mean(
                        dim=1, keepdim=True
                    )
                    row_sums.index_copy_(0, rows, sums)
                    parameter.index_add_(0, rows, gradient / (sums.sqrt() + eps), alpha=-lr)
                else:
                    gradient = parameter.grad
                    row_sums += gradient.pow(2).mean(dim=1, keepdim=True)
                    parameter.addcdiv_(gradient, row_sums.sqrt().add_(eps), value=-lr)
        return loss


def summed_rows(gradient: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows (M,) of a sparse (V, D) gradient and their summed gradients (M, D).

    Duplicates are summed in lookup order with ``index_add_`` (as the dense backward does), which
    is cheaper on CPU than ``coalesce``.
    """
    if gradient.is_coalesced():
        return gradient.indices()[0], gradient.values()
    rows, inverse = torch.unique(gradient._indices()[0], return_inverse=True)
    values = gradient._values()
    summed = values.new_zeros((rows.numel(), values.shape[1])).index_add_(0, inverse, values)
    return rows, summed


def use_sparse_gradients(model: nn.Module, parameter_names: set[str]) -> None:
    """Make every ``nn.Embedding`` whose weight is in ``parameter_names`` emit sparse gradients."""
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        if isinstance(module, nn.Embedding) and f"{prefix}weight" in parameter_names:
            module.sparse = True
