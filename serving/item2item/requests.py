"""Transport-free requests and answers of the similar-items engine, and their validation."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from muse.item2item.export.new_item_inputs import NewItem
from serving.errors import InvalidArgument
from serving.ranking.requests import Assignment

# Context key that pins a loaded index bundle by name, bypassing the experiment assignment.
INDEX_CONTEXT_KEY = "index"


class SimilarQuery(NamedTuple):
    """The k items nearest to catalogue item ``item_id`` (or, when ``item`` is set, to that new
    item, whose id is then ignored), of ``category`` when not empty; ``user_id`` routes through
    the experiments; ``context`` may pin an index bundle."""

    item_id: int
    k: int
    category: str
    user_id: int
    context: dict[str, str]
    item: NewItem | None = None


class SimilarAnswer(NamedTuple):
    """item_ids (≤ k,) int64, most similar first; scores (≤ k,) float32 cosines."""

    item_ids: np.ndarray
    scores: np.ndarray
    index_version: str
    assignments: tuple[Assignment, ...]


def validate_similar_query(query: SimilarQuery, max_k: int) -> None:
    """Raise InvalidArgument naming the field a request gets wrong."""
    if not 1 <= query.k <= max_k:
        raise InvalidArgument("k", f"must be between 1 and {max_k}, got {query.k}")
