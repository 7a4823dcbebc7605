"""The process's place in a (possibly single-process) job: rank, world size, device, collectives.

Under ``torchrun`` (WORLD_SIZE > 1) the process group is gloo on CPU and NCCL on CUDA, and each
rank drives ``cuda:LOCAL_RANK``. A single process needs no process group at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from muse.training.training_config import Device


@dataclass(frozen=True)
class DistributedContext:
    """Rank, world size and device of this process; ``owns_group`` if it created the group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: Device = Device.AUTO) -> DistributedContext:
        """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK and join the process group if needed."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device is Device.CUDA or (device is Device.AUTO and torch.cuda.is_available())
        if use_cuda and not torch.cuda.is_available():
            raise RuntimeError("training.device = 'cuda' but CUDA is not available")
        if use_cuda:
            torch.cuda.set_device(local_rank)
            chosen = torch.device("cuda", local_rank)
        else:
            chosen = torch.device("cpu")
        owns_group = False
        if world_size > 1 and not dist.is_initialized():
            dist.init_process_group(
                backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size
            )
            owns_group = True
        return cls(
            rank=rank,
            world_size=world_size,
            local_rank=local_rank,
            device=chosen,
            owns_group=owns_group,
        )

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def all_gather_array(self, array: np.ndarray) -> list[np.ndarray]:
        """Every rank's ``array`` (same dtype, any length), in rank order, on every rank."""
        if not self.is_distributed:
            return [array]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, array)
        return [np.asarray(part) for part in gathered]

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
