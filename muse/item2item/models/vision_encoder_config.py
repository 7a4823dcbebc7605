"""Configuration of the frozen vision encoder, the ``[model.vision]`` table. Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class VisionEncoderKind(enum.Enum):
    """Which image network produces the patch features."""

    EFFICIENTNET_LITE0 = "efficientnet_lite0"  # ImageNet weights shipped in a pip package
    EFFICIENTNET_LITE0_RANDOM = "efficientnet_lite0_random"  # same network, random weights
    TINY_CONV = "tiny_conv"  # one strided conv with random weights (tests)


EFFICIENTNET_LITE0_WIDTH = 1280  # channels of extract_features: (B, 1280, S/32, S/32)


@dataclass(frozen=True)
class VisionEncoderConfig:
    """``[model.vision]``: the frozen image encoder (NoteLLM-2 uses CLIP ViT-B/16)."""

    kind: VisionEncoderKind = VisionEncoderKind.TINY_CONV
    image_size: int = 224  # S; EfficientNet-Lite0 gives (S/32)² patches, 49 at 224
    tiny_width: int = 16  # kind = "tiny_conv": C
    tiny_patch: int = 4  # kind = "tiny_conv": kernel and stride, (S/patch)² patches

    def __post_init__(self) -> None:
        if self.kind is VisionEncoderKind.TINY_CONV and self.image_size % self.tiny_patch:
            raise ValueError("vision.image_size must be a multiple of vision.tiny_patch")
        if self.kind is not VisionEncoderKind.TINY_CONV and self.image_size % 32:
            raise ValueError("EfficientNet-Lite0 needs vision.image_size a multiple of 32")

    @property
    def feature_width(self) -> int:
        """C, the width of each patch feature and of the pooled vector."""
        if self.kind is VisionEncoderKind.TINY_CONV:
            return self.tiny_width
        return EFFICIENTNET_LITE0_WIDTH

    @property
    def num_patches(self) -> int:
        """P, the number of patch features per image."""
        stride = self.tiny_patch if self.kind is VisionEncoderKind.TINY_CONV else 32
        return (self.image_size // stride) ** 2
