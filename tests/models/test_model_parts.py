"""Exact numbers for the ESU parts and the GSU: SimTier bins, SA-TA by hand, cosine top-K."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from muse.ranking.models import AttentionVariant, FeatureSpec, multimodal_search
from muse.ranking.models.activation_unit_attention import ActivationUnitAttention
from muse.ranking.models.masked_pooling import attention_pool, masked_mean
from muse.ranking.models.similarity_aware_attention import SimilarityAwareAttention
from muse.ranking.models.simtier import SimTier
from muse.search import EmbeddingTable
from muse.search.reference import reference_top_k
from tests.models.tiny_models import build, random_batch


def test_simtier_bins_and_counts_are_exact() -> None:
    simtier = SimTier(0.1)
    assert simtier.num_bins == 22
    cosines = torch.tensor([[-1.0, -0.95, -0.05, 0.0, 0.05, 0.12, 0.15, 0.55, 0.99, 1.0, 0.3]])
    # bin = ceil(cos·10) + 10
    assert simtier.bins(cosines).tolist() == [[0, 1, 10, 10, 11, 12, 12, 16, 20, 20, 13]]
    mask = torch.ones_like(cosines, dtype=torch.bool)
    mask[0, -1] = False  # a masked position is never counted
    counts = simtier.counts(cosines, mask)[0]
    expected = torch.zeros(22)
    for bin_index, count in {0: 1, 1: 1, 10: 2, 11: 1, 12: 2, 16: 1, 20: 2}.items():
        expected[bin_index] = count
    torch.testing.assert_close(counts, expected)
    with torch.no_grad():
        simtier.weight.copy_(torch.arange(22, dtype=torch.float32))
    features = simtier(cosines, mask)[0]
    torch.testing.assert_close(features, torch.log1p(expected) * torch.arange(22.0))


def test_simtier_clamps_cosines_rounded_above_one() -> None:
    simtier = SimTier(0.1)
    # A self-cosine that rounds above 1 bins exactly like 1.0 (bin 20), in torch and in ONNX alike.
    assert simtier.bins(torch.tensor([[1.0000001, -1.0000001, 1.0]])).tolist() == [[20, 0, 20]]


def _silu(values: list[float]) -> list[float]:
    return [v / (1.0 + math.exp(-v)) for v in values]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _hand_attention(logits: list[float], values: list[list[float]]) -> list[float]:
    top = max(logits)
    weights = [math.exp(v - top) for v in logits]
    total = sum(weights)
    return [
        sum(w / total * value[d] for w, value in zip(weights, values, strict=True))
        for d in range(2)
    ]


TARGET = [1.0, -0.5]
BEHAVIOURS = [[0.5, 1.0], [-1.0, 0.25], [0.7, 0.7]]
COSINES = [0.3, -0.2, 0.9]


def _identity_attention(variant: AttentionVariant) -> SimilarityAwareAttention:
    attention = SimilarityAwareAttention(2, variant, temperature_init=0.1, fusion_init=1.0)
    with torch.no_grad():
        for layer in (attention.query, attention.key, attention.value):
            layer.weight.copy_(torch.eye(2))
            if layer.bias is not None:
                layer.bias.zero_()
        attention.fusion.copy_(torch.tensor([1.0, 0.5, 2.0]))
    return attention


def _run(attention: SimilarityAwareAttention, mask: list[bool]) -> torch.Tensor:
    return attention(
        torch.tensor([TARGET]),
        torch.tensor([BEHAVIOURS]),
        torch.tensor([COSINES]),
        torch.tensor([mask]),
    )[0]


def test_similarity_aware_attention_code_version_by_hand() -> None:
    query = _silu(TARGET)
    keys = [_silu(b) for b in BEHAVIOURS]
    logits = []
    for key, cosine in zip(keys, COSINES, strict=True):
        dot, similarity = _dot(query, key), cosine / 0.1
        logits.append(1.0 * dot + 0.5 * similarity + 2.0 * dot * similarity)
    expected = _hand_attention(logits[:2], keys[:2])  # values = SiLU(identity) = keys
    actual = _run(_identity_attention(AttentionVariant.CODE), [True, True, False])
    torch.testing.assert_close(actual, torch.tensor(expected), atol=1e-6, rtol=1e-6)


def test_similarity_aware_attention_paper_version_by_hand() -> None:
    logits = []
    for key, cosine in zip(BEHAVIOURS, COSINES, strict=True):
        id_logit = _dot(TARGET, key) / math.sqrt(2)
        logits.append(1.0 * id_logit + 0.5 * cosine + 2.0 * id_logit * cosine)
    expected = _hand_attention(logits, BEHAVIOURS)
    paper = _identity_attention(AttentionVariant.PAPER)
    actual = _run(paper, [True, True, True])
    torch.testing.assert_close(actual, torch.tensor(expected), atol=1e-6, rtol=1e-6)
    code = _run(_identity_attention(AttentionVariant.CODE), [True, True, True])
    assert (actual - code).abs().max() > 1e-2
    assert paper.temperature is None and paper.query.bias is None


def test_attention_over_nothing_is_exactly_zero() -> None:
    logits = torch.tensor([[3.0, -1.0], [0.5, 0.1]])
    values = torch.randn(2, 2, 4)
    mask = torch.tensor([[False, False], [True, False]])
    pooled = attention_pool(logits, values, mask)
    assert (pooled[0] == 0).all()
    torch.testing.assert_close(pooled[1], values[1, 0])
    assert (masked_mean(values, mask)[0] == 0).all()


def test_multimodal_search_matches_brute_force(
    features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build("muse", features, table).eval()
    batch = random_batch([0, 3, 8, 20, 31], 32, seed=11)
    inputs = model.select(batch)
    k = model.config.search.top_k
    for row in range(batch.history_items.shape[0]):
        target = table.gather_normalized(batch.target_item[row : row + 1])[0].numpy()
        items = batch.history_items[row].numpy()
        real = items[items >= 2]
        cosines = table.gather_normalized(torch.from_numpy(real)).numpy() @ target
        expected = np.sort(cosines)[::-1][:k]
        kept = inputs.selected_mask[row]
        got = inputs.selected_cosines[row][kept].numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert np.all(np.diff(got) <= 1e-7), "highest first"
        got_items = inputs.selected_items[row][kept].numpy()
        np.testing.assert_allclose(
            table.gather_normalized(torch.from_numpy(got_items)).numpy() @ target, got, atol=1e-6
        )


@pytest.mark.parametrize("name", ["muse", "sim_hard", "eta"])
def test_recent_window_and_cosines(name: str, features: FeatureSpec, table: EmbeddingTable) -> None:
    model = build(name, features, table).eval()
    batch = random_batch([0, 3, 20], 24, seed=12)
    inputs = model.select(batch)
    n = model.config.recent_length
    torch.testing.assert_close(inputs.recent_items, batch.history_items[:, -n:])
    targets = table.gather_normalized(batch.target_item)
    expected = torch.einsum("bd,bnd->bn", targets, table.gather_normalized(inputs.recent_items))
    torch.testing.assert_close(
        inputs.recent_cosines, expected * inputs.recent_mask, atol=1e-6, rtol=0
    )


def test_activation_unit_matches_the_concatenated_mlp() -> None:
    torch.manual_seed(0)
    unit = ActivationUnitAttention(4, (6, 3))
    target, behaviours = torch.randn(2, 4), torch.randn(2, 5, 4)
    query = target.unsqueeze(1).expand_as(behaviours)
    pair = torch.cat([query, behaviours, query - behaviours, query * behaviours], dim=-1)
    expected = unit.rest(unit.first(pair)).squeeze(-1)
    torch.testing.assert_close(unit.logits(target, behaviours, torch.zeros(2, 5)), expected)


def test_fast_search_selects_what_the_reference_selects(
    features: FeatureSpec, table: EmbeddingTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = build("muse", features, table).eval()
    batch = random_batch([0, 3, 8, 20, 31, 64], 64, seed=13)
    fast = model.select(batch)
    monkeypatch.setattr(multimodal_search, "search_top_k", reference_top_k)
    reference = model.select(batch)
    for field in ("selected_items", "selected_categories", "selected_mask"):
        torch.testing.assert_close(getattr(fast, field), getattr(reference, field))
    torch.testing.assert_close(fast.selected_cosines, reference.selected_cosines, atol=1e-6, rtol=0)
