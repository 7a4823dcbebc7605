"""The server's request path (store → cache → GSU → features → onnxruntime) against torch.

The engine runs in-process without gRPC; the torch side is ``RankingModel.forward`` on the same
user histories and candidates, so this checks serving features, search and export together.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from muse.core.ids import OOV_INDEX
from serving.errors import InvalidArgument, ModelNotFound, NotReady
from serving.local_behaviour_store_config import LocalBehaviourStoreConfig
from serving.metrics import ServingMetrics
from serving.ranking.engine import RankingEngine
from serving.ranking.requests import ScoreQuery
from serving.serving_config import LimitsConfig, ServingConfig
from tests.serving.tiny_world import (
    EMPTY_USER,
    ITEM_IDS,
    LONG_USER,
    SHORT_USER,
    TinyWorld,
    ranking_batch,
)

UNKNOWN_ITEM = 999_999  # not in the vocabulary: scored as OOV
USERS = [EMPTY_USER, SHORT_USER, LONG_USER, 9, 10]


def _candidates(world: TinyWorld) -> np.ndarray:
    """Known items outside the users' histories, an unknown item, and a repeat.

    A candidate already in the history has cosine 1 with itself, and SimTier's bin for it flips
    between 20 and 21 on a rounding error (1 vs 1.0000001) that differs between a per-row and a
    per-request matmul; such candidates are left out until SimTier clamps cosines to 1.
    """
    seen = np.unique(np.concatenate([world.dataset.history(user - 1)[0] for user in USERS]))
    fresh = np.setdiff1d(np.arange(2, 2 + len(ITEM_IDS)), seen)[[0, 7, 20]]
    raw = ITEM_IDS[fresh - 2]
    return np.array([raw[0], raw[1], UNKNOWN_ITEM, raw[2], raw[0]], dtype=np.int64)


def _engine_scores(world: TinyWorld, tmp_path: Path, queries: list[ScoreQuery], **config) -> list:
    async def scenario():
        serving = ServingConfig(
            bundle_root=world.bundle_root,
            store=LocalBehaviourStoreConfig(
                dataset=world.dataset.root, directory=tmp_path / "store"
            ),
            metrics_port=-1,
            **config,
        )
        engine = RankingEngine(serving, ServingMetrics())
        await asyncio.to_thread(engine.load)
        engine.start()
        try:
            return await asyncio.gather(
                *(engine.score(q, None) for q in queries), return_exceptions=True
            )
        finally:
            await engine.close()

    return asyncio.run(scenario())


def _torch_probabilities(
    model, world: TinyWorld, user_id: int, candidates: np.ndarray
) -> np.ndarray:
    indices = [
        OOV_INDEX if raw == UNKNOWN_ITEM else int(raw - ITEM_IDS[0] + 2) for raw in candidates
    ]
    batch = ranking_batch(world.dataset, [user_id] * len(indices), indices)
    with torch.no_grad():
        return torch.sigmoid(model(batch).logits).numpy()


@pytest.mark.parametrize("model_name", ["muse", "din", "sim_hard"])
def test_served_scores_match_torch_for_empty_short_long_and_unknown(
    world: TinyWorld, tmp_path: Path, model_name: str
) -> None:
    users, candidates = USERS, _candidates(world)
    queries = [ScoreQuery(user, candidates, {"model": model_name}) for user in users]
    answers = _engine_scores(world, tmp_path, queries, default_bundle=model_name)
    model = getattr(world, model_name)
    for user, answer in zip(users, answers, strict=True):
        expected = _torch_probabilities(model, world, user, candidates)
        assert answer.scores.shape == (len(candidates),)
        assert np.isfinite(answer.scores).all()
        assert np.abs(answer.scores - expected).max() <= 1e-5, f"user {user}"
        assert answer.scores[0] == answer.scores[4]  # the same candidate twice scores the same
    assert np.ptp([answer.scores[0] for answer in answers]) > 1e-4  # users differ


def test_reordering_candidates_reorders_scores(world: TinyWorld, tmp_path: Path) -> None:
    order = np.array([3, 1, 4, 0, 2])
    candidates = _candidates(world)
    answers = _engine_scores(
        world,
        tmp_path,
        [ScoreQuery(LONG_USER, candidates, {}), ScoreQuery(LONG_USER, candidates[order], {})],
    )
    np.testing.assert_allclose(answers[1].scores, answers[0].scores[order], atol=1e-6)


def test_bad_requests_raise_domain_errors_naming_the_field(
    world: TinyWorld, tmp_path: Path
) -> None:
    answers = _engine_scores(
        world,
        tmp_path,
        [
            ScoreQuery(LONG_USER, np.array([], dtype=np.int64), {}),
            ScoreQuery(LONG_USER, np.arange(11, dtype=np.int64), {}),
            ScoreQuery(LONG_USER, _candidates(world), {"model": "nope"}),
        ],
        limits=LimitsConfig(max_candidates=10),
    )
    assert isinstance(answers[0], InvalidArgument) and answers[0].field == "candidate_item_ids"
    assert isinstance(answers[1], InvalidArgument) and "maximum is 10" in str(answers[1])
    assert isinstance(answers[2], ModelNotFound) and "'nope'" in str(answers[2])


def test_engine_refuses_work_until_loaded_and_after_close(world: TinyWorld, tmp_path: Path) -> None:
    config = ServingConfig(
        bundle_root=world.bundle_root,
        store=LocalBehaviourStoreConfig(dataset=world.dataset.root, directory=tmp_path / "store"),
        metrics_port=-1,
    )

    async def scenario():
        engine = RankingEngine(config, ServingMetrics())
        query = ScoreQuery(LONG_USER, _candidates(world), {})
        outcomes = [await asyncio.gather(engine.score(query, None), return_exceptions=True)]
        await asyncio.to_thread(engine.load)
        engine.start()
        outcomes.append(await asyncio.gather(engine.score(query, None), return_exceptions=True))
        await engine.close()
        outcomes.append(await asyncio.gather(engine.score(query, None), return_exceptions=True))
        return [outcome[0] for outcome in outcomes]

    before, served, after = asyncio.run(scenario())
    assert isinstance(before, NotReady) and isinstance(after, NotReady)
    assert served.scores.shape == (5,)
