"""The GSU C++ kernels, built once per machine and loaded via ctypes (see muse.core.native_build).

When the CPU lacks AVX2/FMA or no compiler is available, :func:`load_native_library` returns None
and searches use the torch backend.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from pathlib import Path

import torch

from muse.core.native_build import NativeSource, build_native, load_optional, native_cache_dir

LOGGER = logging.getLogger(__name__)

__all__ = [
    "build_native_library",
    "cpu_supports_kernels",
    "load_native_library",
    "native_cache_dir",
]

# ExactKind values of gsu_kernels.cpp: where gsu_search_exact reads rows from.
EXACT_ROWS_FLOAT32 = 2
EXACT_TABLE_INT8 = 3
EXACT_TABLE_FLOAT16 = 4
EXACT_TABLE_FLOAT32 = 5

GSU_KERNELS = NativeSource(
    name="gsu_kernels",
    path=Path(__file__).parent / "native" / "gsu_kernels.cpp",
    signatures={
        "gsu_prepare_queries": "- pqqqfpppp",
        "gsu_pack_table_int8": "i pqqpqqppppqqq",
        "gsu_pack_rows_float32": "f ppqqppppqqq",
        "gsu_search_packed": "- ppppqqqpppppqqqqpppppp",
        "gsu_search_exact": "i ipqppqqqqpqqqppp",
        "gsu_probe_int8_rate": "d qq",
    },
)


def cpu_supports_kernels() -> bool:
    """True when the CPU has AVX2 and FMA (torch's AVX2/AVX512 capability implies both)."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def build_native_library() -> Path:
    """Compile the GSU kernels if no cached build exists; returns the shared object's path."""
    return build_native(GSU_KERNELS)


@functools.cache
def load_native_library() -> ctypes.CDLL | None:
    """The loaded kernels, or None (with a logged reason) when they cannot be used here."""
    if not cpu_supports_kernels():
        LOGGER.info("GSU native kernels need AVX2+FMA; using the torch backend")
        return None
    return load_optional(GSU_KERNELS, "MUSE_GSU_DISABLE_NATIVE")
