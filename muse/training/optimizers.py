"""Optimisers of a model with ID tables: AdamW on dense layers, row-wise Adagrad on ID tables.

Optimisers live here, never in models. Under DistributedModelParallel the row-wise Adagrad is
fused into the sharded lookup (see model_parallel), so only the dense optimiser is stepped here;
otherwise it is SparseRowWiseAdagrad, which reads the tables' sparse row gradients.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from muse.training.sparse_rowwise_adagrad import SparseRowWiseAdagrad
from muse.training.training_config import TrainingConfig


class Optimizers(NamedTuple):
    """dense: AdamW over non-embedding parameters. sparse: row-wise Adagrad over the ID tables,
    or None when it is fused into a sharded model (``fused`` then holds that model's optimiser)."""

    dense: torch.optim.Optimizer
    sparse: torch.optim.Optimizer | None
    fused: Any | None

    def zero_grad(self) -> None:
        self.dense.zero_grad(set_to_none=True)
        if self.sparse is not None:
            self.sparse.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.dense.step()
        if self.sparse is not None:
            self.sparse.step()


def build_optimizers(
    model: nn.Module, sparse_names: set[str], config: TrainingConfig, fused: Any | None = None
) -> Optimizers:
    """AdamW on parameters outside ``sparse_names``; row-wise Adagrad on them unless ``fused``."""
    dense_parameters: list[nn.Parameter] = []
    sparse_parameters: list[nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (sparse_parameters if name in sparse_names else dense_parameters).append(parameter)
    if not dense_parameters:
        raise ValueError("the model has no dense parameters to optimise")
    dense = torch.optim.AdamW(
        dense_parameters, lr=config.dense_learning_rate, weight_decay=config.dense_weight_decay
    )
    sparse = None
    if fused is None and sparse_parameters:
        sparse = SparseRowWiseAdagrad(
            sparse_parameters, lr=config.sparse_learning_rate, eps=config.sparse_eps
        )
    return Optimizers(dense=dense, sparse=sparse, fused=fused)
