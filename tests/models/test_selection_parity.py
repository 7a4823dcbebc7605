"""Training and serving select the same behaviours: one first stage, two call shapes.

Training calls ``RankingModel.select`` on B samples (one target per padded history); the server
builds the bundle's first stage from its serving recipe and asks it for one user's history
(prepared by the per-user cache) and all C candidates at once. For every search kind a bundle can
serve, both must keep the same behaviours with the same cosines and the same recent window.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from muse.core.ids import OOV_INDEX, PADDING_INDEX
from muse.ranking.batch import RankingBatch
from muse.ranking.export.serving_recipe import ServingRecipe, serving_recipe
from muse.ranking.models import FeatureSpec
from muse.ranking.models.behaviour_selection import BehaviourSelection
from muse.ranking.models.ranking_config import SearchKind
from muse.ranking.models.request_scoring import RequestScoringInputs
from muse.search import EmbeddingTable
from muse.search.prepared_history import prepare_from_table
from serving.ranking.request_features import (
    Candidates,
    UserHistory,
    build_request_features,
    build_request_inputs,
    distinct_positions,
    request_form,
)
from tests.models.tiny_models import NO_EMBEDDING_ITEM, NUM_ITEMS, build, category_of

SERVABLE_MODELS = ["muse", "din_last50", "din_full", "sim_hard"]
HISTORY_LENGTHS = [0, 3, 9, 31, 120]
BEHAVIOUR_FIELDS = ("items", "categories", "cosines", "mask")


def _history(length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A user's history, oldest first, with an OOV behaviour among known ones."""
    rng = np.random.default_rng(seed)
    items = rng.integers(2, NUM_ITEMS, size=length).astype(np.int64)
    if length > 2:
        items[length // 2] = OOV_INDEX
    categories = np.where(items >= 2, category_of(torch.from_numpy(items)).numpy(), items)
    return items, categories


def _candidates(seed: int) -> Candidates:
    """Known items, a known item without an MM row and an OOV item (both keep the most recent K)."""
    rng = np.random.default_rng(seed)
    items = np.concatenate([rng.integers(2, NUM_ITEMS - 1, size=5), [NO_EMBEDDING_ITEM, OOV_INDEX]])
    categories = np.where(items >= 2, category_of(torch.from_numpy(items)).numpy(), items)
    return Candidates(items, categories, np.zeros((items.size, 2), dtype=np.int64))


def _training_rows(
    histories: list[tuple[np.ndarray, np.ndarray]], candidates: Candidates
) -> RankingBatch:
    """One sample per (user, candidate), histories right-aligned in one padded batch."""
    width = max(max(items.size for items, _ in histories), 1)
    rows = [(items, categories, c) for items, categories in histories for c in range(7)]
    history_items = torch.zeros((len(rows), width), dtype=torch.int64)
    history_categories = torch.zeros_like(history_items)
    for row, (items, categories, _) in enumerate(rows):
        if items.size:
            history_items[row, width - items.size :] = torch.from_numpy(items)
            history_categories[row, width - items.size :] = torch.from_numpy(categories)
    targets = [c for _, _, c in rows]
    count = len(rows)
    return RankingBatch(
        user_profile=torch.zeros((count, 2), dtype=torch.int64),
        target_item=torch.from_numpy(candidates.items[targets]),
        target_category=torch.from_numpy(candidates.categories[targets]),
        target_attributes=torch.zeros((count, 2), dtype=torch.int64),
        history_items=history_items,
        history_categories=history_categories,
        history_length=torch.tensor([items.size for items, _, _ in rows]),
        label=torch.zeros(count),
    )


def _right_aligned(values: np.ndarray, width: int) -> np.ndarray:
    """The last ``width`` columns, left-padded with zeros (padding) where there are fewer."""
    if values.shape[1] >= width:
        return values[:, values.shape[1] - width :]
    return np.pad(values, ((0, 0), (width - values.shape[1], 0)))


@pytest.mark.parametrize("name", SERVABLE_MODELS)
def test_training_and_serving_select_the_same_behaviours(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build(name, features, table).eval()
    recipe = ServingRecipe.from_dict(serving_recipe(model).to_dict())
    assert recipe.selection == model.selection.config
    served_selection = BehaviourSelection(recipe.selection, table, 0, table.dim)
    kind = recipe.selection.search.kind
    histories = [_history(length, seed) for seed, length in enumerate(HISTORY_LENGTHS)]
    candidates = _candidates(seed=11)
    with torch.no_grad():
        trained = model.select(_training_rows(histories, candidates))
    for user, (items, categories) in enumerate(histories):
        prepared = None
        if kind is SearchKind.MULTIMODAL_COSINE and items.size:
            prepared = prepare_from_table(table, torch.from_numpy(items))
        served = build_request_features(
            served_selection,
            UserHistory(items, categories, prepared),
            candidates,
            np.zeros(2, dtype=np.int64),
            recipe.selection.top_k,
        )
        rows = slice(user * 7, (user + 1) * 7)
        for stage in ("selected", "recent"):
            width = served[f"{stage}_items"].shape[1]
            for field in BEHAVIOUR_FIELDS:
                expected = getattr(trained, f"{stage}_{field}")[rows].numpy()
                if stage == "recent":  # a padded batch may show more padding on the left
                    assert not _right_aligned(expected, expected.shape[1])[:, :-width].any()
                    expected = _right_aligned(expected, width)
                np.testing.assert_allclose(
                    served[f"{stage}_{field}"],
                    expected,
                    atol=1e-6,
                    err_msg=f"{name}: user {user} {stage}_{field}",
                )
        if recipe.selection.top_k and items.size > recipe.selection.top_k:
            assert served["selected_mask"].any()  # the comparison saw real behaviours


def test_serving_top_k_override_and_no_search() -> None:
    """A variant's K override changes K for a search; a model without one keeps K = 0."""
    from tests.models.tiny_models import tiny_features, tiny_table

    table = tiny_table()
    items, categories = _history(60, seed=3)
    candidates = _candidates(seed=4)
    for name, expected_k in (("muse", 12), ("sim_hard", 12), ("din_last50", 0)):
        model = build(name, tiny_features(), table)
        prepared = prepare_from_table(table, torch.from_numpy(items))
        served = build_request_features(
            model.selection,
            UserHistory(items, categories, prepared if name == "muse" else None),
            candidates,
            np.zeros(2, dtype=np.int64),
            top_k=12,
        )
        assert served["selected_items"].shape == (candidates.items.size, expected_k)
        assert served["recent_items"].shape[0] == candidates.items.size
        assert (served["selected_items"][~served["selected_mask"]] == PADDING_INDEX).all()


@pytest.mark.parametrize("name", SERVABLE_MODELS)
def test_direct_request_inputs_score_as_the_converted_rows(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    """``build_request_inputs`` (behaviours deduplicated by history position) gives the logits of
    the plain route: row inputs converted by ``request_form`` (deduplicated by pair)."""
    model = build(name, features, table, seed=2).eval()
    recipe = ServingRecipe.from_dict(serving_recipe(model).to_dict())
    kind = recipe.selection.search.kind
    candidates = _candidates(seed=12)
    for seed, length in enumerate(HISTORY_LENGTHS):
        items, categories = _history(length, seed)
        if length > 8:
            items[-4:] = items[:4]  # a repeated item: two positions, one pair
            categories[-4:] = categories[:4]
        prepared = None
        if kind is SearchKind.MULTIMODAL_COSINE and items.size:
            prepared = prepare_from_table(table, torch.from_numpy(items))
        history = UserHistory(items, categories, prepared)
        arguments = (model.selection, history, candidates, np.zeros(2, dtype=np.int64))
        direct = build_request_inputs(*arguments, recipe.selection.top_k)
        reference = request_form(build_request_features(*arguments, recipe.selection.top_k))
        assert set(direct) == set(reference)
        for field in (
            "request",
            "target_item",
            "selected_mask",
            "selected_cosines",
            "recent_items",
        ):
            np.testing.assert_array_equal(direct[field], reference[field], err_msg=field)
        # Each searched slot reads the same (item, category) in both forms.
        for form in (direct, reference):
            form["pairs"] = np.stack(
                [form["behaviour_items"], form["behaviour_categories"]], axis=-1
            )[form["selected_index"]]
        mask = direct["selected_mask"]
        np.testing.assert_array_equal(direct["pairs"][mask], reference["pairs"][mask])
        with torch.no_grad():
            logits = [
                model.score_requests(
                    RequestScoringInputs(
                        **{f: torch.from_numpy(form[f]) for f in RequestScoringInputs._fields}
                    )
                )
                for form in (direct, reference)
            ]
        torch.testing.assert_close(logits[0], logits[1], atol=1e-6, rtol=0)


def test_distinct_positions_read_each_history_row_once() -> None:
    history_items = np.array([11, 12, 13, 11, 14])
    history_categories = np.array([1, 2, 3, 1, 4])
    positions = np.array([[3, 1, 4], [1, 0, -1], [4, 3, 0]])
    mask = np.array([[True, True, True], [True, True, False], [True, True, True]])
    items, categories, index = distinct_positions(
        positions, mask, history_items, history_categories
    )
    # Positions 0, 1, 3, 4 read, ascending, then the padding row for the masked slot.
    assert items.tolist() == [11, 12, 11, 14, 0] and categories.tolist() == [1, 2, 1, 4, 0]
    assert np.array_equal(items[index][mask], history_items[positions[mask]])
    assert np.array_equal(categories[index][mask], history_categories[positions[mask]])
    assert index[1, 2] == 4  # the masked slot points at the padding row
    empty = distinct_positions(
        np.zeros((3, 0), dtype=np.int64),
        np.zeros((3, 0), dtype=bool),
        history_items,
        history_categories,
    )
    assert empty[0].size == 0 and empty[2].shape == (3, 0)
