"""Write a conversational bundle (see :mod:`.conversational_bundle_layout`) from a trained run.

The bundle is built in a temporary sibling directory and renamed into place only after it has
been read back through :func:`load_conversational_bundle` and answered the example queries with
the same beams and scores as the trained models in memory; nothing is written otherwise.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from muse.conversational.export.conversational_bundle_layout import (
    ITEM_EMBEDDINGS_FILE,
    ITEM_IDS_FILE,
    ITEM_TITLES_FILE,
    MODELS_FILE,
    RECIPE_ENTRY,
    SEMANTIC_IDS_DIR,
    TOKENIZER_DIR,
    ConversationalRecipe,
)
from muse.conversational.models.generative_retriever import GenerativeRetriever
from muse.core.atomic_write import atomic_directory
from muse.core.task_kind import TaskKind
from muse.export.bundle_format import MANIFEST_FILE, file_checksums, manifest_header
from muse.item2item.models.item_encoder import ItemEncoder
from muse.item2item.models.vision_encoder import VisionEncoder


def write_conversational_bundle(
    out: str | Path,
    name: str,
    recipe: ConversationalRecipe,
    retriever: GenerativeRetriever,
    encoder: ItemEncoder,
    vision: VisionEncoder,
    tokenizer: PreTrainedTokenizerBase,
    semantic_ids: Path,
    item_ids: np.ndarray,
    item_embeddings: np.ndarray,
    item_titles: list[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the bundle to ``out`` atomically; returns its manifest."""
    out = Path(out)
    if len(item_ids) != len(item_embeddings) or len(item_ids) != len(item_titles):
        raise ValueError("item_ids, item_embeddings and item_titles must have one row per item")
    with atomic_directory(out) as staging:
        torch.save(
            {
                "retriever": retriever.state_dict(),
                "encoder": encoder.state_dict(),
                "vision": vision.state_dict(),
            },
            staging / MODELS_FILE,
        )
        tokenizer.save_pretrained(staging / TOKENIZER_DIR)
        shutil.copytree(semantic_ids, staging / SEMANTIC_IDS_DIR)
        np.save(staging / ITEM_IDS_FILE, np.asarray(item_ids, dtype=np.int64))
        np.save(staging / ITEM_EMBEDDINGS_FILE, np.asarray(item_embeddings, dtype=np.float32))
        (staging / ITEM_TITLES_FILE).write_text(json.dumps(list(item_titles)))
        files = file_checksums(staging)
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
        manifest: dict[str, Any] = {
            **manifest_header(TaskKind.CONVERSATIONAL),
            "name": name,
            "version": f"{name}@{digest}",
            "created_unix": int(time.time()),
            RECIPE_ENTRY: recipe.to_dict(),
            **(extra or {}),
            "files": files,
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return manifest
