"""Which task a config, training run or model bundle belongs to. Imports no torch."""

from __future__ import annotations

import enum
from typing import Any

from muse.core.errors import ConfigError


class TaskKind(enum.Enum):
    """A task of the recommender; written as the ``task`` key of configs and bundle manifests."""

    RANKING = "ranking"
    ITEM_TO_ITEM = "item_to_item"  # NoteLLM-2 item embeddings and the similar-item index
    CONVERSATIONAL = "conversational"  # semantic IDs, the generative retriever, reranking


def task_of_config(raw: dict[str, Any], source: str) -> TaskKind:
    """The top-level ``task`` of a raw (parsed TOML) config; RANKING when the key is absent."""
    value = raw.get("task", TaskKind.RANKING.value)
    try:
        return TaskKind(value)
    except ValueError:
        allowed = [kind.value for kind in TaskKind]
        raise ConfigError(f"{source}: task must be one of {allowed}, got {value!r}") from None
