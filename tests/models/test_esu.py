"""The ESU on its own: the width it reports is the width it returns, for every ranking config."""

from __future__ import annotations

import pytest
import torch

from muse.ranking.models import FeatureSpec, SearchKind
from muse.ranking.models.esu import Esu, EsuInputs
from muse.search import EmbeddingTable
from tests.models.tiny_models import CONFIG_NAMES, build, load_model_config, random_batch

CONTEXT_FEATURES = 3
BATCH = 4


def _random_inputs(
    id_dim: int, top_k: int, recent: int, with_selected: bool, seed: int = 0
) -> EsuInputs:
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator)

    selected_mask = torch.rand((BATCH, top_k), generator=generator) < 0.7
    recent_mask = torch.rand((BATCH, recent), generator=generator) < 0.7
    return EsuInputs(
        target=normal(BATCH, 2 * id_dim),
        context=normal(BATCH, CONTEXT_FEATURES, id_dim),
        selected=normal(BATCH, top_k, 2 * id_dim) if with_selected else None,
        selected_cosines=(normal(BATCH, top_k).tanh() * selected_mask),
        selected_mask=selected_mask,
        recent=normal(BATCH, recent, 2 * id_dim),
        recent_cosines=(normal(BATCH, recent).tanh() * recent_mask),
        recent_mask=recent_mask,
    )


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_output_width_is_the_width_returned(name: str) -> None:
    config = load_model_config(name)  # full size, as configured
    esu = Esu(config.esu, config.id_embedding_dim, CONTEXT_FEATURES)
    top_k = 0 if config.search.kind is SearchKind.NONE else config.search.top_k
    inputs = _random_inputs(
        config.id_embedding_dim,
        top_k,
        config.recent_length or 37,
        with_selected=config.esu.reads_selected_behaviours,
    )
    with torch.no_grad():
        features = esu(inputs)
    assert features.shape == (BATCH, esu.output_width)
    assert torch.isfinite(features).all()


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_the_tower_reads_what_the_esu_returns(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build(name, features, table).eval()
    widths: list[int] = []
    model.esu.register_forward_hook(lambda _, __, output: widths.append(output.shape[-1]))
    with torch.no_grad():
        model(random_batch([0, 3, 9], 16))
    assert widths == [model.esu.output_width]
    assert model.tower.layers[0].in_features == model.esu.output_width


def test_a_top_k_reading_esu_refuses_missing_selected_embeddings() -> None:
    config = load_model_config("muse")
    esu = Esu(config.esu, 4, CONTEXT_FEATURES)
    inputs = _random_inputs(4, 5, 6, with_selected=False)
    with pytest.raises(ValueError, match="selected is None"):
        esu(inputs)
