"""Configuration of the item prompt, the ``[model.prompt]`` table. Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PromptKind(enum.Enum):
    """How the image enters the prompt."""

    MICL = "micl"  # image part, then text part, each ending in its compression position
    SINGLE = "single"  # one prompt holding the image and the text (basic MLRM)
    TEXT_ONLY = "text_only"  # no image at all (NoteLLM)
    PLAIN = "plain"  # the item text alone, no instruction (the baselines' sentence encoder)

    @property
    def shows_image(self) -> bool:
        """Whether the prompt holds an image placeholder."""
        return self in (PromptKind.MICL, PromptKind.SINGLE)


@dataclass(frozen=True)
class PromptConfig:
    """``[model.prompt]``: templates and text limits (NoteLLM-2: 20 / 10 / 80)."""

    kind: PromptKind = PromptKind.MICL
    image_prefix: str = "Note image:"
    image_instruction: str = "compress this image into one word:"
    text_prefix: str = "Note content:"
    text_instruction: str = "compress this note into one word:"
    # One token closing each part: its hidden state is read as the part's embedding.
    compression_token: str = '"'
    max_title_chars: int = 20
    max_topics: int = 10
    max_content_chars: int = 80

    def __post_init__(self) -> None:
        limits = (self.max_title_chars, self.max_topics, self.max_content_chars)
        if min(limits) < 0:
            raise ValueError(f"prompt text limits must be ≥ 0, got {limits}")
        if not self.compression_token:
            raise ValueError("prompt.compression_token must not be empty")
