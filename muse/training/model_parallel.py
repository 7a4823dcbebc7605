"""Wrap a model with ID tables in torchrec DistributedModelParallel for multi-process training.

The ID tables (every torchrec EmbeddingCollection / EmbeddingBagCollection in the model) are
sharded row-wise or table-wise — data-parallel EmbeddingCollection tables fail on CPU — and their
row-wise Adagrad update is fused into the lookup's backward. Dense layers are data-parallel.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from fbgemm_gpu.split_embedding_configs import EmbOptimType
from torch import nn
from torchrec import EmbeddingBagCollection, EmbeddingCollection
from torchrec.distributed.embedding import EmbeddingCollectionSharder
from torchrec.distributed.embedding_types import EmbeddingComputeKernel
from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
from torchrec.distributed.model_parallel import DistributedModelParallel
from torchrec.distributed.planner import EmbeddingShardingPlanner, ParameterConstraints
from torchrec.distributed.planner.storage_reservations import FixedPercentageStorageReservation
from torchrec.distributed.planner.types import KernelConfig, TopologyFactory, TrainerConfig
from torchrec.distributed.types import ShardingType

from muse.training.distributed import DistributedContext

EMBEDDING_MODULES = (EmbeddingCollection, EmbeddingBagCollection)


def embedding_parameter_names(model: nn.Module) -> set[str]:
    """Names of the parameters owned by torchrec embedding modules (the sparse parameters)."""
    names: set[str] = set()
    for module_name, module in model.named_modules():
        if isinstance(module, EMBEDDING_MODULES):
            prefix = f"{module_name}." if module_name else ""
            names.update(prefix + name for name, _ in module.named_parameters())
    return names


def _table_names(model: nn.Module) -> list[str]:
    names = []
    for module in model.modules():
        if isinstance(module, EmbeddingCollection):
            names += [table.name for table in module.embedding_configs()]
        elif isinstance(module, EmbeddingBagCollection):
            names += [table.name for table in module.embedding_bag_configs()]
    return names


def shard_model(
    model: nn.Module, context: DistributedContext, sparse_learning_rate: float, sparse_eps: float
) -> DistributedModelParallel:
    """DistributedModelParallel over all ranks with fused row-wise Adagrad on the ID tables."""
    fused_params = {
        "optimizer": EmbOptimType.EXACT_ROWWISE_ADAGRAD,
        "learning_rate": sparse_learning_rate,
        "eps": sparse_eps,
    }
    sharders = [
        EmbeddingCollectionSharder(fused_params=fused_params),
        EmbeddingBagCollectionSharder(fused_params=fused_params),
    ]
    constraints = {
        name: ParameterConstraints(
            sharding_types=[ShardingType.ROW_WISE.value, ShardingType.TABLE_WISE.value],
            compute_kernels=[EmbeddingComputeKernel.FUSED.value],
        )
        for name in _table_names(model)
    }
    local_world_size = int(torch.cuda.device_count()) if context.device.type == "cuda" else None
    topology = TopologyFactory.create_topology(
        TrainerConfig(world_size=context.world_size, local_world_size=local_world_size),
        kernel_config=KernelConfig(compute_device=context.device.type),
    )
    planner = EmbeddingShardingPlanner(
        topology=topology,
        constraints=constraints,
        # The default heuristic reservation over-estimates dense memory (torchrec warns about it).
        storage_reservation=FixedPercentageStorageReservation(0.15),
    )
    plan = planner.collective_plan(model, sharders, dist.GroupMember.WORLD)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        # torchrec 1.8 passes DDP an argument torch 2.13 deprecates; nothing to act on here.
        warnings.filterwarnings("ignore", "`broadcast_buffers` is deprecated", FutureWarning)
        return DistributedModelParallel(model, device=context.device, plan=plan, sharders=sharders)  # type: ignore[arg-type]
