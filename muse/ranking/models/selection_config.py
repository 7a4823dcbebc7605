"""What the first stage (GSU) of a ranking model computes, as the trainer and the server both run it.

Derived from the model config; the export writes it into the bundle so that the server builds the
very same :class:`~muse.ranking.models.behaviour_selection.BehaviourSelection`. Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from muse.ranking.models.ranking_config import RankingModelConfig, SearchConfig, SearchKind

# First stages without learned weights: the server can run them from the config alone.
SERVABLE_SEARCH_KINDS = (SearchKind.NONE, SearchKind.MULTIMODAL_COSINE, SearchKind.SAME_CATEGORY)


@dataclass(frozen=True)
class SelectionConfig:
    """search: the search kind and K. recent_length: N (0 = the whole visible history).
    multimodal: whether the targets' MM embeddings are read at all. recent_cosines /
    selected_cosines: whether the ESU reads those cosines (else they stay 0)."""

    search: SearchConfig
    recent_length: int
    multimodal: bool
    recent_cosines: bool
    selected_cosines: bool

    @classmethod
    def of(cls, model: RankingModelConfig) -> SelectionConfig:
        """The first stage of ``model``."""
        multimodal = model.uses_multimodal
        return cls(
            search=model.search,
            recent_length=model.recent_length,
            multimodal=multimodal,
            recent_cosines=multimodal and model.esu.reads_recent_cosines,
            selected_cosines=multimodal
            and (
                model.search.kind is SearchKind.MULTIMODAL_COSINE
                or model.esu.reads_selected_cosines
            ),
        )

    @property
    def top_k(self) -> int:
        """K kept by the search; 0 without one."""
        return 0 if self.search.kind is SearchKind.NONE else self.search.top_k

    @property
    def servable(self) -> bool:
        """Whether the search has no learned weights, so the server can run it."""
        return self.search.kind in SERVABLE_SEARCH_KINDS
