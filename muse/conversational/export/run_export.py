"""A trained run's best checkpoint → a conversational bundle, checked by reading it back.

The bundle's models are rebuilt from its recipe alone (as the server does) and must give the
same beams and scores as the run's models on validation queries; otherwise the bundle is removed
and the export fails.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from muse.conversational.export.conversational_bundle_layout import ConversationalRecipe
from muse.conversational.export.conversational_bundle_reader import load_conversational_bundle
from muse.conversational.export.conversational_bundle_writer import write_conversational_bundle
from muse.conversational.models.test_time_reranking import tune_alpha
from muse.conversational.retrieval_pipeline import ConversationalRetrieval
from muse.conversational.training.checkpoint_evaluation import load_trained
from muse.conversational.training.conversational_task import candidates_of

CHECK_QUERIES = 8
CHECK_TOLERANCE = 1e-4


def export_checkpoint(
    checkpoint: str | Path, out: str | Path, name: str, alpha: float | None = None
) -> dict[str, Any]:
    """Write the bundle of ``checkpoint`` to ``out``; returns its manifest."""
    trained = load_trained(checkpoint)
    config, assets, model = trained.config, trained.assets, trained.model
    batch_size = config.training.evaluation_batch_size
    with torch.no_grad():
        retrieval = assets.retrieval(model, trained.device)
        validation = assets.examples(
            "validation", False, False, config.training.validation_dialogues
        )
        beams = config.reranker.beams
        if alpha is None:
            alpha = config.reranker.fixed_alpha
        if alpha is None:
            tuned, _ = candidates_of(retrieval, validation, beams, batch_size)
            alpha = tune_alpha(
                tuned.rows,
                tuned.log_probs,
                tuned.relevance,
                validation.target_rows,
                config.reranker.alpha_grid,
            ).alpha
    recipe = ConversationalRecipe(
        retriever=config.retriever,
        encoder=config.encoder,
        rewriter=config.rewriter,
        text_vocab_size=len(assets.tokenizer),
        id_vocab_size=assets.ids.vocab_size,
        image_feature_width=model.vision.output_width,
        alpha=float(alpha),
        beams=beams,
        image_mean=config.data.image_mean,
        image_std=config.data.image_std,
    )
    out = Path(out)
    manifest = write_conversational_bundle(
        out,
        name,
        recipe,
        model.retriever,
        model.encoder,
        model.vision,
        assets.tokenizer,
        Path(config.data.semantic_ids),
        assets.catalogue.item_ids,
        retrieval.item_embeddings,
        list(assets.catalogue.titles),
        extra={"checkpoint": str(checkpoint), "run_config": config.name},
    )
    try:
        _check(out, retrieval, validation.queries[:CHECK_QUERIES], beams, trained.device)
    except Exception:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return manifest


def _check(
    bundle_dir: Path,
    trained: ConversationalRetrieval,
    queries: list,  # type: ignore[type-arg]
    beams: int,
    device: torch.device,
) -> None:
    """The bundle's rebuilt models must answer ``queries`` as the trained ones do."""
    if not queries:
        return
    bundle = load_conversational_bundle(bundle_dir, device)
    if not np.array_equal(np.asarray(bundle.item_embeddings), trained.item_embeddings):
        raise RuntimeError(f"{bundle_dir}: the bundle's item embeddings differ from the run's")
    rebuilt = ConversationalRetrieval(
        bundle.retriever,
        bundle.encoder,
        trained.query_inputs,
        trained.trie,
        bundle.item_embeddings,
        device,
    )
    expected, _ = trained.candidates(queries, beams)
    found, _ = rebuilt.candidates(queries, beams)
    if not np.array_equal(expected.rows, found.rows) or not np.allclose(
        expected.log_probs, found.log_probs, atol=CHECK_TOLERANCE
    ):
        raise RuntimeError(f"{bundle_dir}: the bundle's models answer differently from the run's")
