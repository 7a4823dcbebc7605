"""The GSU C++ kernels, built once per machine and loaded via ctypes (see muse.core.native_build).

One source, two builds: AVX2 everywhere it runs, and AVX512-VNNI (one vpdpbusd per multiply-add
step instead of three instructions; the same integers, so the same results) on CPUs that have
it. $MUSE_GSU_DISABLE_VNNI=1 keeps the AVX2 build. When the CPU lacks AVX2/FMA or no compiler is
available, :func:`load_native_library` returns None and searches use the torch backend.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from pathlib import Path

import torch

from muse.core.native_build import (
    AVX512_VNNI_FLAGS,
    VNNI_CPU_FLAGS,
    NativeSource,
    build_native,
    cpu_flags,
    load_optional,
    native_cache_dir,
)

LOGGER = logging.getLogger(__name__)

__all__ = [
    "build_native_library",
    "cpu_supports_kernels",
    "cpu_supports_vnni",
    "load_native_library",
    "loaded_variant",
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


GSU_KERNELS_VNNI = NativeSource(
    name="gsu_kernels_vnni",
    path=GSU_KERNELS.path,
    signatures=GSU_KERNELS.signatures,
    flags=AVX512_VNNI_FLAGS,
)


def cpu_supports_vnni() -> bool:
    """True when the CPU runs the AVX512-VNNI build (VNNI on 256-bit registers)."""
    return VNNI_CPU_FLAGS.issubset(cpu_flags())


def cpu_supports_kernels() -> bool:
    """True when the CPU has AVX2 and FMA (torch's AVX2/AVX512 capability implies both)."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def _preferred_source() -> NativeSource:
    if cpu_supports_vnni() and os.environ.get("MUSE_GSU_DISABLE_VNNI") != "1":
        return GSU_KERNELS_VNNI
    return GSU_KERNELS


def build_native_library() -> Path:
    """Compile this CPU's build of the GSU kernels if no cached one exists; returns its path."""
    return build_native(_preferred_source())


@functools.cache
def load_native_library() -> ctypes.CDLL | None:
    """The loaded kernels, or None (with a logged reason) when they cannot be used here."""
    return _load_variant()[1]


@functools.cache
def _load_variant() -> tuple[str, ctypes.CDLL | None]:
    if not cpu_supports_kernels():
        LOGGER.info("GSU native kernels need AVX2+FMA; using the torch backend")
        return "none", None
    source = _preferred_source()
    library = load_optional(source, "MUSE_GSU_DISABLE_NATIVE")
    if (
        library is None
        and source is GSU_KERNELS_VNNI
        and os.environ.get("MUSE_GSU_DISABLE_NATIVE") != "1"
    ):
        source, library = GSU_KERNELS, load_optional(GSU_KERNELS, "MUSE_GSU_DISABLE_NATIVE")
    return (source.name if library is not None else "none"), library


def loaded_variant() -> str:
    """Which build :func:`load_native_library` loaded: gsu_kernels_vnni, gsu_kernels or none."""
    return _load_variant()[0]
