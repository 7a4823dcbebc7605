"""Each baseline's first stage keeps what its definition says, best first."""

from __future__ import annotations

import torch

from muse.core.ids import FIRST_ID_INDEX, OOV_INDEX
from muse.ranking.models import FeatureSpec, RankingModel
from muse.ranking.models.simhash_search import SimHashSearch
from muse.search import EmbeddingTable
from tests.models.tiny_models import NO_EMBEDDING_ITEM, build, category_of, random_batch

LENGTHS = [0, 3, 9, 20, 31]


def test_same_category_search_keeps_the_most_recent_matches(
    features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build("sim_hard", features, table).eval()
    batch = random_batch(LENGTHS, 32, seed=21)
    inputs = model.select(batch)
    k = model.config.search.top_k
    for row in range(len(LENGTHS)):
        matches = torch.nonzero(
            batch.history_categories[row] == batch.target_category[row]
        ).flatten()
        expected = batch.history_items[row, matches.flip(0)[:k]]
        kept = inputs.selected_items[row][inputs.selected_mask[row]]
        assert kept.tolist() == expected.tolist()


def test_simhash_search_keeps_the_nearest_codes(
    features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build("eta", features, table).eval()
    search = model.selection.search
    assert isinstance(search, SimHashSearch)
    batch = random_batch(LENGTHS, 32, seed=22)
    inputs = model.select(batch)
    target_codes = search.codes(table.gather_normalized(batch.target_item))
    for row in range(len(LENGTHS)):
        real = batch.history_items[row][batch.history_items[row] >= 2]
        distances = (search.codes(table.gather_normalized(real)) != target_codes[row]).sum(-1)
        kept = inputs.selected_items[row][inputs.selected_mask[row]]
        kept_distances = (search.codes(table.gather_normalized(kept)) != target_codes[row]).sum(-1)
        assert kept_distances.tolist() == distances.sort().values[: kept.numel()].tolist()
    # The projections are fixed by the seed, not learned.
    again = build("eta", features, table, seed=99).selection.search
    assert isinstance(again, SimHashSearch)
    torch.testing.assert_close(again.projections, search.projections)
    assert not any(name.startswith("selection.search.") for name, _ in model.named_parameters())


def _behaviour_embeddings(
    model: RankingModel, items: torch.Tensor, categories: torch.Tensor
) -> torch.Tensor:
    """(B, n) ids → (B, n, 2D) item ⊕ category ID embeddings."""
    embedded = model.sparse.lookup_plain({"history_item": items, "history_category": categories})
    return torch.cat([embedded["history_item"], embedded["history_category"]], -1)


def test_shared_attention_search_ranks_by_the_esu_attention(
    features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build("twin", features, table).eval()
    attention = model.esu.long_term
    assert attention is not None
    batch = random_batch(LENGTHS, 32, seed=23)
    inputs = model.select(batch)
    targets_multimodal = table.gather_normalized(batch.target_item)
    with torch.no_grad():
        target = _behaviour_embeddings(
            model, batch.target_item[:, None], batch.target_category[:, None]
        )[:, 0]
        history = _behaviour_embeddings(model, batch.history_items, batch.history_categories)
        cosines = torch.einsum(
            "bd,bld->bl", targets_multimodal, table.gather_normalized(batch.history_items)
        )
        every_logit = attention.logits(target, history, cosines)
        selected = _behaviour_embeddings(model, inputs.selected_items, inputs.selected_categories)
        kept_logits = attention.logits(target, selected, inputs.selected_cosines)
    k = model.config.search.top_k
    for row in range(len(LENGTHS)):
        real = batch.history_items[row] >= 2
        expected = every_logit[row][real].sort(descending=True).values[:k]
        kept = inputs.selected_mask[row]
        torch.testing.assert_close(kept_logits[row][kept], expected, atol=1e-5, rtol=1e-5)


def test_soft_search_trains_its_projections_through_the_auxiliary_head(
    features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build("sim_soft", features, table).train()
    output = model(random_batch(LENGTHS, 32, seed=24))
    assert output.auxiliary_logits is not None
    output.auxiliary_logits.sum().backward()
    search = model.selection.search
    for name, parameter in search.named_parameters():  # type: ignore[union-attr]
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # The main logits do not depend on W_a, W_b except through which behaviours are kept.
    model.zero_grad()
    model(random_batch(LENGTHS, 32, seed=24)).logits.sum().backward()
    assert (
        search.target_projection.weight.grad is None
        or search.target_projection.weight.grad.abs().sum() == 0
    )  # type: ignore[union-attr]


def test_multimodal_search_keeps_the_most_recent_for_a_target_without_embedding(
    features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build("muse", features, table).eval()
    batch = random_batch(LENGTHS, 32, seed=25)
    targets = torch.tensor([NO_EMBEDDING_ITEM, OOV_INDEX, 5, NO_EMBEDDING_ITEM, OOV_INDEX])
    batch = batch._replace(target_item=targets, target_category=category_of(targets))
    inputs = model.select(batch)
    k = model.config.search.top_k
    for row in range(len(LENGTHS)):
        kept = inputs.selected_items[row][inputs.selected_mask[row]]
        if row == 2:  # a real embedding: ranked by cosine, not recency
            cosines = inputs.selected_cosines[row][inputs.selected_mask[row]]
            assert (cosines[:-1] >= cosines[1:]).all()
            continue
        searchable = batch.history_items[row][batch.history_items[row] >= FIRST_ID_INDEX]
        assert kept.tolist() == searchable.flip(0)[:k].tolist()
        assert (inputs.selected_cosines[row] == 0).all()
