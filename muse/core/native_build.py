"""Builds a C++ source into a shared object once per machine (cached by hash) and loads it.

The build needs only a C++17 compiler (g++ by default, or $CXX) and no network. Shared objects
are cached under $MUSE_NATIVE_CACHE, else $XDG_CACHE_HOME/muse/native, else ~/.cache/muse/native,
keyed by the source, the flags and the compiler version, and written atomically so that
concurrent processes can build at the same time. Torch-free: callers decide whether the CPU can
run the kernels and what to fall back to.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LOGGER = logging.getLogger(__name__)

PORTABLE_FLAGS = ("-O3", "-fPIC", "-shared", "-std=c++17")
AVX2_FLAGS = ("-O3", "-mavx2", "-mfma", "-mf16c", "-fPIC", "-shared", "-std=c++17", "-pthread")
# AVX2 plus AVX512-VNNI on 256-bit registers (vpdpbusd); wider vectors are not preferred, so
# no other loop changes width. Only for CPUs with every flag of VNNI_CPU_FLAGS.
AVX512_VNNI_FLAGS = AVX2_FLAGS + (
    "-mavx512f",
    "-mavx512bw",
    "-mavx512vl",
    "-mavx512vnni",
    "-mprefer-vector-width=256",
)
VNNI_CPU_FLAGS = frozenset({"avx512f", "avx512bw", "avx512vl", "avx512_vnni"})

# Argument types, one letter each: p pointer, q int64, i int32, f float32, d float64 (first:
# result type, - for none).
CTYPES = {
    "p": ctypes.c_void_p,
    "q": ctypes.c_int64,
    "i": ctypes.c_int32,
    "f": ctypes.c_float,
    "d": ctypes.c_double,
    "-": None,
}


@dataclass(frozen=True)
class NativeSource:
    """One C++ file of kernels: its name (the cache file's prefix), path, flags and exports.

    signatures: exported function → "R ARGS", one CTYPES letter for the result and each argument.
    """

    name: str
    path: Path
    signatures: Mapping[str, str]
    flags: tuple[str, ...] = AVX2_FLAGS


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The instruction-set flags the kernel reports for this CPU (empty where it does not)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def native_cache_dir() -> Path:
    """Directory holding built kernels."""
    explicit = os.environ.get("MUSE_NATIVE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "muse" / "native"


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def _build_key(source: NativeSource, compiler: str) -> str:
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, check=False
    ).stdout
    digest = hashlib.sha256()
    digest.update(source.path.read_bytes())
    digest.update(" ".join(source.flags).encode())
    digest.update(version.encode())
    return digest.hexdigest()[:20]


def build_native(source: NativeSource) -> Path:
    """Compile ``source`` if no cached build exists; returns the shared object's path."""
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set $CXX)")
    target = native_cache_dir() / f"{source.name}-{_build_key(source, compiler)}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{source.name}-", suffix=".so", dir=target.parent)
    os.close(handle)
    try:
        result = subprocess.run(
            [compiler, *source.flags, "-o", staging, str(source.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building {source.name} failed:\n{result.stderr[-4000:]}")
        os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    # Builds of older sources are never loaded again (a process holding one keeps its inode).
    for stale in target.parent.glob(f"{source.name}-*.so"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


def load_native(source: NativeSource) -> ctypes.CDLL:
    """Build (if needed) and load ``source`` with its signatures; raises OSError/RuntimeError."""
    library = ctypes.CDLL(str(build_native(source)))
    for name, signature in source.signatures.items():
        result_type, argument_types = signature.split(" ")
        function = getattr(library, name)
        function.restype = CTYPES[result_type]
        function.argtypes = [CTYPES[letter] for letter in argument_types]
    return library


def load_optional(source: NativeSource, disable_variable: str) -> ctypes.CDLL | None:
    """``load_native(source)``, or None when $``disable_variable`` is "1" or the build fails
    (logged once per caller; the caller then takes its torch path)."""
    if os.environ.get(disable_variable) == "1":
        return None
    try:
        return load_native(source)
    except (OSError, RuntimeError) as error:
        LOGGER.warning("native %s unavailable (%s); using the torch path", source.name, error)
        return None
