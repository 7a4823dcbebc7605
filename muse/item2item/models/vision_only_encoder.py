"""The vision-only baseline: the frozen vision encoder's pooled vector, projected to D_out.

Only the bias-free projection trains, so this measures what the frozen image features alone
carry; it reads ``ItemBatch.images`` and ignores the text.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from muse.item2item.batch import ItemBatch
from muse.item2item.models.encoder_output import ItemEmbeddings
from muse.item2item.models.vision_encoder import VisionEncoder
from muse.item2item.models.vision_encoder_config import VisionEncoderConfig


class VisionOnlyEncoder(nn.Module):
    """Images (B, 3, S, S) → pooled frozen features (B, C) → (B, D_out) unit-norm."""

    def __init__(self, config: VisionEncoderConfig, output_dim: int) -> None:
        super().__init__()
        self.vision = VisionEncoder(config)
        self.projection = nn.Linear(self.vision.output_width, output_dim, bias=False)
        self.output_dim = output_dim

    @property
    def output_width(self) -> int:
        """D_out, the width of the embedding."""
        return self.output_dim

    def forward(self, batch: ItemBatch) -> ItemEmbeddings:
        """ItemBatch with images (B, 3, S, S) → ItemEmbeddings((B, D_out), None)."""
        pooled = self.vision.features_of(batch).pooled
        return ItemEmbeddings(multimodal=F.normalize(self.projection(pooled), dim=-1), visual=None)
