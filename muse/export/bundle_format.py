"""The model bundle format (version 2), shared by each task's writer (``muse export``) and the server.

```
<bundle>/
  manifest.json          format version, task, name, version, creation time, the task's own
                         entries, and the sha256 of every other file in the bundle
  ...                    the task's files (ranking: muse.ranking.export.bundle_layout)
```

A reader names the task it expects; a bundle of another task (or of none) is refused. A bundle
may reference the large item multimodal embedding table, shared by every bundle of a dataset,
instead of copying it (path, shape, dtype, scale, sha256). Imports no torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from muse.core.errors import DataError
from muse.core.task_kind import TaskKind

# 2: the manifest names its task.
BUNDLE_FORMAT_VERSION = 2
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class ItemTableReference:
    """Where the item multimodal embedding table lives and how to check it is the right one."""

    path: str
    sha256: str
    dtype: str
    shape: tuple[int, int]
    scale: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemTableReference:
        rows, dim = data["shape"]
        return cls(
            str(data["path"]),
            str(data["sha256"]),
            str(data["dtype"]),
            (int(rows), int(dim)),
            float(data["scale"]),
        )


def sha256_of(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_files(directory: Path) -> list[str]:
    """Relative posix paths of every file under ``directory`` except the manifest."""
    return [
        path.relative_to(directory).as_posix()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.relative_to(directory).as_posix() != MANIFEST_FILE
    ]


def file_checksums(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory`` except the manifest, keyed by relative posix path."""
    return {name: sha256_of(directory / name) for name in bundle_files(directory)}


def manifest_header(task: TaskKind) -> dict[str, Any]:
    """The entries every manifest opens with: the format version and the task."""
    return {"bundle_format_version": BUNDLE_FORMAT_VERSION, "task": task.value}


def read_manifest(bundle: str | Path, task: TaskKind, verify: bool = True) -> dict[str, Any]:
    """The manifest of ``bundle``, a bundle of ``task``; with ``verify``, every listed file must
    exist with its sha256.

    Raises DataError naming the manifest when its version or task is not the expected one, or
    the file that is missing, unlisted or corrupt.
    """
    bundle = Path(bundle)
    path = bundle / MANIFEST_FILE
    if not path.is_file():
        raise DataError(path, "not a model bundle (manifest.json is missing)")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("bundle_format_version") != BUNDLE_FORMAT_VERSION:
        raise DataError(
            path,
            f"bundle_format_version {manifest.get('bundle_format_version')} is not {BUNDLE_FORMAT_VERSION}",
        )
    if "task" not in manifest:
        raise DataError(path, f"the manifest names no task; expected a {task.value!r} bundle")
    if manifest["task"] != task.value:
        raise DataError(
            path, f"a bundle of task {manifest['task']!r}, expected a {task.value!r} bundle"
        )
    if verify:
        listed: dict[str, str] = manifest["files"]
        for name, expected in listed.items():
            file = bundle / name
            if not file.is_file():
                raise DataError(file, "listed in the bundle manifest but missing")
            if sha256_of(file) != expected:
                raise DataError(
                    file, "sha256 differs from the bundle manifest (corrupt or modified)"
                )
        unlisted = sorted(set(bundle_files(bundle)) - set(listed))
        if unlisted:
            raise DataError(
                bundle / unlisted[0], "file in the bundle is not listed in its manifest"
            )
    return manifest
