"""A trained conversational run, evaluated again (``muse conv evaluate``) and exported.

Loads the best checkpoint with the data its config names, then: the four methods on the test
dialogues (the same figures as the end of training), and the test-time scaling curve: for each
beam count B, α tuned on the validation dialogues, MRR and nDCG@1 of the retriever alone and
with TTR at the last turn, beside the latency of answering one query at a time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from muse.conversational.models.test_time_reranking import tune_alpha
from muse.conversational.retrieval_pipeline import ConversationalRetrieval, reranked
from muse.conversational.training.conversation_report import (
    ConversationalReport,
    ranking_figures,
)
from muse.conversational.training.conversational_model import ConversationalModel
from muse.conversational.training.conversational_task import (
    ConversationalAssets,
    candidates_of,
    evaluate_examples,
)
from muse.conversational.training.dialogue_examples import DialogueExamples
from muse.conversational.training.train_config import ConversationalTrainConfig
from muse.core.config_loader import config_from_dict
from muse.core.errors import DataError
from muse.training.checkpoint import load_checkpoint

DEFAULT_BEAMS = (1, 5, 10, 20, 50)


class TrainedConversational(NamedTuple):
    """A run's config, its assets and its model (eval mode, best weights, on ``device``)."""

    config: ConversationalTrainConfig
    assets: ConversationalAssets
    model: ConversationalModel
    device: torch.device


def load_trained(
    checkpoint_path: str | Path, device: torch.device | None = None
) -> TrainedConversational:
    """The run a checkpoint belongs to, rebuilt from the data its config names."""
    path = Path(checkpoint_path)
    checkpoint = load_checkpoint(path)
    raw = checkpoint.get("config")
    if not isinstance(raw, dict) or raw.get("task") != "conversational":
        raise DataError(
            path, "not a conversational training checkpoint (task is not 'conversational')"
        )
    config = config_from_dict(ConversationalTrainConfig, raw, str(path))
    assets = ConversationalAssets(config)
    model = ConversationalModel(config, len(assets.tokenizer), assets.ids.vocab_size)
    model.load_state_dict(checkpoint["model"])
    device = device or torch.device("cpu")
    model.to(device).eval()
    assets.attach(model)
    return TrainedConversational(config, assets, model, device)


class ScalingPoint(NamedTuple):
    """One beam count of the scaling curve (last user turn of the test dialogues).

    alpha: tuned on validation for these beams. *_ms: one query at a time, wall milliseconds
    (p50 and p99) and CPU milliseconds per query, with the stage split (encode, generate, rerank).
    """

    beams: int
    alpha: float
    generative: dict[str, float]
    generative_ttr: dict[str, float]
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    stage_ms: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def beam_scaling(
    retrieval: ConversationalRetrieval,
    validation: DialogueExamples,
    test: DialogueExamples,
    beams: Sequence[int],
    alpha_grid: Sequence[float],
    fixed_alpha: float | None,
    batch_size: int,
    latency_queries: int,
) -> list[ScalingPoint]:
    """The scaling curve over ``beams``; latency on the first ``latency_queries`` test queries."""
    last = test.subset(np.flatnonzero(test.last))
    points = []
    for count in beams:
        tuned, _ = candidates_of(retrieval, validation, count, batch_size)
        alpha = fixed_alpha
        if alpha is None:
            alpha = tune_alpha(
                tuned.rows, tuned.log_probs, tuned.relevance, validation.target_rows, alpha_grid
            ).alpha
        candidates, _ = candidates_of(retrieval, last, count, batch_size)
        ttr = reranked(candidates, alpha).rows
        walls, cpus, stages = [], [], np.zeros(3)
        for query in last.queries[:latency_queries]:
            wall, cpu = time.perf_counter(), time.process_time()
            found, seconds = retrieval.candidates([query], count)
            reranked(found, alpha)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            stages += np.array(seconds)
        measured = max(len(walls), 1)
        points.append(
            ScalingPoint(
                beams=count,
                alpha=alpha,
                generative=ranking_figures(candidates.rows, last.target_rows),
                generative_ttr=ranking_figures(ttr, last.target_rows),
                p50_ms=float(np.percentile(walls, 50) * 1e3) if walls else float("nan"),
                p99_ms=float(np.percentile(walls, 99) * 1e3) if walls else float("nan"),
                cpu_ms=float(np.mean(cpus) * 1e3) if cpus else float("nan"),
                stage_ms={
                    name: float(value / measured * 1e3)
                    for name, value in zip(("encode", "generate", "rerank"), stages, strict=True)
                },
            )
        )
    return points


def evaluate_trained(
    trained: TrainedConversational,
    beams: Sequence[int] = DEFAULT_BEAMS,
    latency_queries: int = 50,
    progress: bool = False,
) -> tuple[ConversationalReport, list[ScalingPoint]]:
    """The test report at the config's beams and the scaling curve over ``beams``."""
    config = trained.config
    assets = trained.assets
    batch_size = config.training.evaluation_batch_size
    with torch.no_grad():
        retrieval = assets.retrieval(trained.model, trained.device)
        validation = assets.examples(
            "validation", False, progress, config.training.validation_dialogues
        )
        test = assets.examples("test", True, progress)
        points = beam_scaling(
            retrieval,
            validation,
            test,
            beams,
            config.reranker.alpha_grid,
            config.reranker.fixed_alpha,
            batch_size,
            latency_queries,
        )
        default = config.reranker.beams
        alpha = next((p.alpha for p in points if p.beams == default), None)
        if alpha is None:
            tuned, _ = candidates_of(retrieval, validation, default, batch_size)
            alpha = config.reranker.fixed_alpha
            if alpha is None:
                alpha = tune_alpha(
                    tuned.rows,
                    tuned.log_probs,
                    tuned.relevance,
                    validation.target_rows,
                    config.reranker.alpha_grid,
                ).alpha
        report = evaluate_examples(
            retrieval,
            assets.bm25,
            test,
            default,
            alpha,
            batch_size,
            config.name,
            len(assets.dialogues["test"]),
        )
    return report, points
