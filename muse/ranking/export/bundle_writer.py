"""Write a ranking bundle (see :mod:`muse.ranking.export.bundle_layout`) from a model and its dataset.

The bundle is built in a temporary sibling directory and renamed into place, so a crash never
leaves a half-written bundle and a server never loads one.
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

from features.dataset import FORMAT_VERSION, Dataset
from muse.core.atomic_write import atomic_directory
from muse.core.config_loader import config_to_dict
from muse.core.ids import FIRST_ID_INDEX, OOV_INDEX, PADDING_INDEX
from muse.core.task_kind import TaskKind
from muse.export.bundle_format import (
    MANIFEST_FILE,
    ItemTableReference,
    file_checksums,
    manifest_header,
    sha256_of,
)
from muse.ranking.batch import RankingBatch
from muse.ranking.export.bundle_layout import (
    GRAPH_FILE,
    ITEM_FEATURES_FILE,
    REQUEST_GRAPH_FILE,
    USER_IDS_FILE,
    USER_PROFILES_FILE,
    VOCABULARY_DIRECTORY,
)
from muse.ranking.export.serving_recipe import serving_recipe
from muse.ranking.models.ranking_model import RankingModel
from muse.ranking.models.request_scoring import request_inputs_from_scoring
from muse.ranking.models.scoring_graph import export_request_scoring_onnx, export_scoring_onnx
from muse.ranking.models.scoring_inputs import ScoringInputs
from muse.ranking.training.batch_builder import item_lookup, profile_matrix

EXAMPLE_BATCH = 4


def example_inputs(model: RankingModel, seed: int = 0) -> ScoringInputs:
    """An export example of EXAMPLE_BATCH rows through the model's own ``select``.

    Rows cover an empty history, one shorter than K, an OOV behaviour and an OOV target, and the
    history is longer than K and N so that both axes are seen as dynamic by the exporter.
    """
    features = model.features
    generator = torch.Generator().manual_seed(seed)
    length = max(model.config.search.top_k, model.config.recent_length, 2) + 3

    def indices(size: int, shape: tuple[int, ...]) -> torch.Tensor:
        high = max(size, FIRST_ID_INDEX + 1)
        return torch.randint(FIRST_ID_INDEX, high, shape, generator=generator)

    history_items = indices(features.item_vocabulary_size, (EXAMPLE_BATCH, length))
    history_categories = indices(features.category_vocabulary_size, (EXAMPLE_BATCH, length))
    history_items[0] = PADDING_INDEX  # no history
    history_categories[0] = PADDING_INDEX
    history_items[1, : length - 1] = PADDING_INDEX  # one behaviour
    history_categories[1, : length - 1] = PADDING_INDEX
    history_items[2, -1] = OOV_INDEX
    target_item = indices(features.item_vocabulary_size, (EXAMPLE_BATCH,))
    target_item[3] = OOV_INDEX
    attributes = [indices(size, (EXAMPLE_BATCH,)) for _, size in features.item_attributes]
    profiles = [indices(size, (EXAMPLE_BATCH,)) for _, size in features.profile_features]
    batch = RankingBatch(
        user_profile=torch.stack(profiles, 1)
        if profiles
        else torch.zeros((EXAMPLE_BATCH, 0), dtype=torch.int64),
        target_item=target_item,
        target_category=indices(features.category_vocabulary_size, (EXAMPLE_BATCH,)),
        target_attributes=torch.stack(attributes, 1)
        if attributes
        else torch.zeros((EXAMPLE_BATCH, 0), dtype=torch.int64),
        history_items=history_items,
        history_categories=history_categories,
        history_length=(history_items != PADDING_INDEX).sum(1),
        label=torch.zeros(EXAMPLE_BATCH),
    )
    with torch.no_grad():
        return model.select(batch)


def export_bundle(
    model: RankingModel,
    dataset: Dataset,
    out: str | Path,
    *,
    name: str | None = None,
    checkpoint: str | Path | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the serving bundle of ``model`` (trained on ``dataset``) to directory ``out``.

    ``name`` defaults to the directory name; the version is the name plus a content hash of the
    graph and its weights. Returns ``out``.
    """
    out = Path(out)
    name = name or out.name
    recipe = serving_recipe(model)
    table_path = (dataset.root / "item_embeddings.npy").resolve()
    table = ItemTableReference(
        path=str(table_path),
        sha256=sha256_of(table_path),
        dtype=str(dataset.item_embeddings.dtype),
        shape=(int(dataset.item_embeddings.shape[0]), int(dataset.item_embeddings.shape[1])),
        scale=dataset.embedding_scale,
    )
    with atomic_directory(out) as staging:
        example = example_inputs(model)
        export_scoring_onnx(model, example, staging / GRAPH_FILE)
        # The example's rows as two requests (the exporter needs two of every dynamic axis).
        request = torch.arange(example.target_item.shape[0]) % 2
        export_request_scoring_onnx(
            model, request_inputs_from_scoring(example, request), staging / REQUEST_GRAPH_FILE
        )
        shutil.copytree(dataset.root / VOCABULARY_DIRECTORY, staging / VOCABULARY_DIRECTORY)
        lookup = item_lookup(dataset)
        item_features = np.concatenate([lookup.category[:, None], lookup.attributes], axis=1)
        np.save(staging / ITEM_FEATURES_FILE, item_features.astype(np.int32))
        user_ids, profiles = _latest_profile_per_user(dataset)
        np.save(staging / USER_IDS_FILE, user_ids)
        np.save(staging / USER_PROFILES_FILE, profiles)
        files = file_checksums(staging)
        graph_digest = hashlib.sha256(
            "".join(
                files[file]
                for file in sorted(files)
                if file.startswith((GRAPH_FILE, REQUEST_GRAPH_FILE))
            ).encode()
        ).hexdigest()
        manifest = {
            **manifest_header(TaskKind.RANKING),
            "name": name,
            "version": f"{name}@{graph_digest[:12]}",
            "created_unix": int(time.time()),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "feature_schema_version": FORMAT_VERSION,
            "dataset": str(dataset.root.resolve()),
            "model_config": config_to_dict(model.config),
            "feature_spec": config_to_dict(model.features),
            "serving": recipe.to_dict(),
            "item_table": table.to_dict(),
            "checkpoint": (
                {"path": str(Path(checkpoint).resolve()), "sha256": sha256_of(checkpoint)}
                if checkpoint is not None
                else None
            ),
            "files": files,
            **(extra or {}),
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _latest_profile_per_user(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique raw user ids and the profile row of each one's last sequence row."""
    user_ids = dataset.users()["user_id"].to_numpy().astype(np.int64)
    profiles = profile_matrix(dataset).astype(np.int32)
    # Reversed stable unique keeps the last row of a user_id that owns several rows.
    unique, first_from_end = np.unique(user_ids[::-1], return_index=True)
    rows = user_ids.size - 1 - first_from_end
    return unique, np.ascontiguousarray(profiles[rows]).reshape(unique.size, profiles.shape[1])
