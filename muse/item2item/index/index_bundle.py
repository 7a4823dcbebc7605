"""The similar-item index bundle: what ``muse i2i index`` writes and the server loads.

```
<bundle>/
  manifest.json       format version, task "item_to_item", name, version, index config, size,
                      width, the recall of the index against exact search, sha256 of every file,
                      and the encoder bundle that made the vectors when known ("encoder_bundle":
                      name of a directory beside this one, and version; see
                      muse.item2item.export.encoder_bundle_layout)
  index.faiss         the faiss index over unit vectors (row r is item_ids[r])
  item_ids.npy        (N,) int64 raw item ids
  item_categories.npy (N,) int64 category of each item (for SimilarItems' category filter)
  item_vectors.npy    (N, D) float32 unit vectors: the exact path and new-item scoring read them
  category_names.json the catalogue name of each category code
```

Written in a temporary sibling directory and renamed into place; loading verifies checksums.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from muse.core.atomic_write import atomic_directory
from muse.core.config_loader import config_from_dict, config_to_dict
from muse.core.errors import DataError
from muse.core.task_kind import TaskKind
from muse.export.bundle_format import (
    MANIFEST_FILE,
    file_checksums,
    manifest_header,
    read_manifest,
)
from muse.item2item.index.index_config import IndexConfig
from muse.item2item.index.similar_item_index import SimilarItemIndex

INDEX_FILE = "index.faiss"
ITEM_IDS_FILE = "item_ids.npy"
ITEM_CATEGORIES_FILE = "item_categories.npy"
ITEM_VECTORS_FILE = "item_vectors.npy"
CATEGORY_NAMES_FILE = "category_names.json"


def write_index_bundle(
    index: SimilarItemIndex,
    out: str | Path,
    *,
    name: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``index`` as a bundle at directory ``out``; measures its recall against exact search.

    ``extra`` adds manifest entries (for example where the embeddings came from). Returns the
    manifest written.
    """
    out = Path(out)
    name = name or out.name
    config = index.config
    recall = index.recall_against_exact(config.recall_queries, config.recall_k, config.seed)
    with atomic_directory(out) as staging:
        faiss.write_index(index.index, str(staging / INDEX_FILE))
        np.save(staging / ITEM_IDS_FILE, index.item_ids)
        np.save(staging / ITEM_CATEGORIES_FILE, index.categories)
        np.save(staging / ITEM_VECTORS_FILE, index.vectors)
        (staging / CATEGORY_NAMES_FILE).write_text(json.dumps(list(index.category_names)))
        files = file_checksums(staging)
        digest = hashlib.sha256("".join(files[file] for file in sorted(files)).encode())
        manifest = {
            **manifest_header(TaskKind.ITEM_TO_ITEM),
            "name": name,
            "version": f"{name}@{digest.hexdigest()[:12]}",
            "created_unix": int(time.time()),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "index": config_to_dict(config),
            "items": index.size,
            "dim": index.dim,
            "recall_against_exact": {
                "k": config.recall_k,
                "queries": min(config.recall_queries, index.size),
                "recall": recall,
            },
            "files": files,
            **(extra or {}),
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_index_bundle(
    path: str | Path, verify: bool = True
) -> tuple[SimilarItemIndex, dict[str, Any]]:
    """The index of the bundle at ``path`` and its manifest; DataError names a bad file."""
    path = Path(path)
    manifest = read_manifest(path, TaskKind.ITEM_TO_ITEM, verify=verify)
    config = config_from_dict(IndexConfig, manifest["index"], str(path / MANIFEST_FILE), "index.")
    index = faiss.read_index(str(path / INDEX_FILE))
    item_ids = np.load(path / ITEM_IDS_FILE)
    vectors = np.load(path / ITEM_VECTORS_FILE)
    if index.ntotal != item_ids.size or vectors.shape != (item_ids.size, index.d):
        raise DataError(
            path / INDEX_FILE,
            f"holds {index.ntotal} vectors of width {index.d}, but the bundle lists "
            f"{item_ids.size} items of width {vectors.shape[-1]}",
        )
    categories = np.load(path / ITEM_CATEGORIES_FILE)
    names = tuple(json.loads((path / CATEGORY_NAMES_FILE).read_text()))
    return SimilarItemIndex(config, item_ids, vectors, categories, index, names), manifest
