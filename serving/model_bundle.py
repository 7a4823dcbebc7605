"""A loaded model bundle: the ONNX session, vocabularies and per-item / per-user feature tables.

The session runs the bundle's request graph (per-user work once per request) when the bundle has
one, else its row graph (bundles written before request graphs existed).

Loading checks the manifest's sha256 of every file (and, unless told not to, of the referenced
item embedding table), so a corrupt or swapped bundle fails at start, not on a request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from features.vocabulary import Vocabulary
from muse.core.errors import DataError
from muse.core.ids import OOV_INDEX
from muse.core.task_kind import TaskKind
from muse.export.bundle_format import MANIFEST_FILE, ItemTableReference, read_manifest, sha256_of
from muse.ranking.export.bundle_layout import (
    GRAPH_FILE,
    ITEM_FEATURES_FILE,
    REQUEST_GRAPH_FILE,
    USER_IDS_FILE,
    USER_PROFILES_FILE,
    VOCABULARY_DIRECTORY,
)
from muse.ranking.export.serving_recipe import ServingRecipe


class ModelBundle:
    """One exported model, ready to score. Read-only after load, so threads may share it."""

    def __init__(
        self, path: Path, manifest: dict[str, Any], session: onnxruntime.InferenceSession
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.name: str = manifest["name"]
        self.version: str = manifest["version"]
        self.recipe = ServingRecipe.from_dict(manifest["serving"], str(path / MANIFEST_FILE))
        self.item_table = ItemTableReference.from_dict(manifest["item_table"])
        self.session = session
        self.input_names = [node.name for node in session.get_inputs()]
        # The request graph's inputs (RequestScoringInputs) include the candidates' request index.
        self.takes_requests = "request" in self.input_names
        self.item_vocabulary = Vocabulary.load(path / VOCABULARY_DIRECTORY / "item.parquet")
        self.item_features: np.ndarray = np.load(path / ITEM_FEATURES_FILE)
        self.user_ids: np.ndarray = np.load(path / USER_IDS_FILE)
        self.user_profiles: np.ndarray = np.load(path / USER_PROFILES_FILE)
        self.cold_profile = np.full(self.user_profiles.shape[1], OOV_INDEX, dtype=np.int64)

    @classmethod
    def load(
        cls, path: str | Path, onnx_threads: int = 1, verify_item_table: bool = True
    ) -> ModelBundle:
        """Load and verify the bundle at ``path``; raises DataError naming a bad file."""
        path = Path(path)
        manifest = read_manifest(path, TaskKind.RANKING, verify=True)
        table = ItemTableReference.from_dict(manifest["item_table"])
        if not Path(table.path).is_file():
            raise DataError(table.path, f"item embedding table of bundle {path} is missing")
        if verify_item_table and sha256_of(table.path) != table.sha256:
            raise DataError(
                table.path, f"item embedding table differs from the one bundle {path} was built on"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = onnx_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Threads wait in the kernel between calls: spinning ones would take the cores from the
        # GSU's threads and the event loop on a small machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        graph = path / REQUEST_GRAPH_FILE
        if not graph.is_file():
            graph = path / GRAPH_FILE
        session = onnxruntime.InferenceSession(
            str(graph), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return cls(path, manifest, session)

    def item_indices(self, raw_ids: np.ndarray) -> np.ndarray:
        """(C,) raw item ids → (C,) int64 item indices (OOV_INDEX for unknown ids)."""
        return self.item_vocabulary.lookup(raw_ids).astype(np.int64)

    def item_categories(self, item_indices: np.ndarray) -> np.ndarray:
        """(C,) item indices → (C,) int64 category indices."""
        return self.item_features[item_indices, 0].astype(np.int64)

    def item_attributes(self, item_indices: np.ndarray) -> np.ndarray:
        """(C,) item indices → (C, A) int64 attribute indices."""
        return self.item_features[item_indices, 1:].astype(np.int64)

    def profile_of(self, user_id: int) -> np.ndarray:
        """(P,) int64 profile indices of ``user_id``; OOV for a user the bundle has not seen."""
        position = int(np.searchsorted(self.user_ids, user_id))
        if position < self.user_ids.size and self.user_ids[position] == user_id:
            return self.user_profiles[position].astype(np.int64)
        return self.cold_profile

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Logits (B,) float32 of the graph on ``feeds`` (extra keys the graph dropped are ignored)."""
        (logits,) = self.session.run(None, {name: feeds[name] for name in self.input_names})
        return np.asarray(logits, dtype=np.float32).reshape(-1)
