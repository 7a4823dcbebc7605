"""Build the ONNX graph's inputs for one request: one user, C candidates.

This is the serving twin of ``RankingModel.select``: the same features, computed once per
request instead of once per (user, candidate) row. The user's history is searched for all C
candidates in one call of the shared GSU implementation (:mod:`muse.search`), over history
embeddings that the per-user cache gathered and normalised once. A test compares the result with
the torch model end to end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from muse.core.ids import FIRST_ID_INDEX, PADDING_INDEX
from muse.export.bundle_format import ServingRecipe
from muse.search import EmbeddingTable, SearchResult
from muse.search.prepared_history import PreparedHistory
from muse.search.row_cosines import row_cosines

# (prepared history of L rows, candidates (C, D), k) → SearchResult with (1, C, K) tensors.
SearchFunction = Callable[[PreparedHistory, torch.Tensor, int], SearchResult]


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


def build_request_features(
    recipe: ServingRecipe,
    table: EmbeddingTable,
    history: UserHistory,
    candidates: Candidates,
    profile: np.ndarray,
    top_k: int,
    search: SearchFunction,
) -> dict[str, np.ndarray]:
    """Graph inputs for C rows (the ScoringInputs fields, as numpy), one row per candidate.

    profile: (P,) int64. top_k: K for this request (the variant may override the bundle's).
    Shapes: selected_* (C, K) (K = 0 without a search); recent_* (C, N) with N the recipe's
    recent_length, or the history length (at least 1) when that is 0.
    """
    count = int(candidates.items.size)
    length = int(history.items.size)
    target_multimodal = None
    if recipe.uses_multimodal:
        target_multimodal = table.gather_normalized(torch.from_numpy(candidates.items))  # (C, D)

    window = recipe.recent_length or max(length, 1)
    recent_items = _left_padded_tail(history.items, window)
    recent_categories = _left_padded_tail(history.categories, window)
    recent_mask = recent_items != PADDING_INDEX
    if recipe.recent_cosines and target_multimodal is not None and recent_mask.any():
        # The model's own per-row kernel, so serving and training cosines agree to the bit.
        window_items = np.ascontiguousarray(np.broadcast_to(recent_items, (count, window)))
        recent_cosines = row_cosines(
            table, torch.from_numpy(window_items), target_multimodal
        ).numpy()
        recent_cosines[:, ~recent_mask] = 0.0
    else:
        recent_cosines = np.zeros((count, window), dtype=np.float32)

    if recipe.search == "none":
        top_k = 0
    selected_positions = np.full((count, top_k), -1, dtype=np.int64)
    selected_cosines = np.zeros((count, top_k), dtype=np.float32)
    cosines_known = False
    if top_k and length:
        if recipe.search == "multimodal_cosine":
            if history.prepared is None or target_multimodal is None:
                raise ValueError(
                    "the multimodal search needs a prepared history and candidate embeddings"
                )
            found = search(history.prepared, target_multimodal, top_k)
            selected_positions = found.positions[0].numpy()
            selected_cosines = found.cosines[0].numpy().astype(np.float32, copy=True)
            cosines_known = True
        elif recipe.search == "same_category":
            selected_positions = _most_recent_same_category(history, candidates.categories, top_k)
        else:
            raise ValueError(f"search kind {recipe.search!r} is not servable")
    selected_mask = selected_positions >= 0
    safe_positions = np.maximum(selected_positions, 0)
    selected_items = np.where(
        selected_mask, history.items[safe_positions] if length else 0, PADDING_INDEX
    )
    selected_categories = np.where(
        selected_mask, history.categories[safe_positions] if length else 0, PADDING_INDEX
    )
    if recipe.selected_cosines and not cosines_known and target_multimodal is not None and top_k:
        kept = torch.from_numpy(selected_items.astype(np.int64))
        selected_cosines = row_cosines(table, kept, target_multimodal).numpy()
    selected_cosines = np.where(selected_mask, selected_cosines, 0.0).astype(np.float32)

    return {
        "user_profile": np.broadcast_to(profile.astype(np.int64), (count, profile.size)),
        "target_item": candidates.items.astype(np.int64),
        "target_category": candidates.categories.astype(np.int64),
        "target_attributes": candidates.attributes.astype(np.int64).reshape(count, -1),
        "selected_items": selected_items.astype(np.int64),
        "selected_categories": selected_categories.astype(np.int64),
        "selected_cosines": selected_cosines,
        "selected_mask": selected_mask,
        "recent_items": np.broadcast_to(recent_items, (count, window)),
        "recent_categories": np.broadcast_to(recent_categories, (count, window)),
        "recent_cosines": recent_cosines.astype(np.float32, copy=False),
        "recent_mask": np.broadcast_to(recent_mask, (count, window)),
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


def _left_padded_tail(values: np.ndarray, width: int) -> np.ndarray:
    """The last ``width`` entries of (L,) ``values``, left-padded with PADDING_INDEX to (width,)."""
    tail = np.asarray(values[-width:] if width else values[:0], dtype=np.int64)
    if tail.size == width:
        return tail
    return np.concatenate([np.full(width - tail.size, PADDING_INDEX, dtype=np.int64), tail])


def _left_pad_columns(value: np.ndarray, width: int) -> np.ndarray:
    missing = width - value.shape[1]
    if missing == 0:
        return value
    padding = np.zeros((value.shape[0], missing), dtype=value.dtype)  # 0 / False / 0.0 = padding
    return np.concatenate([padding, value], axis=1)


def _most_recent_same_category(
    history: UserHistory, categories: np.ndarray, top_k: int
) -> np.ndarray:
    """SIM-hard's search: (C, K) positions of the K most recent searchable behaviours of each
    candidate's category, most recent first; -1 where fewer. An OOV or padding category matches
    nothing."""
    positions = np.full((categories.size, top_k), -1, dtype=np.int64)
    searchable = history.items >= FIRST_ID_INDEX
    for category in np.unique(categories):
        if category < FIRST_ID_INDEX:
            continue
        found = np.flatnonzero(searchable & (history.categories == category))[::-1][:top_k]
        positions[categories == category, : found.size] = found
    return positions
