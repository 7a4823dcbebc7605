"""A loaded item-encoder bundle: embeds new items (content, not a catalogue id) for SimilarItems.

Loading verifies the sha256 of every file the manifest lists, so a tampered bundle fails at
start with the file named. Encoding builds the prompt and image exactly as training did (the
bundle's recipe and tokenizer, :mod:`muse.item2item.export.new_item_inputs`) and runs the ONNX
graph with onnxruntime: CUDAExecutionProvider first when this onnxruntime has it, else the CPU.
No torch, no training code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from muse.core.errors import DataError
from muse.export.bundle_format import MANIFEST_FILE
from muse.item2item.export.encoder_bundle_layout import (
    GRAPH_FILE,
    TOKENIZER_FILE,
    encoder_recipe,
    read_encoder_manifest,
)
from muse.item2item.export.new_item_inputs import NewItem, NewItemError, NewItemInputs
from serving.errors import InvalidArgument

PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def onnx_providers(requested: Sequence[str] = ()) -> list[str]:
    """The execution providers to run on: ``requested`` in order (each must be available), or
    CUDA first when this onnxruntime has it, then the CPU."""
    available = onnxruntime.get_available_providers()
    if requested:
        missing = [name for name in requested if name not in available]
        if missing:
            raise ValueError(
                f"onnxruntime here lacks {', '.join(missing)} (available: {', '.join(available)})"
            )
        return list(requested)
    return [name for name in PREFERRED_PROVIDERS if name in available]


class NewItemEncoder:
    """One encoder bundle, ready to embed. Read-only after load, so threads may share it."""

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        inputs: NewItemInputs,
        session: onnxruntime.InferenceSession,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.name: str = manifest["name"]
        self.version: str = manifest["version"]
        self.inputs = inputs
        self.session = session
        self.output_dim = inputs.recipe.output_dim
        self.input_names = [node.name for node in session.get_inputs()]
        if self.input_names != list(inputs.recipe.graph_inputs):
            raise DataError(
                path / GRAPH_FILE,
                f"takes inputs {self.input_names}, the manifest lists "
                f"{list(inputs.recipe.graph_inputs)}",
            )

    @classmethod
    def load(
        cls, path: str | Path, onnx_threads: int = 1, providers: Sequence[str] = ()
    ) -> NewItemEncoder:
        """Load and verify the encoder bundle at ``path``; raises DataError naming a bad file."""
        path = Path(path)
        manifest = read_encoder_manifest(path, verify=True)
        recipe = encoder_recipe(manifest, path)
        try:
            inputs = NewItemInputs.from_file(recipe, path / TOKENIZER_FILE)
        except Exception as error:  # tokenizers raises its own untyped errors
            raise DataError(path / TOKENIZER_FILE, f"not a readable tokenizer: {error}") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = onnx_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            chosen = onnx_providers(providers)
        except ValueError as error:
            raise DataError(path / MANIFEST_FILE, str(error)) from None
        session = onnxruntime.InferenceSession(
            str(path / GRAPH_FILE), sess_options=options, providers=chosen
        )
        return cls(path, manifest, inputs, session)

    @property
    def providers(self) -> list[str]:
        """The execution providers the session runs on, best first."""
        return list(self.session.get_providers())

    def check(self, item: NewItem) -> None:
        """Raise InvalidArgument when the encoder needs a field ``item`` lacks (no decoding)."""
        try:
            self.inputs.check(item)
        except NewItemError as error:
            raise InvalidArgument(error.field, error.problem) from None

    def encode(self, items: Sequence[NewItem]) -> np.ndarray:
        """(B, D) float32 unit-norm embeddings of ``items``; InvalidArgument names a bad field."""
        try:
            feeds = self.inputs.feeds(items)
        except NewItemError as error:
            raise InvalidArgument(error.field, error.problem) from None
        (embeddings,) = self.session.run(None, feeds)
        return np.asarray(embeddings, dtype=np.float32)
