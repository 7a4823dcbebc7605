"""A tiny dataset and untrained ranking models for export and serving tests (seconds to build).

The dataset is written through the real writer: 300 items in 12 categories with one attribute,
16-d int8 MM embeddings, 40 users with histories of 0 to 120 behaviours and one profile feature.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import torch

from features.dataset import Dataset, DatasetParts, write_dataset
from features.vocabulary import Vocabulary
from muse.core.ids import FIRST_ID_INDEX
from muse.ranking.batch import RankingBatch
from muse.ranking.models.esu_config import (
    EsuConfig,
    LongTermAttentionConfig,
    LongTermAttentionKind,
    MeanPoolConfig,
    ShortTermAttentionConfig,
    ShortTermAttentionKind,
    SimTierConfig,
)
from muse.ranking.models.feature_spec import FeatureSpec
from muse.ranking.models.ranking_config import RankingModelConfig, SearchConfig, SearchKind
from muse.ranking.models.ranking_model import RankingModel, build_ranking_model
from muse.search import EmbeddingTable

NUM_ITEMS = 300
NUM_CATEGORIES = 12
NUM_USERS = 40
DIM = 16
ITEM_IDS = np.arange(1000, 1000 + NUM_ITEMS, dtype=np.int64)
USER_IDS = np.arange(1, NUM_USERS + 1, dtype=np.int64)
# Users with a known history shape: empty, shorter than K, longer than K.
EMPTY_USER, SHORT_USER, LONG_USER = 1, 2, 3


def write_tiny_dataset(target: Path, seed: int = 0) -> Dataset:
    """Write the tiny dataset to ``target`` and open it."""
    rng = np.random.default_rng(seed)
    item_vocabulary = Vocabulary(ITEM_IDS)
    category_vocabulary = Vocabulary(np.arange(50, 50 + NUM_CATEGORIES, dtype=np.int64))
    city_vocabulary = Vocabulary(np.arange(5, dtype=np.int64))
    age_vocabulary = Vocabulary(np.arange(4, dtype=np.int64))
    item_category = rng.integers(FIRST_ID_INDEX, len(category_vocabulary), NUM_ITEMS)
    items = pl.DataFrame(
        {
            "item_index": np.arange(FIRST_ID_INDEX, FIRST_ID_INDEX + NUM_ITEMS, dtype=np.int32),
            "item_id": ITEM_IDS,
            "category_index": item_category.astype(np.int32),
            "city_index": rng.integers(FIRST_ID_INDEX, len(city_vocabulary), NUM_ITEMS).astype(
                np.int32
            ),
        }
    )
    embeddings = rng.integers(-127, 128, (len(item_vocabulary), DIM)).astype(np.int8)
    embeddings[:FIRST_ID_INDEX] = 0
    lengths = rng.integers(0, 121, NUM_USERS)
    lengths[EMPTY_USER - 1], lengths[SHORT_USER - 1], lengths[LONG_USER - 1] = 0, 3, 120
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    history_items = rng.integers(FIRST_ID_INDEX, len(item_vocabulary), int(offsets[-1])).astype(
        np.int32
    )
    history_items[rng.random(history_items.size) < 0.05] = 1  # some OOV behaviours
    history_categories = np.where(
        history_items >= FIRST_ID_INDEX, item_category[history_items - FIRST_ID_INDEX], 1
    )
    users = pl.DataFrame(
        {
            "user_index": np.arange(NUM_USERS, dtype=np.int32),
            "user_id": USER_IDS,
            "profile_age": rng.integers(FIRST_ID_INDEX, len(age_vocabulary), NUM_USERS).astype(
                np.int32
            ),
        }
    )
    sample_users = np.repeat(np.arange(NUM_USERS, dtype=np.int32), 2)
    samples = pl.DataFrame(
        {
            "user_index": sample_users,
            "item_index": rng.integers(
                FIRST_ID_INDEX, len(item_vocabulary), sample_users.size
            ).astype(np.int32),
            "label": rng.integers(0, 2, sample_users.size).astype(np.int8),
            "history_end": lengths[sample_users],
            "timestamp": np.arange(sample_users.size, dtype=np.int64),
        }
    )
    parts = DatasetParts(
        vocabularies={
            "item": item_vocabulary,
            "category": category_vocabulary,
            "city": city_vocabulary,
            "profile_age": age_vocabulary,
        },
        items=items,
        item_embeddings=embeddings,
        sequence_offsets=offsets,
        sequence_items=history_items,
        sequence_categories=history_categories.astype(np.int32),
        sequence_timestamps=np.arange(int(offsets[-1]), dtype=np.int64),
        users=users,
        samples={"train": samples, "test": samples},
        embedding_scale=1 / 127,
        item_attributes=("city",),
        profile_features=("profile_age",),
        source={"kind": "tiny test world"},
    )
    write_dataset(parts, target)
    return Dataset(target)


def muse_config(top_k: int = 8, recent_length: int = 6) -> RankingModelConfig:
    """MUSE with small widths."""
    return RankingModelConfig(
        name="muse",
        search=SearchConfig(kind=SearchKind.MULTIMODAL_COSINE, top_k=top_k),
        id_embedding_dim=8,
        embedding_init_std=0.5,
        recent_length=recent_length,
        tower_hidden=(32, 16),
    )


def sim_hard_config(top_k: int = 8, recent_length: int = 6) -> RankingModelConfig:
    """SIM-hard: the most recent behaviours of the target's category, then MUSE's ESU."""
    return dataclasses.replace(
        muse_config(top_k, recent_length),
        name="sim_hard",
        search=SearchConfig(kind=SearchKind.SAME_CATEGORY, top_k=top_k),
    )


def din_config(recent_length: int = 6) -> RankingModelConfig:
    """DIN over the last ``recent_length`` behaviours (no search)."""
    return RankingModelConfig(
        name="din",
        search=SearchConfig(kind=SearchKind.NONE),
        id_embedding_dim=8,
        embedding_init_std=0.5,
        recent_length=recent_length,
        esu=EsuConfig(
            short_term=ShortTermAttentionConfig(
                kind=ShortTermAttentionKind.ACTIVATION_UNIT, activation_unit_hidden=(8,)
            ),
            long_term=LongTermAttentionConfig(kind=LongTermAttentionKind.NONE),
            simtier=SimTierConfig(top_k=False, recent=False),
            mean_pool=MeanPoolConfig(top_k=False, recent=True),
        ),
        tower_hidden=(32, 16),
    )


def tiny_model(dataset: Dataset, config: RankingModelConfig, seed: int = 0) -> RankingModel:
    """An untrained model on ``dataset`` with seeded, non-trivial weights, in eval mode."""
    torch.manual_seed(seed)
    model = build_ranking_model(
        config, FeatureSpec.from_dataset(dataset), EmbeddingTable.from_dataset(dataset)
    )
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.3)
    return model.eval()


class TinyWorld(NamedTuple):
    """The tiny dataset, MUSE, DIN and SIM-hard models on it, and their bundles under ``bundle_root``."""

    dataset: Dataset
    muse: RankingModel
    din: RankingModel
    sim_hard: RankingModel
    bundle_root: Path


_WORLDS: dict[Path, TinyWorld] = {}


def tiny_world(base: Path) -> TinyWorld:
    """Build (once per process and ``base``) the dataset, both models and their exported bundles."""
    if base not in _WORLDS:
        from muse.ranking.export.bundle_writer import export_bundle

        dataset = write_tiny_dataset(base / "dataset")
        muse = tiny_model(dataset, muse_config(), seed=1)
        din = tiny_model(dataset, din_config(), seed=2)
        sim_hard = tiny_model(dataset, sim_hard_config(), seed=3)
        for name, model in (("muse", muse), ("din", din), ("sim_hard", sim_hard)):
            export_bundle(model, dataset, base / "bundles" / name)
        _WORLDS[base] = TinyWorld(dataset, muse, din, sim_hard, base / "bundles")
    return _WORLDS[base]


def ranking_batch(dataset: Dataset, user_ids: list[int], item_indices: list[int]) -> RankingBatch:
    """Rows (user_ids[i], item_indices[i]) with each user's whole history, right-aligned."""
    from muse.ranking.training.batch_builder import item_lookup, profile_matrix

    lookup = item_lookup(dataset)
    profiles = profile_matrix(dataset)
    histories = [dataset.history(user_id - 1) for user_id in user_ids]
    length = max(1, *(items.size for items, _ in histories))
    history_items = np.zeros((len(user_ids), length), dtype=np.int64)
    history_categories = np.zeros((len(user_ids), length), dtype=np.int64)
    for row, (items, categories) in enumerate(histories):
        if items.size:
            history_items[row, -items.size :] = items
            history_categories[row, -items.size :] = categories
    targets = np.asarray(item_indices, dtype=np.int64)
    return RankingBatch(
        user_profile=torch.from_numpy(profiles[np.asarray(user_ids) - 1]),
        target_item=torch.from_numpy(targets),
        target_category=torch.from_numpy(lookup.category[targets]),
        target_attributes=torch.from_numpy(lookup.attributes[targets]),
        history_items=torch.from_numpy(history_items),
        history_categories=torch.from_numpy(history_categories),
        history_length=torch.from_numpy((history_items != 0).sum(1)),
        label=torch.zeros(len(user_ids)),
    )
