"""Transport-free requests and answers of the ranking engine, and their validation.

The gRPC servicer converts protos to these and back; nothing here knows about gRPC, so the engine
can be driven directly (tests, the benchmark's in-process path, a future HTTP front end).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from serving.errors import InvalidArgument

# Context key that pins a loaded model bundle by name, bypassing the experiment assignment.
MODEL_CONTEXT_KEY = "model"


class ScoreQuery(NamedTuple):
    """Score ``candidate_item_ids`` (C,) int64 raw ids for ``user_id``; ``context`` is optional."""

    user_id: int
    candidate_item_ids: np.ndarray
    context: dict[str, str]


class Assignment(NamedTuple):
    """One experiment the user is enrolled in."""

    layer: str
    experiment: str
    variant: str


class ScoreAnswer(NamedTuple):
    """scores: (C,) float32 click probabilities in request order; ``variant`` labels metrics."""

    scores: np.ndarray
    model_version: str
    assignments: tuple[Assignment, ...]
    variant: str


class AppendQuery(NamedTuple):
    """New behaviours of one user, each (E,): raw item and category ids (int64), whether the caller
    gave the category (bool; otherwise the server looks it up), timestamps (int64 seconds)."""

    user_id: int
    item_ids: np.ndarray
    category_ids: np.ndarray
    category_given: np.ndarray
    timestamps: np.ndarray


class AppendAnswer(NamedTuple):
    """How many behaviours were made durable and the user's history version afterwards."""

    accepted: int
    history_version: int


def validate_score_query(query: ScoreQuery, max_candidates: int) -> None:
    """Raise InvalidArgument naming the field when ``query`` cannot be scored."""
    count = int(query.candidate_item_ids.size)
    if count == 0:
        raise InvalidArgument("candidate_item_ids", "must hold at least one item id")
    if count > max_candidates:
        raise InvalidArgument(
            "candidate_item_ids", f"holds {count} item ids; the maximum is {max_candidates}"
        )
    pinned = query.context.get(MODEL_CONTEXT_KEY)
    if pinned is not None and not pinned:
        raise InvalidArgument(
            f"context[{MODEL_CONTEXT_KEY!r}]", "must name a model bundle when given"
        )


def validate_append_query(query: AppendQuery) -> None:
    """Raise InvalidArgument when there is nothing to append (the store checks the events)."""
    if query.item_ids.size == 0:
        raise InvalidArgument("behaviors", "must hold at least one behaviour")
