"""Configuration of the frozen vision encoder, the ``[model.vision]`` table. Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class VisionEncoderKind(enum.Enum):
    """Which image network produces the patch features."""

    EFFICIENTNET_LITE0 = "efficientnet_lite0"  # ImageNet weights shipped in a pip package
    EFFICIENTNET_LITE0_RANDOM = "efficientnet_lite0_random"  # same network, random weights
    TINY_CONV = "tiny_conv"  # one strided conv with random weights (tests)
    # A Hugging Face vision model already on disk (ViT, CLIP / SigLIP vision tower, DINOv2,
    # ConvNeXt …), never downloaded: its last hidden states are the patches.
    PRETRAINED = "pretrained"


EFFICIENTNET_LITE0_WIDTH = 1280  # channels of extract_features: (B, 1280, S/32, S/32)


@dataclass(frozen=True)
class VisionEncoderConfig:
    """``[model.vision]``: the frozen image encoder (NoteLLM-2 uses CLIP ViT-B/16)."""

    kind: VisionEncoderKind = VisionEncoderKind.TINY_CONV
    image_size: int = 224  # S; EfficientNet-Lite0 gives (S/32)² patches, 49 at 224
    tiny_width: int = 16  # kind = "tiny_conv": C
    tiny_patch: int = 4  # kind = "tiny_conv": kernel and stride, (S/patch)² patches
    path: Path | None = None  # kind = "pretrained": the model folder

    def __post_init__(self) -> None:
        kind = self.kind
        if kind is VisionEncoderKind.TINY_CONV and self.image_size % self.tiny_patch:
            raise ValueError("vision.image_size must be a multiple of vision.tiny_patch")
        if kind is VisionEncoderKind.PRETRAINED:
            if self.path is None:
                raise ValueError("vision.kind = 'pretrained' needs vision.path")
        elif kind is not VisionEncoderKind.TINY_CONV and self.image_size % 32:
            raise ValueError("EfficientNet-Lite0 needs vision.image_size a multiple of 32")

    @property
    def feature_width(self) -> int | None:
        """C, the width of each patch feature and of the pooled vector (None for kind
        "pretrained": the model's config says, see VisionEncoder.output_width)."""
        if self.kind is VisionEncoderKind.TINY_CONV:
            return self.tiny_width
        if self.kind is VisionEncoderKind.PRETRAINED:
            return None
        return EFFICIENTNET_LITE0_WIDTH
