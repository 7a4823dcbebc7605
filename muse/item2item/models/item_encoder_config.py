"""Configuration of the item encoder, the ``[model]`` table of an item-to-item TOML.

``kind`` picks the encoder family; the NoteLLM-2 variants (one interface, picked by
``prompt.kind`` and ``late_fusion``) are:

- NoteLLM-2: ``prompt.kind = "micl"``, ``late_fusion = true``
- mICL without late fusion: ``"micl"``, ``false``
- late fusion without mICL: ``"single"``, ``true``
- basic MLRM (one prompt holding the image): ``"single"``, ``false``
- text-only LLM (NoteLLM): ``"text_only"``, ``false`` (no vision encoder, no connector)

The baselines: ``kind = "vision_only"`` (the frozen vision encoder's pooled vector, projected) and
``kind = "sentence_encoder"`` (a frozen pretrained sentence encoder, MiniLM by default, over the
plain item text: ``prompt.kind = "plain"``, its own tokenizer), each with a trained projection.

Imports no torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from muse.item2item.models.backbone_config import BackboneConfig
from muse.item2item.models.connector_config import ConnectorConfig
from muse.item2item.models.prompt_config import PromptConfig, PromptKind
from muse.item2item.models.sentence_encoder_config import SentenceEncoderConfig
from muse.item2item.models.vision_encoder_config import VisionEncoderConfig


class ItemEncoderKind(enum.Enum):
    """The encoder family."""

    NOTELLM2 = "notellm2"  # LLM backbone (+ vision encoder and connector unless text-only)
    VISION_ONLY = "vision_only"  # baseline: the frozen vision encoder alone
    SENTENCE_ENCODER = "sentence_encoder"  # baseline: a frozen pretrained sentence encoder


@dataclass(frozen=True)
class ItemEncoderConfig:
    """``[model]``: backbone, vision encoder, connector, prompt and the output head."""

    kind: ItemEncoderKind = ItemEncoderKind.NOTELLM2
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    vision: VisionEncoderConfig = field(default_factory=VisionEncoderConfig)
    connector: ConnectorConfig = field(default_factory=ConnectorConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    sentence: SentenceEncoderConfig = field(default_factory=SentenceEncoderConfig)
    late_fusion: bool = True  # gate the pooled vision vector into the last hidden state
    output_dim: int = 64  # D_out, the served embedding width

    def __post_init__(self) -> None:
        plain = self.prompt.kind is PromptKind.PLAIN
        if self.kind is ItemEncoderKind.NOTELLM2:
            if plain:
                raise ValueError("prompt.kind 'plain' is for the baselines, not kind 'notellm2'")
            if self.late_fusion and not self.sees_images:
                raise ValueError("late_fusion needs an image: prompt.kind 'text_only' has none")
        else:
            if not plain:
                raise ValueError(f"kind {self.kind.value!r} needs prompt.kind = 'plain'")
            if self.late_fusion:
                raise ValueError(f"kind {self.kind.value!r} has no late fusion: set it false")
        if self.output_dim < 1:
            raise ValueError(f"output_dim must be ≥ 1, got {self.output_dim}")

    @property
    def sees_images(self) -> bool:
        """Whether the encoder reads images (so its batches carry them)."""
        if self.kind is ItemEncoderKind.NOTELLM2:
            return self.prompt.kind is not PromptKind.TEXT_ONLY
        return self.kind is ItemEncoderKind.VISION_ONLY

    @property
    def has_visual_embedding(self) -> bool:
        """Whether the prompt has an image compression position (mICL) to read a visual one at."""
        return self.kind is ItemEncoderKind.NOTELLM2 and self.prompt.kind is PromptKind.MICL
