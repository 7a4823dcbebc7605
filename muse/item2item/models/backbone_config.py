"""Configuration of the LLM backbone, the ``[model.backbone]`` table. Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class BackboneKind(enum.Enum):
    """Where the causal LM comes from."""

    RANDOM_LLAMA = "random_llama"  # random weights from the sizes below (tests, smoke runs)
    RANDOM_QWEN2 = "random_qwen2"
    PRETRAINED = "pretrained"  # from_pretrained(path) of a model already on disk, never downloaded


@dataclass(frozen=True)
class BackboneConfig:
    """``[model.backbone]``: the causal LM whose hidden states become the item embedding."""

    kind: BackboneKind = BackboneKind.RANDOM_LLAMA
    path: Path | None = None  # kind = "pretrained": a Hugging Face model folder
    gguf_file: str = ""  # kind = "pretrained": a GGUF file inside ``path`` ("" = none)
    num_layers: int = 0  # keep only the first N decoder layers (0 = all): CPU cost
    # Sizes of a random backbone (ignored for kind = "pretrained").
    vocab_size: int = 256
    hidden_size: int = 32
    intermediate_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 512

    def __post_init__(self) -> None:
        if self.kind is BackboneKind.PRETRAINED and self.path is None:
            raise ValueError("backbone.kind = 'pretrained' needs backbone.path")
        if self.num_layers < 0:
            raise ValueError(f"backbone.num_layers must be ≥ 0, got {self.num_layers}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("backbone.hidden_size must be a multiple of num_attention_heads")
