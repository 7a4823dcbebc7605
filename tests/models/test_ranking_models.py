"""One shared suite over every ranking config in configs/ranking/ (tiny sizes)."""

from __future__ import annotations

import pytest
import torch

from muse.core.ids import FIRST_ID_INDEX, OOV_INDEX
from muse.ranking.models import FeatureSpec, SearchKind
from muse.search import EmbeddingTable
from tests.models.tiny_models import (
    CONFIG_NAMES,
    NO_EMBEDDING_ITEM,
    build,
    left_pad,
    load_model_config,
    random_batch,
)

LENGTHS = [0, 3, 8, 20, 31, 1]


@pytest.fixture(params=CONFIG_NAMES)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_output_shapes(name: str, features: FeatureSpec, table: EmbeddingTable) -> None:
    model = build(name, features, table)
    output = model(random_batch(LENGTHS, 32))
    assert output.logits.shape == (len(LENGTHS),)
    assert torch.isfinite(output.logits).all()
    has_auxiliary = load_model_config(name).search.kind is SearchKind.SOFT_INNER_PRODUCT
    assert (output.auxiliary_logits is not None) == has_auxiliary
    if output.auxiliary_logits is not None:
        assert output.auxiliary_logits.shape == (len(LENGTHS),)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_empty_history_and_oov_target_score_without_nan(
    name: str, training: bool, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build(name, features, table).train(training)
    batch = random_batch([0, 0, 12, 5, 0], 16, seed=3)
    batch = batch._replace(
        # rows: empty; empty + OOV target; OOV target; target without an MM embedding; all-OOV
        target_item=torch.tensor([5, OOV_INDEX, OOV_INDEX, NO_EMBEDDING_ITEM, OOV_INDEX]),
        target_category=torch.tensor([2, OOV_INDEX, 3, 4, OOV_INDEX]),
    )
    output = model(batch)
    assert torch.isfinite(output.logits).all()
    loss = output.logits.sum() + (
        0 if output.auxiliary_logits is None else output.auxiliary_logits.sum()
    )
    loss.backward()
    for parameter_name, parameter in model.named_parameters():
        if parameter.grad is not None:
            assert torch.isfinite(parameter.grad).all(), parameter_name


def test_empty_history_selects_nothing(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build(name, features, table).eval()
    inputs = model.select(random_batch([0, 0], 16))
    assert not inputs.selected_mask.any() and not inputs.recent_mask.any()
    assert (inputs.selected_items == 0).all() and (inputs.selected_cosines == 0).all()


def test_gradients_reach_dense_and_sparse_parameters(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build(name, features, table).train()
    output = model(random_batch(LENGTHS, 32, seed=1))
    loss = output.logits.square().mean()
    if output.auxiliary_logits is not None:
        loss = loss + output.auxiliary_logits.square().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    for table_name, embedding in model.sparse.collection.embeddings.items():
        assert embedding.weight.grad is not None and embedding.weight.grad.abs().sum() > 0, (
            table_name
        )
    dense = [p for n, p in model.named_parameters() if not n.startswith("sparse.")]
    assert dense and all(p.grad is not None for p in dense)
    assert model.tower.layers[0].weight.grad.abs().sum() > 0


def test_permuting_the_batch_permutes_the_outputs(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build(name, features, table).eval()
    batch = random_batch(LENGTHS, 32, seed=2)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    permuted = type(batch)(*(field[order] for field in batch))
    with torch.no_grad():
        expected = model(batch).logits[order]
        actual = model(permuted).logits
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-5)


def test_more_left_padding_changes_nothing(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build(name, features, table).eval()
    batch = random_batch(LENGTHS, 32, seed=4)
    with torch.no_grad():
        expected = model(batch)
        padded = model(left_pad(batch, 13))
    torch.testing.assert_close(padded.logits, expected.logits, atol=1e-6, rtol=1e-5)
    if expected.auxiliary_logits is not None:
        torch.testing.assert_close(
            padded.auxiliary_logits, expected.auxiliary_logits, atol=1e-6, rtol=1e-5
        )


def test_forward_is_score_of_select(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build(name, features, table).eval()
    batch = random_batch(LENGTHS, 32, seed=5)
    with torch.no_grad():
        inputs = model.select(batch)
        staged = model.score(inputs)
        plain = model.score_plain(inputs)
        forward = model(batch).logits
    torch.testing.assert_close(staged, forward, atol=0, rtol=0)
    torch.testing.assert_close(plain, forward, atol=1e-6, rtol=1e-5)


def test_histories_shorter_than_k_and_n(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build(name, features, table).eval()
    config = model.config
    batch = random_batch([0, 2, 4], 4, seed=6)
    inputs = model.select(batch)
    expected_k = 0 if config.search.kind is SearchKind.NONE else config.search.top_k
    assert inputs.selected_items.shape == (3, expected_k)
    assert inputs.recent_items.shape == (3, config.recent_length or 4)
    assert inputs.recent_mask.sum(1).tolist() == [0, 2, 4]
    if config.search.kind is SearchKind.SAME_CATEGORY:
        same = (batch.history_categories == batch.target_category[:, None]) & (
            batch.history_items >= 2
        )
        assert inputs.selected_mask.sum(1).tolist() == same.sum(1).tolist()
    elif expected_k:
        assert inputs.selected_mask.sum(1).tolist() == [0, 2, 4]
    assert torch.isfinite(model(batch).logits).all()


def test_search_never_selects_padding_or_oov(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    config = load_model_config(name)
    if config.search.kind is SearchKind.NONE:
        pytest.skip("no search stage")
    model = build(name, features, table).eval()
    batch = random_batch(LENGTHS, 32, seed=8)
    items = batch.history_items.clone()
    items[:, -2] = torch.where(items[:, -2] > 0, OOV_INDEX, 0)  # an OOV behaviour in each history
    batch = batch._replace(history_items=items)
    inputs = model.select(batch)
    assert (inputs.selected_items[inputs.selected_mask] >= FIRST_ID_INDEX).all()
    assert (inputs.selected_items[~inputs.selected_mask] == 0).all()
    mask = inputs.selected_mask
    assert (mask[:, 1:] <= mask[:, :-1]).all(), "kept behaviours must come before empty slots"
    searchable = (items >= FIRST_ID_INDEX).sum(1)
    if config.search.kind is not SearchKind.SAME_CATEGORY:
        assert (
            inputs.selected_mask.sum(1).tolist()
            == searchable.clamp(max=model.config.search.top_k).tolist()
        )


def test_a_batch_of_one_trains(name: str, features: FeatureSpec, table: EmbeddingTable) -> None:
    model = build(name, features, table).train()
    output = model(random_batch([5], 8, seed=9))
    assert output.logits.shape == (1,) and torch.isfinite(output.logits).all()
    output.logits.sum().backward()
