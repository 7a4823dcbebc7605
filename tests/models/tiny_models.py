"""Tiny model configs, feature spec, MM table and batches shared by the model tests."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import numpy as np
import torch

from muse.core.config_loader import config_from_dict
from muse.ranking.batch import RankingBatch
from muse.ranking.models import FeatureSpec, RankingModel, RankingModelConfig, build_ranking_model
from muse.search import EmbeddingTable

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "ranking"
CONFIG_NAMES = sorted(path.stem for path in CONFIG_DIR.glob("*.toml"))
NUM_ITEMS = 40
NUM_CATEGORIES = 6
MULTIMODAL_DIM = 16
NO_EMBEDDING_ITEM = 39  # a known item whose MM row is all zeros


def load_model_config(name: str) -> RankingModelConfig:
    """The ``[model]`` table of configs/ranking/<name>.toml."""
    path = CONFIG_DIR / f"{name}.toml"
    return config_from_dict(
        RankingModelConfig, tomllib.loads(path.read_text())["model"], str(path), "model."
    )


def tiny(config: RankingModelConfig) -> RankingModelConfig:
    """Shrink a config for tests: K = 8, N = 8 (unless whole-history), small towers."""
    return dataclasses.replace(
        config,
        search=dataclasses.replace(
            config.search, top_k=8, soft_search_dim=8, auxiliary_hidden=(16,)
        ),
        esu=dataclasses.replace(
            config.esu,
            short_term=dataclasses.replace(config.esu.short_term, activation_unit_hidden=(16,)),
        ),
        recent_length=8 if config.recent_length else 0,
        tower_hidden=(32, 16),
    )


def tiny_features() -> FeatureSpec:
    return FeatureSpec(
        item_vocabulary_size=NUM_ITEMS,
        category_vocabulary_size=NUM_CATEGORIES,
        item_attributes=(("city", 7), ("province", 4)),
        profile_features=(("age", 5), ("gender", 3)),
        multimodal_dim=MULTIMODAL_DIM,
    )


def tiny_table() -> EmbeddingTable:
    rng = np.random.default_rng(7)
    array = rng.integers(-127, 128, size=(NUM_ITEMS, MULTIMODAL_DIM)).astype(np.int8)
    array[:2] = 0  # padding and OOV rows
    array[NO_EMBEDDING_ITEM] = 0
    return EmbeddingTable(array, scale=1 / 127)


def build(name: str, features: FeatureSpec, table: EmbeddingTable, seed: int = 0) -> RankingModel:
    torch.manual_seed(seed)
    return build_ranking_model(tiny(load_model_config(name)), features, table)


def category_of(items: torch.Tensor) -> torch.Tensor:
    """The category index of known item indices."""
    return items % (NUM_CATEGORIES - 2) + 2


def random_batch(lengths: list[int], max_length: int, seed: int = 0) -> RankingBatch:
    """Right-aligned histories of the given real lengths, padded on the left to ``max_length``."""
    generator = torch.Generator().manual_seed(seed)
    batch = len(lengths)
    items = torch.zeros((batch, max_length), dtype=torch.int64)
    for row, length in enumerate(lengths):
        if length:
            items[row, max_length - length :] = torch.randint(
                2, NUM_ITEMS, (length,), generator=generator
            )
    # An item's category is a property of the item, as in real data.
    categories = torch.where(items >= 2, category_of(items), items)
    target_item = torch.randint(2, NUM_ITEMS, (batch,), generator=generator)
    return RankingBatch(
        user_profile=torch.stack(
            [
                torch.randint(0, 5, (batch,), generator=generator),
                torch.randint(0, 3, (batch,), generator=generator),
            ],
            1,
        ),
        target_item=target_item,
        target_category=category_of(target_item),
        target_attributes=torch.stack(
            [
                torch.randint(0, 7, (batch,), generator=generator),
                torch.randint(0, 4, (batch,), generator=generator),
            ],
            1,
        ),
        history_items=items,
        history_categories=categories,
        history_length=torch.tensor(lengths, dtype=torch.int64),
        label=torch.randint(0, 2, (batch,), generator=generator).to(torch.float32),
    )


def left_pad(batch: RankingBatch, extra: int) -> RankingBatch:
    """The same batch with ``extra`` more padding positions on the left of every history."""
    return batch._replace(
        history_items=torch.nn.functional.pad(batch.history_items, (extra, 0)),
        history_categories=torch.nn.functional.pad(batch.history_categories, (extra, 0)),
    )
