"""Builds the GSU C++ kernels once per machine (cached by source hash) and loads them via ctypes.

The build needs only a C++17 compiler (g++ by default, or $CXX) and no network. The shared object
is cached under $MUSE_NATIVE_CACHE, else $XDG_CACHE_HOME/muse/native, else ~/.cache/muse/native,
keyed by the source, the flags and the compiler version, and written atomically so that
concurrent processes can build at the same time. When the CPU lacks AVX2/FMA or no compiler is
available, :func:`load_native_library` returns None and searches use the torch backend.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

LOGGER = logging.getLogger(__name__)

SOURCE_PATH = Path(__file__).parent / "native" / "gsu_kernels.cpp"
COMPILE_FLAGS = ("-O3", "-mavx2", "-mfma", "-mf16c", "-fPIC", "-shared", "-std=c++17", "-pthread")

# ExactKind values of gsu_kernels.cpp: where gsu_search_exact reads rows from.
EXACT_ROWS_FLOAT32 = 2
EXACT_TABLE_INT8 = 3
EXACT_TABLE_FLOAT16 = 4
EXACT_TABLE_FLOAT32 = 5

# Argument types, one letter each: p pointer, q int64, i int32, f float32, d float64 (first:
# result type, - for none).
_CTYPES = {
    "p": ctypes.c_void_p,
    "q": ctypes.c_int64,
    "i": ctypes.c_int32,
    "f": ctypes.c_float,
    "d": ctypes.c_double,
    "-": None,
}
_SIGNATURES = {
    "gsu_prepare_queries": "- pqqqfpppp",
    "gsu_pack_table_int8": "i pqqpqqppppqqq",
    "gsu_pack_rows_float32": "f ppqqppppqqq",
    "gsu_search_packed": "- ppppqqqpppppqqqqpppppp",
    "gsu_search_exact": "i ipqppqqqqpqqqppp",
    "gsu_probe_int8_rate": "d qq",
}


def native_cache_dir() -> Path:
    """Directory holding built kernels."""
    explicit = os.environ.get("MUSE_NATIVE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "muse" / "native"


def cpu_supports_kernels() -> bool:
    """True when the CPU has AVX2 and FMA (torch's AVX2/AVX512 capability implies both)."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def _build_key(compiler: str) -> str:
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, check=False
    ).stdout
    digest = hashlib.sha256()
    digest.update(SOURCE_PATH.read_bytes())
    digest.update(" ".join(COMPILE_FLAGS).encode())
    digest.update(version.encode())
    return digest.hexdigest()[:20]


def build_native_library() -> Path:
    """Compile the kernels if no cached build exists; returns the shared object's path."""
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set $CXX)")
    target = native_cache_dir() / f"gsu_kernels-{_build_key(compiler)}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".gsu_kernels-", suffix=".so", dir=target.parent)
    os.close(handle)
    try:
        result = subprocess.run(
            [compiler, *COMPILE_FLAGS, "-o", staging, str(SOURCE_PATH)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building GSU kernels failed:\n{result.stderr[-4000:]}")
        os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    # Builds of older sources are never loaded again (a process holding one keeps its inode).
    for stale in target.parent.glob("gsu_kernels-*.so"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


@functools.cache
def load_native_library() -> ctypes.CDLL | None:
    """The loaded kernels, or None (with a logged reason) when they cannot be used here."""
    if os.environ.get("MUSE_GSU_DISABLE_NATIVE") == "1":
        return None
    if not cpu_supports_kernels():
        LOGGER.info("GSU native kernels need AVX2+FMA; using the torch backend")
        return None
    try:
        library = ctypes.CDLL(str(build_native_library()))
    except (OSError, RuntimeError) as error:
        LOGGER.warning("GSU native kernels unavailable (%s); using the torch backend", error)
        return None
    for name, signature in _SIGNATURES.items():
        result_type, argument_types = signature.split(" ")
        function = getattr(library, name)
        function.restype = _CTYPES[result_type]
        function.argtypes = [_CTYPES[letter] for letter in argument_types]
    return library
