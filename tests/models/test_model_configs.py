"""Ranking configs: every TOML loads, bad ones fail clearly; FeatureSpec comes from a dataset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from muse.core.config_loader import config_from_dict, load_config
from muse.core.errors import ConfigError
from muse.ranking.models import (
    EsuConfig,
    FeatureSpec,
    LongTermAttentionConfig,
    LongTermAttentionKind,
    MeanPoolConfig,
    RankingModelConfig,
    SearchConfig,
    SearchKind,
    ShortTermAttentionConfig,
    ShortTermAttentionKind,
    SimTierConfig,
)
from muse.ranking.models.simtier import SimTier
from tests.dataset_factory import RawDataset
from tests.models.tiny_models import CONFIG_DIR, CONFIG_NAMES, load_model_config

EXPECTED_CONFIGS = {
    "muse",
    "din_last50",
    "din_full",
    "sim_hard",
    "sim_soft",
    "eta",
    "twin",
    "muse_id_ta_only",
    "muse_simtier_only",
    "muse_ta_simtier",
    "muse_sata_only",
}


@dataclasses.dataclass(frozen=True)
class _ModelFile:
    model: RankingModelConfig


def test_every_model_and_ablation_has_a_config() -> None:
    assert set(CONFIG_NAMES) >= EXPECTED_CONFIGS
    for name in CONFIG_NAMES:
        config = load_config(_ModelFile, CONFIG_DIR / f"{name}.toml").model
        assert config.name == name


def test_muse_config_is_the_published_default() -> None:
    config = load_model_config("muse")
    assert config == RankingModelConfig()
    assert config.search == SearchConfig(kind=SearchKind.MULTIMODAL_COSINE, top_k=50)
    assert SimTier(config.esu.simtier.tier_width).num_bins == 22 and config.id_embedding_dim == 16
    assert config.tower_hidden == (256, 128, 64)


def test_ablations_differ_from_muse_only_in_the_long_term_parts() -> None:
    muse = load_model_config("muse")
    expected = {
        "muse_id_ta_only": (LongTermAttentionKind.TARGET, False),
        "muse_simtier_only": (LongTermAttentionKind.NONE, True),
        "muse_ta_simtier": (LongTermAttentionKind.TARGET, True),
        "muse_sata_only": (LongTermAttentionKind.SIMILARITY_AWARE, False),
    }
    for name, (attention, simtier) in expected.items():
        ablation = load_model_config(name)
        esu = dataclasses.replace(
            muse.esu,
            long_term=dataclasses.replace(muse.esu.long_term, kind=attention),
            simtier=SimTierConfig(top_k=simtier, recent=simtier),
        )
        assert ablation == dataclasses.replace(muse, name=name, esu=esu)
    din = load_model_config("din_last50")
    assert (
        din.search.kind is SearchKind.NONE
        and din.esu.short_term.kind is ShortTermAttentionKind.ACTIVATION_UNIT
    )
    assert load_model_config("din_full").recent_length == 0


def test_unknown_keys_and_bad_values_are_rejected(tmp_path: Path) -> None:
    text = (CONFIG_DIR / "muse.toml").read_text()
    with pytest.raises(ConfigError, match="model.search.top_k must be an integer"):
        load_config(_ModelFile, CONFIG_DIR / "muse.toml", ["model.search.top_k='fifty'"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(_ModelFile, CONFIG_DIR / "muse.toml", ["model.heads=4"])
    with pytest.raises(ConfigError, match="model.esu.long_term.kind must be one of"):
        load_config(_ModelFile, CONFIG_DIR / "muse.toml", ["model.esu.long_term.kind='multi_head'"])
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('kind = "multimodal_cosine"', 'kind = "none"'))
    with pytest.raises(ConfigError, match="selects no behaviours"):
        load_config(_ModelFile, bad)


def test_unknown_nested_esu_key_is_named_in_full() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) model\.esu\.simtier\.bins "):
        load_config(_ModelFile, CONFIG_DIR / "muse.toml", ["model.esu.simtier.bins=22"])
    with pytest.raises(ConfigError, match=r"unknown key\(s\) model\.esu\.simtier_top_k "):
        load_config(_ModelFile, CONFIG_DIR / "muse.toml", ["model.esu.simtier_top_k=true"])


def test_inconsistent_compositions_are_rejected() -> None:
    with pytest.raises(ValueError, match="shared_attention"):
        RankingModelConfig(
            search=SearchConfig(kind=SearchKind.SHARED_ATTENTION),
            esu=EsuConfig(long_term=LongTermAttentionConfig(kind=LongTermAttentionKind.NONE)),
        )
    with pytest.raises(ValueError, match="divide 1"):
        SimTierConfig(tier_width=0.3)
    with pytest.raises(ValueError, match=r"\['esu.long_term.kind', 'esu.simtier.top_k'"):
        RankingModelConfig(search=SearchConfig(kind=SearchKind.NONE))
    with pytest.raises(ValueError, match="no behaviour feature"):
        EsuConfig(
            short_term=ShortTermAttentionConfig(kind=ShortTermAttentionKind.NONE),
            long_term=LongTermAttentionConfig(kind=LongTermAttentionKind.NONE),
            simtier=SimTierConfig(top_k=False, recent=False),
            mean_pool=MeanPoolConfig(top_k=False, recent=False),
        )
    with pytest.raises(ConfigError, match="top_k must be ≥ 1"):
        config_from_dict(SearchConfig, {"top_k": 0})


def test_feature_spec_from_dataset(tmp_path: Path) -> None:
    dataset = RawDataset(
        item_ids=np.arange(10, 15),
        item_categories=[1, 2, 3, 1, 1],
        item_attributes={"city": [7, 8, 7, 7, 8]},
        item_embeddings=np.zeros((5, 8), dtype=np.int8),
        user_ids=[5],
        histories=[[10, 11]],
        profiles={"age": [0]},
        vocabularies={"profile_age": np.arange(4)},  # ages nobody has still take rows
    ).write(tmp_path / "ds")
    spec = FeatureSpec.from_dataset(dataset)
    assert spec == FeatureSpec(
        item_vocabulary_size=7,
        category_vocabulary_size=5,
        item_attributes=(("city", 4),),
        profile_features=(("profile_age", 6),),
        multimodal_dim=8,
    )
