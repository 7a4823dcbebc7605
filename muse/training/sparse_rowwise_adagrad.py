"""Row-wise Adagrad over ID tables that reads sparse row gradients: only the rows a batch touched.

The update is torchrec's ``RowWiseAdagrad`` (the plain reference; a test compares them): for each
row r with gradient g_r (D,), ``sum_r += mean(g_r²)`` and ``w_r -= lr · g_r / (√sum_r + eps)``;
rows without a gradient are untouched in both. torchrec's version needs a dense (V, D) gradient,
and ``nn.Embedding``'s dense backward adds one row at a time (24 ms for 100K lookups on this CPU);
the sparse backward is free and this step costs O(rows looked up), not O(V). Dense gradients are
accepted too. The state ("step", "sum" (V, 1)) has torchrec's layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


class SparseRowWiseAdagrad(torch.optim.Optimizer):
    """Row-wise Adagrad for (V, D) embedding weights with sparse or dense gradients."""

    def __init__(
        self, params: Iterable[nn.Parameter], lr: float = 1e-2, eps: float = 1e-10
    ) -> None:
        if lr < 0 or eps < 0:
            raise ValueError(f"lr and eps must be ≥ 0, got {lr} and {eps}")
        super().__init__(params, {"lr": lr, "eps": eps})
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
        """One update of every parameter that has a gradient."""
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
