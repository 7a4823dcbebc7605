"""Build the ONNX graph's inputs for one request: one user, C candidates.

The first stage is the model's own :class:`BehaviourSelection`, the module training runs, asked
for one history (B = 1) and all C candidates at once: the user's history is searched for every
candidate in one call of the shared GSU implementation (:mod:`muse.search`), over the history
embeddings that the per-user cache gathered and normalised once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from muse.ranking.models.behaviour_selection import (
    BehaviourSelection,
    SelectedBehaviours,
    SelectionRequest,
)
from muse.ranking.models.request_scoring import request_inputs_from_scoring
from muse.ranking.models.scoring_inputs import ScoringInputs
from muse.search.prepared_history import PreparedHistory


class UserHistory(NamedTuple):
    """A user's history as the request sees it, oldest first.

    items, categories: (L,) int64 indices. prepared: the history gathered and prepared for the
    GSU search (from the per-user cache); None when the model does not search MM embeddings.
    """

    items: np.ndarray
    categories: np.ndarray
    prepared: PreparedHistory | None


class Candidates(NamedTuple):
    """The request's candidates: items, categories (C,) int64 and attributes (C, A) int64 indices."""

    items: np.ndarray
    categories: np.ndarray
    attributes: np.ndarray


class _Selected(NamedTuple):
    """What the first stage returned for one request, with the history it searched (L,)."""

    behaviours: SelectedBehaviours
    history_items: torch.Tensor
    history_categories: torch.Tensor


def _select(
    selection: BehaviourSelection, history: UserHistory, candidates: Candidates, top_k: int
) -> _Selected:
    items, categories = history.items, history.categories
    if items.size == 0:  # one padding slot: the graph's recent axis is never empty
        items = categories = np.zeros(1, dtype=np.int64)
    history_items = torch.from_numpy(np.ascontiguousarray(items, dtype=np.int64))
    history_categories = torch.from_numpy(np.ascontiguousarray(categories, dtype=np.int64))
    behaviours = selection(
        SelectionRequest(
            history_items[None],
            history_categories[None],
            torch.from_numpy(candidates.items.astype(np.int64))[None],
            torch.from_numpy(candidates.categories.astype(np.int64))[None],
            top_k=top_k,
            prepared_history=history.prepared,
        )
    )
    return _Selected(behaviours, history_items, history_categories)


def _candidate_features(candidates: Candidates) -> dict[str, np.ndarray]:
    count = int(candidates.items.size)
    return {
        "target_item": candidates.items.astype(np.int64),
        "target_category": candidates.categories.astype(np.int64),
        "target_attributes": candidates.attributes.astype(np.int64).reshape(count, -1),
    }


@torch.no_grad()
def build_request_features(
    selection: BehaviourSelection,
    history: UserHistory,
    candidates: Candidates,
    profile: np.ndarray,
    top_k: int,
) -> dict[str, np.ndarray]:
    """Graph inputs for C rows (the ScoringInputs fields, as numpy), one row per candidate.

    profile: (P,) int64. top_k: K for this request (the variant may override the bundle's; a
    model without a search keeps K = 0). Shapes: selected_* (C, K); recent_* (C, N) with N the
    recipe's recent_length, or the history length (at least 1) when that is 0.
    """
    count = int(candidates.items.size)
    behaviours = _select(selection, history, candidates, top_k).behaviours
    features = {
        "user_profile": np.broadcast_to(profile.astype(np.int64), (count, profile.size)),
        **_candidate_features(candidates),
    }
    for name in ScoringInputs._fields:
        if name not in features:
            features[name] = getattr(behaviours, name).numpy()
    return features


def distinct_positions(
    positions: np.ndarray,
    mask: np.ndarray,
    history_items: np.ndarray,
    history_categories: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``distinct_behaviours`` for behaviours read from one history (L,), keyed by position.

    positions: (C, K) int64 history positions (ignored where ``mask`` (C, K) is False). A history
    row read by several candidates becomes one behaviour, with no sort: one pass over the L
    positions. Two positions holding the same pair stay two (equal) behaviours, which pool to
    the same features. Masked slots point at an appended (0, 0) padding row, never pooled.
    Returns (behaviour_items (U,), behaviour_categories (U,), index (C, K)), int64.
    """
    length = history_items.shape[0]
    slots = np.where(mask, positions, length)
    present = np.zeros(length + 1, dtype=bool)
    present[slots.ravel()] = True
    rows = np.flatnonzero(present)
    index = (np.cumsum(present) - 1)[slots]
    items = np.append(history_items, 0).astype(np.int64, copy=False)
    categories = np.append(history_categories, 0).astype(np.int64, copy=False)
    return items[rows], categories[rows], index


@torch.no_grad()
def build_request_inputs(
    selection: BehaviourSelection,
    history: UserHistory,
    candidates: Candidates,
    profile: np.ndarray,
    top_k: int,
) -> dict[str, np.ndarray]:
    """The request graph's inputs for one request: ``request_form(build_request_features(...))``
    built directly, with equal logits (a test compares).

    The user's parts come once (R = 1) and the searched behaviours once per history position
    they were read from (``distinct_positions``: one pass over L, where deduplicating the C·K
    (item, category) pairs sorts them).
    """
    count = int(candidates.items.size)
    selected = _select(selection, history, candidates, top_k)
    behaviours = selected.behaviours
    items, categories, index = distinct_positions(
        behaviours.selected_positions.numpy(),
        behaviours.selected_mask.numpy(),
        selected.history_items.numpy(),
        selected.history_categories.numpy(),
    )
    return {
        "user_profile": profile.astype(np.int64)[None],
        "recent_items": behaviours.recent_items[:1].numpy(),
        "recent_categories": behaviours.recent_categories[:1].numpy(),
        "recent_mask": behaviours.recent_mask[:1].numpy(),
        "request": np.zeros(count, dtype=np.int64),
        **_candidate_features(candidates),
        "behaviour_items": items,
        "behaviour_categories": categories,
        "selected_index": index,
        "selected_cosines": behaviours.selected_cosines.numpy(),
        "selected_mask": behaviours.selected_mask.numpy(),
        "recent_cosines": behaviours.recent_cosines.numpy(),
    }


def concatenate_features(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stack several requests' inputs into one batch; recent windows are left-padded to the widest."""
    if len(parts) == 1:
        return {name: np.ascontiguousarray(value) for name, value in parts[0].items()}
    width = max(part["recent_items"].shape[1] for part in parts)
    merged: dict[str, np.ndarray] = {}
    for name in parts[0]:
        values = [part[name] for part in parts]
        if name.startswith("recent_"):
            values = [_left_pad_columns(value, width) for value in values]
        merged[name] = np.concatenate(values, axis=0)
    return merged


def _left_pad_columns(value: np.ndarray, width: int) -> np.ndarray:
    missing = width - value.shape[1]
    if missing == 0:
        return value
    padding = np.zeros((value.shape[0], missing), dtype=value.dtype)  # 0 / False / 0.0 = padding
    return np.concatenate([padding, value], axis=1)


def request_form(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One request's row-wise inputs (``build_request_features``) in the request graph's form:
    the user's parts once (R = 1) and the searched behaviours once per distinct pair (the plain
    reference of ``build_request_inputs``)."""
    inputs = ScoringInputs(
        **{
            name: torch.from_numpy(np.ascontiguousarray(rows[name]))
            for name in ScoringInputs._fields
        }
    )
    request = torch.zeros(inputs.target_item.shape[0], dtype=torch.int64)
    converted = request_inputs_from_scoring(inputs, request)
    return {name: value.numpy() for name, value in converted._asdict().items()}


def concatenate_requests(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stack several requests' request-form inputs into one call of the request graph.

    Requests are numbered in order, each one's searched-behaviour indices are offset past the
    behaviours before it, and recent windows are left-padded to the widest.
    """
    if len(parts) == 1:
        return concatenate_features(parts)
    first_request = first_behaviour = 0
    offset = []
    for part in parts:
        offset.append(
            {
                **part,
                "request": part["request"] + first_request,
                "selected_index": part["selected_index"] + first_behaviour,
            }
        )
        first_request += part["user_profile"].shape[0]
        first_behaviour += part["behaviour_items"].size
    return concatenate_features(offset)


def graph_feeds(parts: list[dict[str, np.ndarray]], takes_requests: bool) -> dict[str, np.ndarray]:
    """One graph call's inputs for several requests' inputs, each already in the graph's form
    (``build_request_inputs`` for a request graph, ``build_request_features`` for a row graph)."""
    if takes_requests:
        return concatenate_requests(parts)
    return concatenate_features(parts)
