"""Place a task's unsharded model for this process: plain on one process, sharded under torchrun."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from muse.training.distributed import DistributedContext
from muse.training.model_parallel import embedding_parameter_names, shard_model
from muse.training.sharded_state import fill_local, gather_full
from muse.training.sparse_rowwise_adagrad import use_sparse_gradients


class PreparedModel(NamedTuple):
    """module: the model to call (DistributedModelParallel when sharded). sparse_names: names of
    the ID-table parameters. fused_optimizer: the sharded tables' fused optimiser, else None."""

    module: nn.Module
    sparse_names: set[str]
    fused_optimizer: Any | None

    @property
    def is_sharded(self) -> bool:
        return self.fused_optimizer is not None


def place_model(
    model: nn.Module, context: DistributedContext, sparse_learning_rate: float, sparse_eps: float
) -> PreparedModel:
    """``model`` on this process's device; sharded over the ranks when the job is distributed."""
    sparse_names = embedding_parameter_names(model)
    if context.is_distributed:
        sharded = shard_model(model, context, sparse_learning_rate, sparse_eps)
        return PreparedModel(sharded, sparse_names, sharded.fused_optimizer)
    # Unsharded ID tables emit sparse row gradients for SparseRowWiseAdagrad (O(rows looked up)).
    use_sparse_gradients(model, sparse_names)
    return PreparedModel(model.to(context.device), sparse_names, None)


def full_model_state(
    prepared: PreparedModel, context: DistributedContext
) -> dict[str, torch.Tensor] | None:
    """The model's full CPU state dict on rank 0 (None elsewhere). Collective when sharded."""
    state = gather_full(prepared.module.state_dict(), context.is_main)
    return state if context.is_main else None


def load_model_state(prepared: PreparedModel, state: dict[str, torch.Tensor]) -> None:
    """Load a full (unsharded) state dict into the plain or sharded model."""
    if prepared.is_sharded:
        state = fill_local(prepared.module.state_dict(), state)
    prepared.module.load_state_dict(state)
