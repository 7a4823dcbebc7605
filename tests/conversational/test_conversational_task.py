"""The conversational task end to end on tiny data: the test report, evaluation, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from muse.conversational.training.checkpoint_evaluation import evaluate_trained, load_trained
from muse.conversational.training.conversational_task import ConversationalAssets
from muse.conversational.training.training_job import ConversationalTrainResult, train
from tests.conversational.conftest import tiny_config


def test_training_writes_a_report_of_every_method(trained_run: ConversationalTrainResult) -> None:
    metrics = json.loads((trained_run.run_dir / "metrics.json").read_text())
    methods = metrics["methods"]
    assert set(methods) == {"generative", "generative_ttr", "dense", "bm25"}
    for figures in methods.values():
        for name in ("mrr", "ndcg@1", "ndcg@10", "recall@10"):
            assert 0.0 <= figures["last_turn"][name] <= 1.0
            assert 0.0 <= figures["every_turn"][name] <= 1.0
        assert set(figures["by_turn"]) >= {"1", "2"}
    assert methods["generative"]["list_length"] == 10
    report = trained_run.test
    assert report.alpha in tuple(round(step / 20, 2) for step in range(21))
    assert report.examples > report.dialogues  # every user turn of the test dialogues


def test_the_task_learns_above_chance(trained_run: ConversationalTrainResult) -> None:
    # 160 items: a random order of 10 beams has MRR ≈ 0.018, of the whole catalogue ≈ 0.035.
    methods = trained_run.test.methods
    assert methods["generative_ttr"].last_turn["mrr"] > 0.05
    assert methods["dense"].last_turn["mrr"] > 0.05


def test_every_candidate_is_a_real_catalogue_item(trained_run: ConversationalTrainResult) -> None:
    trained = load_trained(trained_run.run_dir / "checkpoints" / "best.pt")
    retrieval = trained.assets.retrieval(trained.model, torch.device("cpu"))
    queries = trained.assets.examples("test", True, False).queries[:16]
    candidates, _ = retrieval.candidates(queries, 25)
    valid = candidates.rows[candidates.rows >= 0]
    assert valid.size and valid.max() < len(trained.assets.catalogue)
    for row_list, log_probs in zip(candidates.rows, candidates.log_probs, strict=True):
        found = row_list[row_list >= 0]
        assert np.unique(found).size == found.size  # each item at most once per query
        assert np.all(np.diff(log_probs[: found.size]) <= 1e-6)  # best log-probability first


def test_evaluate_gives_the_trainings_figures_and_a_scaling_curve(
    trained_run: ConversationalTrainResult,
) -> None:
    trained = load_trained(trained_run.run_dir / "checkpoints" / "best.pt")
    report, points = evaluate_trained(trained, beams=(1, 5, 10), latency_queries=3)
    for method in ("generative", "generative_ttr", "dense", "bm25"):
        assert report.methods[method].last_turn == trained_run.test.methods[method].last_turn
    assert [p.beams for p in points] == [1, 5, 10]
    # One beam has nothing to rerank: TTR cannot change the retriever's answer.
    assert points[0].generative == points[0].generative_ttr
    recalls = [p.generative["recall@10"] for p in points]
    assert recalls == sorted(recalls)  # more beams never find fewer targets
    assert all(p.p50_ms > 0 and p.cpu_ms > 0 for p in points)


def test_assets_refuse_a_catalogue_without_semantic_ids(
    conversation_data: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    import pytest

    from muse.conversational.semantic_ids.semantic_ids import build_semantic_ids
    from muse.core.errors import DataError
    from tests.conversational.conversation_data import SEMANTIC_IDS

    catalogue = conversation_data["catalogue"]
    ids = np.load(catalogue / "oracle_item_ids.npy")[:-5]
    vectors = np.load(catalogue / "oracle_embeddings.npy")[:-5]
    partial, _ = build_semantic_ids(ids, vectors, SEMANTIC_IDS)
    partial.save(tmp_path / "partial_ids")
    shutil.copytree(conversation_data["dialogues"], tmp_path / "dialogues")
    data = {**conversation_data, "semantic_ids": tmp_path / "partial_ids"}
    with pytest.raises(DataError, match="5 catalogue item"):
        ConversationalAssets(tiny_config(data))


def test_resume_after_the_last_epoch_gives_the_same_report(
    conversation_data: dict[str, Path], tmp_path: Path
) -> None:
    config = tiny_config(conversation_data, "training.max_epochs=1")
    first = train(config, tmp_path / "run", progress=False)
    again = train(config, tmp_path / "run", resume=True, progress=False)
    assert (
        again.test.methods["generative_ttr"].last_turn
        == first.test.methods["generative_ttr"].last_turn
    )
