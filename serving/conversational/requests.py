"""Transport-free requests and answers of the conversational engine, and their validation."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from features.dialogues import Turn
from serving.errors import InvalidArgument
from serving.ranking.requests import Assignment

# Context key that pins a loaded conversational bundle by name, bypassing the experiments.
MODEL_CONTEXT_KEY = "model"
ROLES = ("user", "assistant")


class ConverseQuery(NamedTuple):
    """One user turn: ``text`` and at most one picture (``image`` bytes or ``image_item_id``,
    0 for none); ``dialogue`` the earlier turns for stateless use (None: the session's)."""

    session_id: str
    text: str
    image: bytes
    image_item_id: int
    k: int
    user_id: int
    dialogue: tuple[Turn, ...] | None
    context: dict[str, str]


class RecommendedItems(NamedTuple):
    """item_ids (≤ k,) int64 best first, with their TTR scores, log p(ID | query) and cosines
    (≤ k,) float32, and titles."""

    item_ids: np.ndarray
    scores: np.ndarray
    log_probs: np.ndarray
    cosines: np.ndarray
    titles: list[str]


class ConverseAnswer(NamedTuple):
    """The items, the rewritten query and its picture's item (0: none), who answered, the beams
    and α used, and how many turns the session now holds."""

    items: RecommendedItems
    rewritten_query: str
    query_image_item_id: int
    model_version: str
    assignments: tuple[Assignment, ...]
    beams: int
    alpha: float
    session_turns: int


def validate_converse_query(query: ConverseQuery, max_k: int, max_text_chars: int) -> None:
    """Raise InvalidArgument naming the field a request gets wrong."""
    if not 1 <= query.k <= max_k:
        raise InvalidArgument("k", f"must be between 1 and {max_k}, got {query.k}")
    if query.image and query.image_item_id:
        raise InvalidArgument("image", "send image bytes or image_item_id, not both")
    if not query.text.strip() and not query.image and not query.image_item_id:
        raise InvalidArgument("text", "a turn needs words or a picture (image or image_item_id)")
    if len(query.text) > max_text_chars:
        raise InvalidArgument(
            "text", f"{len(query.text)} characters; the maximum is {max_text_chars}"
        )
    if query.dialogue is None and not query.session_id:
        raise InvalidArgument("session_id", "required unless the whole dialogue is sent")
    for index, turn in enumerate(query.dialogue or ()):
        if turn.role not in ROLES:
            raise InvalidArgument(
                f"dialogue[{index}].role", f"must be 'user' or 'assistant', got {turn.role!r}"
            )
        if turn.image is not None and turn.image_item_id is not None:
            raise InvalidArgument(
                f"dialogue[{index}].image", "image bytes or image_item_id, not both"
            )
