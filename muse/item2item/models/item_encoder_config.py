"""Configuration of the item encoder, the ``[model]`` table of an item-to-item TOML.

Variants (one interface, picked by ``prompt.kind`` and ``late_fusion``):

- NoteLLM-2: ``prompt.kind = "micl"``, ``late_fusion = true``
- mICL without late fusion: ``"micl"``, ``false``
- late fusion without mICL: ``"single"``, ``true``
- basic MLRM (one prompt holding the image): ``"single"``, ``false``
- text-only LLM (NoteLLM): ``"text_only"``, ``false`` (no vision encoder, no connector)

Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from muse.item2item.models.backbone_config import BackboneConfig
from muse.item2item.models.connector_config import ConnectorConfig
from muse.item2item.models.prompt_config import PromptConfig, PromptKind
from muse.item2item.models.vision_encoder_config import VisionEncoderConfig


@dataclass(frozen=True)
class ItemEncoderConfig:
    """``[model]``: backbone, vision encoder, connector, prompt and the output head."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    vision: VisionEncoderConfig = field(default_factory=VisionEncoderConfig)
    connector: ConnectorConfig = field(default_factory=ConnectorConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    late_fusion: bool = True  # gate the pooled vision vector into the last hidden state
    output_dim: int = 64  # D_out, the served embedding width

    def __post_init__(self) -> None:
        if self.late_fusion and not self.sees_images:
            raise ValueError("late_fusion needs an image: prompt.kind 'text_only' has none")
        if self.output_dim < 1:
            raise ValueError(f"output_dim must be ≥ 1, got {self.output_dim}")

    @property
    def sees_images(self) -> bool:
        """Whether the encoder reads images (builds the vision encoder and the connector)."""
        return self.prompt.kind is not PromptKind.TEXT_ONLY

    @property
    def has_visual_embedding(self) -> bool:
        """Whether the prompt has an image compression position (mICL) to read a visual one at."""
        return self.prompt.kind is PromptKind.MICL
