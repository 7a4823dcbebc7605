"""MUSE's second stage exports to ONNX and onnxruntime agrees with eager torch, empty rows included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import torch

from muse.ranking.models import FeatureSpec
from muse.ranking.models.scoring_graph import export_scoring_onnx
from muse.search import EmbeddingTable
from tests.models.tiny_models import build, random_batch


def _run(session: onnxruntime.InferenceSession, inputs) -> np.ndarray:  # type: ignore[no-untyped-def]
    feed = {node.name: getattr(inputs, node.name).numpy() for node in session.get_inputs()}
    return session.run(["logits"], feed)[0]


def test_muse_score_exports_with_dynamic_batch_and_k(
    tmp_path: Path, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build("muse", features, table, seed=3).eval()
    example = model.select(random_batch([0, 5, 12], 16, seed=1))  # row 0: no history
    path = export_scoring_onnx(model, example, tmp_path / "score.onnx")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        np.testing.assert_allclose(
            _run(session, example), model.score(example).numpy(), atol=1e-5, rtol=0
        )
        # Another batch size and a smaller K (a serving request may keep fewer behaviours).
        other = model.select(random_batch([7, 0, 2, 16, 0], 20, seed=2))
        other = other._replace(
            selected_items=other.selected_items[:, :5],
            selected_categories=other.selected_categories[:, :5],
            selected_cosines=other.selected_cosines[:, :5],
            selected_mask=other.selected_mask[:, :5],
        )
        onnx_logits = _run(session, other)
        assert np.isfinite(onnx_logits).all()
        np.testing.assert_allclose(onnx_logits, model.score(other).numpy(), atol=1e-5, rtol=0)
