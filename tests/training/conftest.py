"""A tiny planted dataset for training tests, and helpers to configure runs on it.

Users have one favourite topic; their histories mostly hold items of that topic (oldest first,
lengths 0…40, some users without history); a sample is clicked with probability 0.85 when the
target shares the favourite topic and 0.08 otherwise. Only the history reveals the favourite
topic, so a model beats chance only by reading histories. Items' multimodal embeddings sit
around their topic's centre; topics cut across categories.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from muse.ranking.models.ranking_config import RankingModelConfig
from muse.ranking.training.train_config import DataConfig, RankingTrainingConfig, TrainConfig
from tests.dataset_factory import RawDataset, Samples

NUM_TOPICS = 4
ITEMS_PER_TOPIC = 15
NUM_CATEGORIES = 6
NUM_CITIES = 5
EMBEDDING_DIM = 8


def make_planted_dataset(
    target: Path, seed: int = 0, num_users: int = 48, samples_per_user: int = 16
) -> Path:
    """Write the planted dataset described in the module docstring to ``target``."""
    rng = np.random.default_rng(seed)
    num_items = NUM_TOPICS * ITEMS_PER_TOPIC
    item_ids = np.arange(num_items, dtype=np.int64) * 7 - 50  # raw ids, negative ones included
    topic = np.repeat(np.arange(NUM_TOPICS), ITEMS_PER_TOPIC)
    categories = rng.integers(0, NUM_CATEGORIES, num_items) + 100
    cities = rng.integers(0, NUM_CITIES, num_items) + 500
    centres = rng.normal(size=(NUM_TOPICS, EMBEDDING_DIM))
    vectors = centres[topic] + 0.4 * rng.normal(size=(num_items, EMBEDDING_DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    favourite = rng.integers(0, NUM_TOPICS, num_users)
    lengths = rng.integers(0, 41, num_users)
    lengths[:3] = 0  # users without any history
    histories: list[np.ndarray] = []
    for user in range(num_users):
        own = rng.random(lengths[user]) < 0.7
        pool = np.where(own, favourite[user], rng.integers(0, NUM_TOPICS, lengths[user]))
        chosen = pool * ITEMS_PER_TOPIC + rng.integers(0, ITEMS_PER_TOPIC, lengths[user])
        histories.append(item_ids[chosen])
    genders = rng.integers(0, 2, num_users) + 10

    def samples(count: int, split_seed: int) -> tuple[Samples, np.ndarray]:
        split_rng = np.random.default_rng([seed, split_seed])
        user = np.repeat(np.arange(num_users), count)
        chosen = split_rng.integers(0, num_items, user.size)
        probability = np.where(topic[chosen] == favourite[user], 0.85, 0.08)
        label = split_rng.random(user.size) < probability
        history_end = np.minimum(lengths[user], split_rng.integers(0, 45, user.size))
        frame = Samples(users=user, items=item_ids[chosen], labels=label, history_end=history_end)
        return frame, probability

    train, _ = samples(samples_per_user, 1)
    test, test_probability = samples(max(samples_per_user // 2, 2), 2)
    RawDataset(
        item_ids=item_ids,
        item_categories=categories,
        item_attributes={"city": cities},
        item_embeddings=np.trunc(np.clip(vectors, -1, 1) * 127).astype(np.int8),
        embedding_scale=1.0 / 127,
        user_ids=np.arange(num_users, dtype=np.int64) * 13 + 5,
        histories=histories,
        profiles={"gender": genders},
        samples={"train": train, "test": test},
        extra_files={
            "test_click_probability.parquet": pl.DataFrame({"probability": test_probability})
        },
        source={"reader": "tests.training planted"},
    ).write(target)
    return target


@pytest.fixture(scope="session")
def planted_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_planted_dataset(tmp_path_factory.mktemp("planted") / "dataset")


def tiny_model_config(**overrides: object) -> RankingModelConfig:
    """MUSE at test size: ID dim 8, K = 8, N = 8, a small tower."""
    settings: dict[str, object] = {
        "id_embedding_dim": 8,
        "recent_length": 8,
        "tower_hidden": (32, 16),
    }
    settings.update(overrides)
    model = RankingModelConfig(**settings)  # type: ignore[arg-type]
    return dataclasses.replace(model, search=dataclasses.replace(model.search, top_k=8))


def tiny_config(dataset: Path, out: Path, **training: object) -> TrainConfig:
    """A fast, single-threaded run on ``dataset`` writing to ``out``."""
    settings: dict[str, object] = {
        "batch_size": 64,
        "evaluation_batch_size": 256,
        "max_epochs": 4,
        "patience": 2,
        "checkpoint_every_steps": 5,
        "log_every_steps": 2,
        "threads": 1,
        "prefetch_batches": 1,
        "output_dir": out,
    }
    settings.update(training)
    return TrainConfig(
        model=tiny_model_config(),
        data=DataConfig(dataset=dataset, max_history_length=32, validation_fraction=0.25),
        training=RankingTrainingConfig(**settings),  # type: ignore[arg-type]
    )


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())
