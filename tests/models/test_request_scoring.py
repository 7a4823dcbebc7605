"""The request form of the second stage (per-user work once per request, searched behaviours once
per distinct pair) gives the row-wise ``score_plain``'s logits, for every model config."""

from __future__ import annotations

import pytest
import torch

from muse.ranking.models import FeatureSpec
from muse.ranking.models.request_scoring import distinct_behaviours, request_inputs_from_scoring
from muse.ranking.models.scoring_inputs import ScoringInputs
from muse.search import EmbeddingTable
from tests.models.tiny_models import CONFIG_NAMES, build, random_batch


def requests_of(
    inputs: ScoringInputs, sizes: list[int], seed: int
) -> tuple[ScoringInputs, torch.Tensor]:
    """Rows regrouped into requests: each request's rows share its first row's user parts."""
    generator = torch.Generator().manual_seed(seed)
    request = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    # Every row of a request takes the user of one sampled row: profile and recent window.
    owner = torch.randint(0, inputs.target_item.shape[0], (len(sizes),), generator=generator)
    user = owner[request]
    rows = torch.randint(0, inputs.target_item.shape[0], (request.numel(),), generator=generator)
    regrouped = ScoringInputs(
        user_profile=inputs.user_profile[user],
        target_item=inputs.target_item[rows],
        target_category=inputs.target_category[rows],
        target_attributes=inputs.target_attributes[rows],
        selected_items=inputs.selected_items[rows],
        selected_categories=inputs.selected_categories[rows],
        selected_cosines=inputs.selected_cosines[rows],
        selected_mask=inputs.selected_mask[rows],
        recent_items=inputs.recent_items[user],
        recent_categories=inputs.recent_categories[user],
        recent_cosines=inputs.recent_cosines[rows],
        recent_mask=inputs.recent_mask[user],
    )
    return regrouped, request


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_request_scoring_matches_row_scoring(
    name: str, features: FeatureSpec, table: EmbeddingTable
) -> None:
    model = build(name, features, table, seed=5).eval()
    with torch.no_grad():
        inputs = model.select(random_batch([0, 3, 12, 16, 9, 1], 16, seed=4))  # row 0: no history
        rows, request = requests_of(inputs, [4, 1, 7], seed=4)
        expected = model.score_plain(rows)
        actual = model.score_requests(request_inputs_from_scoring(rows, request))
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


def test_distinct_behaviours_index_back_to_every_searched_pair() -> None:
    items = torch.tensor([[5, 7, 5], [9, 5, 0]])
    categories = torch.tensor([[2, 3, 2], [2, 4, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    unique_items, unique_categories, index = distinct_behaviours(items, categories, mask)
    # (5, 4) differs from (5, 2) by category: both are kept; the masked slot is the (0, 0) pair.
    assert sorted(zip(unique_items.tolist(), unique_categories.tolist(), strict=True)) == [
        (0, 0),
        (5, 2),
        (5, 4),
        (7, 3),
        (9, 2),
    ]
    assert torch.equal(unique_items[index][mask], items[mask])
    assert torch.equal(unique_categories[index][mask], categories[mask])


def test_request_graph_exports_and_onnxruntime_agrees(
    tmp_path, features: FeatureSpec, table: EmbeddingTable
) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime

    from muse.ranking.models.scoring_graph import export_request_scoring_onnx

    model = build("muse", features, table, seed=6).eval()
    with torch.no_grad():
        inputs = model.select(random_batch([0, 3, 12, 16, 9, 1], 16, seed=6))
        rows, request = requests_of(inputs, [3, 2], seed=6)
        example = request_inputs_from_scoring(rows, request)
        path = export_request_scoring_onnx(model, example, tmp_path / "request.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        # Other sizes on every dynamic axis: 3 requests, 9 candidates, other behaviours.
        other_rows, other_request = requests_of(inputs, [1, 5, 3], seed=7)
        other = request_inputs_from_scoring(other_rows, other_request)
        feed = {name: getattr(other, name).numpy() for name in other._fields}
        (logits,) = session.run(None, feed)
        torch.testing.assert_close(
            torch.from_numpy(logits), model.score_plain(other_rows), atol=1e-5, rtol=0
        )
