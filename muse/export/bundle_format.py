"""The model bundle format (version 1), shared by the writer (``muse export``) and the server.

```
<bundle>/
  manifest.json          format version, name, version, creation time, feature schema version,
                         model config, serving recipe, item-table reference, sha256 of every file
  score.onnx             ESU + tower (dynamic batch B, top-K K and recent N axes)
  score.onnx.data        its weights
  vocab/*.parquet        the dataset's vocabularies (raw id → index)
  item_features.npy      (V_item, 1 + A) int32: category index, then attribute indices, per item index
  user_ids.npy           (U,) int64 sorted raw user ids with a profile
  user_profiles.npy      (U, P) int32 profile feature indices of those users
```

The item multimodal embedding table is large and shared by every bundle of a dataset, so the
bundle references it (path, shape, dtype, scale, sha256) instead of copying it. Imports no torch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from muse.core.errors import DataError

BUNDLE_FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
GRAPH_FILE = "score.onnx"
VOCABULARY_DIRECTORY = "vocab"
ITEM_FEATURES_FILE = "item_features.npy"
USER_IDS_FILE = "user_ids.npy"
USER_PROFILES_FILE = "user_profiles.npy"

# First stages the server can run itself; the others need learned weights in the first stage.
SERVABLE_SEARCH_KINDS = ("none", "multimodal_cosine", "same_category")


@dataclass(frozen=True)
class ServingRecipe:
    """What the server must compute before the ONNX graph, derived from the model config.

    search: the first stage, one of SERVABLE_SEARCH_KINDS. top_k: K. recent_length: N (0 = the
    whole history). uses_multimodal: whether target MM embeddings are read at all.
    recent_cosines / selected_cosines: whether those cosines are computed (else zeros).
    item_attributes / profile_features: column order of target_attributes / user_profile.
    """

    search: str
    top_k: int
    recent_length: int
    uses_multimodal: bool
    recent_cosines: bool
    selected_cosines: bool
    item_attributes: tuple[str, ...]
    profile_features: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["item_attributes"] = list(self.item_attributes)
        data["profile_features"] = list(self.profile_features)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServingRecipe:
        return cls(
            search=str(data["search"]),
            top_k=int(data["top_k"]),
            recent_length=int(data["recent_length"]),
            uses_multimodal=bool(data["uses_multimodal"]),
            recent_cosines=bool(data["recent_cosines"]),
            selected_cosines=bool(data["selected_cosines"]),
            item_attributes=tuple(data["item_attributes"]),
            profile_features=tuple(data["profile_features"]),
        )


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


def read_manifest(bundle: str | Path, verify: bool = True) -> dict[str, Any]:
    """The manifest of ``bundle``; with ``verify``, every listed file must exist with its sha256.

    Raises DataError naming the file that is missing, unlisted or corrupt.
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
