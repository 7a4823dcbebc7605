"""The one place that picks how GSU searches run on this machine: native CPU kernels or torch.

- ``NATIVE_CPU``: the fused AVX2 (or AVX512-VNNI) kernels of :mod:`muse.search.native_library`
  (int8 history x 7-bit (8-bit) candidate multiply-adds with a bounded error, exact fp32 scoring
  of the few rows that can enter the top-K). Chosen for CPU tensors when the kernels build and load.
- ``TORCH``: chunked exact fp32 matmul with a running ``torch.topk``, on the tensors' own device.
  Chosen for CUDA tensors (the GPU does the work) and as the CPU fallback. Exact on GPUs under
  torch's default fp32 matmul precision ("highest": no TF32). faiss-gpu is not used: exact
  search on a GPU is one matmul and a topk per chunk, which torch already does at full speed.

AMX is detected and reported (:func:`hardware_info`) but not used: the development machine has
no AMX, so a bf16-matmul path could not be measured against the int8 kernel, which runs on any
AVX2 CPU.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

import torch

from muse.search.native_library import load_native_library, loaded_variant


class SearchBackend(enum.Enum):
    NATIVE_CPU = "native-cpu"
    TORCH = "torch"


@dataclass(frozen=True)
class HardwareInfo:
    """What this machine offers the search."""

    cpu_capability: str
    amx_bf16: bool
    cuda: bool
    native_kernels: bool
    threads: int
    native_build: str = "none"  # which build of the kernels loaded (see native_library)


def hardware_info() -> HardwareInfo:
    """Probe CPU capability, AMX, CUDA and the native kernels (builds them on first call)."""
    amx_probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return HardwareInfo(
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        amx_bf16=bool(amx_probe()) if amx_probe is not None else False,
        cuda=torch.cuda.is_available(),
        native_kernels=load_native_library() is not None,
        threads=torch.get_num_threads(),
        native_build=loaded_variant(),
    )


def select_backend(device: torch.device | str | None = None) -> SearchBackend:
    """The backend for tensors on ``device`` (CPU when None).

    $MUSE_GSU_BACKEND (``native-cpu`` or ``torch``) forces a choice for CPU tensors.
    """
    resolved = torch.device(device) if device is not None else torch.device("cpu")
    if resolved.type != "cpu":
        return SearchBackend.TORCH
    forced = os.environ.get("MUSE_GSU_BACKEND")
    if forced:
        backend = SearchBackend(forced)
        if backend is SearchBackend.NATIVE_CPU and load_native_library() is None:
            raise RuntimeError("MUSE_GSU_BACKEND=native-cpu but the native kernels are unavailable")
        return backend
    return SearchBackend.NATIVE_CPU if load_native_library() is not None else SearchBackend.TORCH


def search_threads() -> int:
    """Threads the native kernels use: torch's intra-op setting, so one knob governs both."""
    return max(1, torch.get_num_threads())
