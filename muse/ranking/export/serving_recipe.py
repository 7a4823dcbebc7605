"""The serving recipe: what the server computes before a ranking bundle's ONNX graph.

Written into the manifest's ``serving`` entry by the ranking bundle writer and read back by the
server, which builds the model's own first stage (:class:`BehaviourSelection`) from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from muse.core.config_loader import config_from_dict, config_to_dict
from muse.ranking.models.ranking_model import RankingModel
from muse.ranking.models.selection_config import SERVABLE_SEARCH_KINDS, SelectionConfig


@dataclass(frozen=True)
class ServingRecipe:
    """selection: the model's first stage (search kind, K, N, which cosines the ESU reads).
    item_attributes / profile_features: column order of target_attributes / user_profile."""

    selection: SelectionConfig
    item_attributes: tuple[str, ...]
    profile_features: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "manifest.json") -> ServingRecipe:
        """Parse and check a manifest's ``serving`` entry (unknown keys and bad enums rejected)."""
        return config_from_dict(cls, data, source, prefix="serving.")


def serving_recipe(model: RankingModel) -> ServingRecipe:
    """What the server computes before the graph for ``model``; rejects unservable first stages."""
    selection = model.selection.config
    if not selection.servable:
        raise ValueError(
            f"search.kind {selection.search.kind.value!r} has learned weights in its first stage, "
            "which the server does not run; exportable kinds: "
            f"{', '.join(kind.value for kind in SERVABLE_SEARCH_KINDS)}"
        )
    return ServingRecipe(
        selection=selection,
        item_attributes=tuple(name for name, _ in model.features.item_attributes),
        profile_features=tuple(name for name, _ in model.features.profile_features),
    )
