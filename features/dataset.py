"""The internal dataset format (docs/data-format.md): one writer, one memory-mapped reader."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.vocabulary import Vocabulary
from muse.core.atomic_write import atomic_directory
from muse.core.errors import DataError

FORMAT_VERSION = 1
SPLITS = ("train", "test")
SAMPLE_COLUMNS = {
    "user_index": pl.Int32,
    "item_index": pl.Int32,
    "label": pl.Int8,
    "history_end": pl.Int64,
    "timestamp": pl.Int64,
}


@dataclass
class DatasetParts:
    """Everything a reader produces, ready to be written as one dataset directory."""

    vocabularies: dict[str, Vocabulary]
    items: pl.DataFrame
    item_embeddings: np.ndarray
    sequence_offsets: np.ndarray
    sequence_items: np.ndarray
    sequence_categories: np.ndarray
    sequence_timestamps: np.ndarray
    users: pl.DataFrame
    samples: dict[str, pl.DataFrame]
    embedding_scale: float = 1.0
    item_attributes: tuple[str, ...] = ()
    profile_features: tuple[str, ...] = ()
    extra_files: dict[str, pl.DataFrame] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)


def write_dataset(parts: DatasetParts, target: str | Path) -> Path:
    """Validate ``parts`` and write them atomically to directory ``target``."""
    target = Path(target)
    _check_parts(parts, target)
    with atomic_directory(target) as staging:
        (staging / "vocab").mkdir()
        (staging / "sequences").mkdir()
        (staging / "samples").mkdir()
        for name, vocabulary in parts.vocabularies.items():
            vocabulary.save(staging / "vocab" / f"{name}.parquet")
        parts.items.write_parquet(staging / "items.parquet")
        np.save(staging / "item_embeddings.npy", parts.item_embeddings)
        np.save(staging / "sequences" / "offsets.npy", parts.sequence_offsets.astype(np.int64, copy=False))
        np.save(staging / "sequences" / "items.npy", parts.sequence_items.astype(np.int32, copy=False))
        np.save(
            staging / "sequences" / "categories.npy",
            parts.sequence_categories.astype(np.int32, copy=False),
        )
        np.save(
            staging / "sequences" / "timestamps.npy",
            parts.sequence_timestamps.astype(np.int64, copy=False),
        )
        parts.users.write_parquet(staging / "users.parquet")
        for split, frame in parts.samples.items():
            frame.select(
                [pl.col(name).cast(dtype) for name, dtype in SAMPLE_COLUMNS.items()]
            ).write_parquet(staging / "samples" / f"{split}.parquet")
        for name, frame in parts.extra_files.items():
            frame.write_parquet(staging / name)
        manifest = {
            "format_version": FORMAT_VERSION,
            "created_unix": int(time.time()),
            "num_items": int(parts.item_embeddings.shape[0]),
            "num_users": int(parts.sequence_offsets.size - 1),
            "num_events": int(parts.sequence_items.size),
            "num_samples": {split: int(frame.height) for split, frame in parts.samples.items()},
            "embedding_dim": int(parts.item_embeddings.shape[1]),
            "embedding_dtype": str(parts.item_embeddings.dtype),
            "embedding_scale": float(parts.embedding_scale),
            "item_attributes": list(parts.item_attributes),
            "profile_features": list(parts.profile_features),
            "vocabulary_sizes": {name: len(v) for name, v in parts.vocabularies.items()},
            "source": parts.source,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return target


def _check_parts(parts: DatasetParts, target: Path) -> None:
    embeddings = parts.item_embeddings
    if embeddings.ndim != 2 or embeddings.dtype not in (np.int8, np.float16):
        raise DataError(target, f"item embeddings must be a 2-D int8 or float16 array, got {embeddings.dtype}")
    if "item" not in parts.vocabularies or embeddings.shape[0] != len(parts.vocabularies["item"]):
        raise DataError(target, "item embedding rows must match the item vocabulary (ids + padding + OOV)")
    offsets = parts.sequence_offsets
    if offsets.ndim != 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise DataError(target, "sequence offsets must start at 0 and never decrease")
    if offsets[-1] != parts.sequence_items.size:
        raise DataError(target, "sequence offsets do not cover the behaviour arrays")
    lengths = {parts.sequence_items.size, parts.sequence_categories.size, parts.sequence_timestamps.size}
    if len(lengths) != 1:
        raise DataError(target, "sequence items, categories and timestamps differ in length")
    if parts.users.height != offsets.size - 1:
        raise DataError(target, "users table must have one row per sequence row")
    for split, frame in parts.samples.items():
        missing = [name for name in SAMPLE_COLUMNS if name not in frame.columns]
        if missing:
            raise DataError(target, f"samples/{split} lacks column(s) {missing}")


class Dataset:
    """Read-only view of a dataset directory; big arrays are memory-mapped, never loaded whole."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not self.root.is_dir():
            raise DataError(self.root, "no dataset there (`muse data prepare` writes one)")
        if not manifest_path.is_file():
            raise DataError(self.root, "not a dataset directory (manifest.json is missing)")
        self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise DataError(
                manifest_path,
                f"format_version {self.manifest.get('format_version')} is not {FORMAT_VERSION}",
            )
        self.item_embeddings: np.ndarray = np.load(self.root / "item_embeddings.npy", mmap_mode="r")
        sequences = self.root / "sequences"
        self.sequence_offsets: np.ndarray = np.load(sequences / "offsets.npy", mmap_mode="r")
        self.sequence_items: np.ndarray = np.load(sequences / "items.npy", mmap_mode="r")
        self.sequence_categories: np.ndarray = np.load(sequences / "categories.npy", mmap_mode="r")
        self.sequence_timestamps: np.ndarray = np.load(sequences / "timestamps.npy", mmap_mode="r")
        self._vocabularies: dict[str, Vocabulary] = {}

    @property
    def embedding_dim(self) -> int:
        return int(self.manifest["embedding_dim"])

    @property
    def embedding_scale(self) -> float:
        return float(self.manifest["embedding_scale"])

    @property
    def num_users(self) -> int:
        return int(self.sequence_offsets.size - 1)

    @property
    def item_attributes(self) -> list[str]:
        return list(self.manifest["item_attributes"])

    @property
    def profile_features(self) -> list[str]:
        return list(self.manifest["profile_features"])

    def vocabulary(self, name: str) -> Vocabulary:
        """The vocabulary ``name`` (``item``, ``category``, an attribute or ``profile_<name>``)."""
        if name not in self._vocabularies:
            path = self.root / "vocab" / f"{name}.parquet"
            if not path.is_file():
                raise DataError(path, f"no vocabulary named {name!r}")
            self._vocabularies[name] = Vocabulary.load(path)
        return self._vocabularies[name]

    def vocabulary_size(self, name: str) -> int:
        """Rows an embedding table over vocabulary ``name`` needs."""
        return int(self.manifest["vocabulary_sizes"][name])

    def items(self) -> pl.DataFrame:
        """The item table (item_index order)."""
        return pl.read_parquet(self.root / "items.parquet")

    def users(self) -> pl.DataFrame:
        """The user table (user_index order) with profile feature indices."""
        return pl.read_parquet(self.root / "users.parquet")

    def samples(self, split: str) -> pl.DataFrame:
        """Samples of ``split`` (``train`` or ``test``)."""
        path = self.root / "samples" / f"{split}.parquet"
        if not path.is_file():
            raise DataError(path, f"dataset has no {split!r} split")
        return pl.read_parquet(path)

    def history(self, user_index: int, history_end: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(items, categories) of a user's visible history, oldest first (views into the mmap)."""
        start = int(self.sequence_offsets[user_index])
        stop = int(self.sequence_offsets[user_index + 1])
        if history_end is not None:
            stop = min(stop, start + int(history_end))
        return self.sequence_items[start:stop], self.sequence_categories[start:stop]

    def click_probability(self) -> np.ndarray | None:
        """True click probability of each test sample (synthetic data only), else None."""
        path = self.root / "test_click_probability.parquet"
        if not path.is_file():
            return None
        return pl.read_parquet(path)["probability"].to_numpy()
