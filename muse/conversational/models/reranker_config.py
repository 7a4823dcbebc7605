"""Configuration of test-time reranking (TTR), the ``[reranker]`` table. Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from muse.item2item.models.backbone_config import BackboneConfig, BackboneKind

DEFAULT_ALPHA_GRID = tuple(round(step / 20, 2) for step in range(21))
DEFAULT_JUDGE_PROMPT = (
    "Shopper's request: {query}\nProduct: {item}\nDoes the product match the request? "
    "Answer yes or no.\nAnswer:"
)


class RerankerKind(enum.Enum):
    """What rescores the retriever's top beams."""

    NONE = "none"  # the retriever's own order: log p(ID | query)
    # s = α·log p(ID | query) + (1 − α)·cos(enc(query), enc(item)), enc the NoteLLM-2 encoder
    DENSE = "dense"
    # s = α·log p(ID | query) + (1 − α)·(log p("yes") − log p("no")) of an LLM judging each
    # (query, item text) pair
    LLM_JUDGE = "llm_judge"


@dataclass(frozen=True)
class RerankerConfig:
    """``[reranker]``: how many beams are rescored and how.

    alpha: the weight of the retriever's log-probability; unset, it is tuned on the validation
    dialogues over ``alpha_grid`` (the best last-turn MRR) and saved with the run.
    """

    kind: RerankerKind = RerankerKind.DENSE
    beams: int = 20
    alpha: float | None = None
    alpha_grid: tuple[float, ...] = DEFAULT_ALPHA_GRID
    # kind "llm_judge": the judging LM and its prompt ({query} and {item} are filled in).
    judge: BackboneConfig = field(default_factory=lambda: BackboneConfig(kind=BackboneKind.SMOLLM2))
    judge_prompt: str = DEFAULT_JUDGE_PROMPT
    judge_yes: str = " yes"
    judge_no: str = " no"

    @property
    def fixed_alpha(self) -> float | None:
        """α when it is not tuned: 1 for kind "none" (the retriever alone), else ``alpha``."""
        return 1.0 if self.kind is RerankerKind.NONE else self.alpha

    def __post_init__(self) -> None:
        if self.beams < 1:
            raise ValueError(f"reranker.beams must be ≥ 1, got {self.beams}")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"reranker.alpha must be in [0, 1], got {self.alpha}")
        if not self.alpha_grid or any(not 0.0 <= a <= 1.0 for a in self.alpha_grid):
            raise ValueError("reranker.alpha_grid must hold values in [0, 1]")
        if "{query}" not in self.judge_prompt or "{item}" not in self.judge_prompt:
            raise ValueError("reranker.judge_prompt must contain {query} and {item}")
