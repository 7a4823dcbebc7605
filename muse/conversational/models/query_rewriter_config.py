"""Configuration of the query rewriter, the ``[rewriter]`` table. Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from muse.item2item.models.backbone_config import BackboneConfig, BackboneKind

DEFAULT_INSTRUCTION = (
    "Rewrite the shopper's conversation as one standalone product search query that keeps every "
    "wish still in force (later wishes replace earlier ones, rejected items are excluded). "
    "Answer with the query only."
)


class RewriterKind(enum.Enum):
    """How a dialogue becomes one standalone query."""

    CONCAT = "concat"  # the last turns joined, oldest first (the baseline)
    ORACLE = "oracle"  # the dialogue's own rewrite targets (synthetic data): the upper bound
    LLM = "llm"  # a causal LM, prompted (SmolLM2-135M-Instruct by default), maybe fine-tuned


@dataclass(frozen=True)
class QueryRewriterConfig:
    """``[rewriter]``: the dialogue → query step.

    The picture that travels with the query is the latest one a user turn gave (uploaded, or a
    catalogue item referred to), for every kind but "oracle", which knows which one is in force.
    """

    # The LLM by default (arXiv 2508.18132 rewrites with one); on a CPU the shipped configs pick
    # "concat", since rewriting every training turn with a 135M LM takes seconds per query.
    kind: RewriterKind = RewriterKind.LLM
    # kind "concat": how many of the latest turns are joined, and whether the assistant's count.
    last_turns: int = 8
    include_assistant: bool = True
    # kind "llm": the causal LM (any backbone kind; "smollm2" is the packaged SmolLM2), its
    # instruction, and the longest query it may write.
    llm: BackboneConfig = field(default_factory=lambda: BackboneConfig(kind=BackboneKind.SMOLLM2))
    instruction: str = DEFAULT_INSTRUCTION
    max_new_tokens: int = 40
    # kind "llm": fine-tuned weights to load (a rewriter checkpoint), or None for the LM as it is.
    checkpoint: Path | None = None

    def __post_init__(self) -> None:
        if self.last_turns < 1:
            raise ValueError(f"rewriter.last_turns must be ≥ 1, got {self.last_turns}")
        if self.max_new_tokens < 1:
            raise ValueError(f"rewriter.max_new_tokens must be ≥ 1, got {self.max_new_tokens}")
        if not self.instruction.strip():
            raise ValueError("rewriter.instruction must not be empty")
