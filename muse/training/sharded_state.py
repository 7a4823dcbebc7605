"""Plain (unsharded) copies of sharded state dicts, and loading them back into shards.

Checkpoints always hold full tensors, so a model trained on N processes loads into a plain model
(evaluation, export, serving) or into any sharding plan. Gathering is collective: every rank
calls these functions in the same order; only rank 0 receives the full tensors.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.distributed._shard.sharded_tensor import ShardedTensor


def gather_full(state: Any, is_main: bool) -> Any:
    """``state`` (nested dicts/lists of tensors) with every ShardedTensor gathered to rank 0.

    Rank 0 gets full CPU tensors; other ranks get None in their place. Plain tensors are cloned
    to the CPU on every rank.
    """
    if isinstance(state, ShardedTensor):
        with warnings.catch_warnings():
            # torchrec 1.8's sharded modules still hand out ShardedTensor, deprecated in torch.
            warnings.filterwarnings("ignore", "Please use DTensor", FutureWarning)
            full = torch.empty(state.size(), dtype=state.dtype) if is_main else None
            state.gather(dst=0, out=full)
        return full
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {key: gather_full(value, is_main) for key, value in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(gather_full(value, is_main) for value in state)
    return state


def fill_local(local: Any, full: Any) -> Any:
    """``local`` (a sharded state dict) with each ShardedTensor's local shards copied from ``full``.

    Returns the structure to pass to ``load_state_dict``; plain entries are taken from ``full``.
    """
    if isinstance(local, ShardedTensor):
        for shard in local.local_shards():
            region = tuple(
                slice(offset, offset + size)
                for offset, size in zip(
                    shard.metadata.shard_offsets, shard.metadata.shard_sizes, strict=True
                )
            )
            shard.tensor.detach().copy_(full[region])
        return local
    if isinstance(local, dict):
        missing = set(local) - set(full)
        if missing:
            raise KeyError(f"checkpoint lacks state {sorted(missing)}")
        return {key: fill_local(value, full[key]) for key, value in local.items()}
    if isinstance(local, list | tuple):
        return type(local)(
            fill_local(value, full_value) for value, full_value in zip(local, full, strict=True)
        )
    return full
