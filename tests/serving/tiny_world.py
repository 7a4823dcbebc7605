"""A tiny dataset and untrained ranking models for export and serving tests (seconds to build).

The dataset is built from raw ids (tests.dataset_factory) and written through the real writer:
300 items in 12 categories with one attribute, 16-d int8 MM embeddings, 40 users with histories of
0 to 120 behaviours (about 5% on an item outside the catalogue, so OOV) and one profile feature.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from features.dataset import Dataset
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
from tests.dataset_factory import RawDataset, Samples

NUM_ITEMS = 300
NUM_CATEGORIES = 12
NUM_USERS = 40
DIM = 16
ITEM_IDS = np.arange(1000, 1000 + NUM_ITEMS, dtype=np.int64)  # item raw 1000 + k has index k + 2
CATEGORY_IDS = np.arange(50, 50 + NUM_CATEGORIES, dtype=np.int64)
CITY_IDS = np.arange(5, dtype=np.int64)
AGE_IDS = np.arange(4, dtype=np.int64)
USER_IDS = np.arange(1, NUM_USERS + 1, dtype=np.int64)  # user raw u is row u − 1
UNSEEN_ITEM = 999  # a behaviour on an item outside the catalogue (OOV item and category)
# Users with a known history shape: empty, shorter than K, longer than K.
EMPTY_USER, SHORT_USER, LONG_USER = 1, 2, 3


def write_tiny_dataset(target: Path, seed: int = 0) -> Dataset:
    """Write the tiny dataset to ``target`` and open it."""
    rng = np.random.default_rng(seed)
    item_categories = CATEGORY_IDS[rng.integers(0, NUM_CATEGORIES, NUM_ITEMS)]
    item_cities = CITY_IDS[rng.integers(0, CITY_IDS.size, NUM_ITEMS)]
    # Two spare rows are drawn and dropped: they keep the later draws the tests were written on.
    embeddings = rng.integers(-127, 128, (NUM_ITEMS + 2, DIM)).astype(np.int8)[2:]
    lengths = rng.integers(0, 121, NUM_USERS)
    lengths[EMPTY_USER - 1], lengths[SHORT_USER - 1], lengths[LONG_USER - 1] = 0, 3, 120
    behaviours = ITEM_IDS[rng.integers(0, NUM_ITEMS, int(lengths.sum()))]
    behaviours[rng.random(behaviours.size) < 0.05] = UNSEEN_ITEM  # some OOV behaviours
    ages = AGE_IDS[rng.integers(0, AGE_IDS.size, NUM_USERS)]
    sample_users = np.repeat(np.arange(NUM_USERS), 2)
    samples = Samples(
        users=sample_users,
        items=ITEM_IDS[rng.integers(0, NUM_ITEMS, sample_users.size)],
        labels=rng.integers(0, 2, sample_users.size),
    )
    return RawDataset(
        item_ids=ITEM_IDS,
        item_categories=item_categories,
        item_attributes={"city": item_cities},
        item_embeddings=embeddings,
        embedding_scale=1 / 127,
        user_ids=USER_IDS,
        histories=np.split(behaviours, np.cumsum(lengths)[:-1]),
        profiles={"age": ages},
        samples={"train": samples, "test": samples},
        vocabularies={"category": CATEGORY_IDS, "city": CITY_IDS, "profile_age": AGE_IDS},
        source={"kind": "tiny test world"},
    ).write(target)


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
