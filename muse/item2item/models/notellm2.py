"""The NoteLLM-2 item encoder: image and text → one L2-normalised embedding per item.

What is unusual, in order: the frozen vision encoder's patches become Q visual tokens (Q-Former +
MLP) that replace the prompt's one image placeholder, so each row grows by Q − 1 tokens; the
visual embedding is read at the image part's compression position (causal attention: it has seen
only the image), the multimodal one at the last token; late fusion gates the pooled image vector
back into the last hidden state; both go through one bias-free projection to D_out. Losses live
in ``muse.item2item.training``, not here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from muse.item2item.batch import ItemBatch
from muse.item2item.models.backbone import Backbone
from muse.item2item.models.connector import Connector
from muse.item2item.models.encoder_output import ItemEmbeddings
from muse.item2item.models.item_encoder_config import ItemEncoderConfig
from muse.item2item.models.late_fusion import LateFusion
from muse.item2item.models.vision_encoder import VisionEncoder

__all__ = ["ItemEmbeddings", "NoteLlm2", "insert_visual_tokens"]


def insert_visual_tokens(
    embeddings: torch.Tensor,
    mask: torch.Tensor,
    placeholder: torch.Tensor,
    visual: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each row's placeholder token by its Q visual tokens.

    embeddings (B, T, H), mask (B, T) bool, placeholder (B,) int64, visual (B, Q, H) →
    embeddings (B, T + Q − 1, H) and mask (B, T + Q − 1); tokens after the placeholder move Q − 1
    positions right.
    """
    batch, length, _ = embeddings.shape
    queries = visual.shape[1]
    positions = torch.arange(length + queries - 1, device=embeddings.device).unsqueeze(0)
    start = placeholder.unsqueeze(1)
    offset = positions - start  # position within the visual tokens where in [0, Q)
    in_visual = (offset >= 0) & (offset < queries)
    source = torch.where(positions < start, positions, positions - (queries - 1))
    source = torch.where(in_visual, start, source).clamp(0, length - 1)
    text = embeddings.gather(1, source.unsqueeze(-1).expand(-1, -1, embeddings.shape[-1]))
    picked = visual.gather(
        1, offset.clamp(0, queries - 1).unsqueeze(-1).expand(batch, -1, visual.shape[-1])
    )
    widened = torch.where(in_visual.unsqueeze(-1), picked, text)
    return widened, mask.gather(1, source) | in_visual


class NoteLlm2(nn.Module):
    """Item encoder for item-to-item retrieval; every variant behind ``forward(ItemBatch)``."""

    def __init__(self, config: ItemEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = Backbone(config.backbone)
        hidden = self.backbone.hidden_size
        self.vision: VisionEncoder | None = None
        self.connector: Connector | None = None
        if config.sees_images:
            self.vision = VisionEncoder(config.vision)
            self.connector = Connector(config.connector, self.vision.output_width, hidden)
        self.late_fusion = (
            LateFusion(hidden, self.vision.output_width)
            if config.late_fusion and self.vision is not None
            else None
        )
        self.projection = nn.Linear(hidden, config.output_dim, bias=False)

    @property
    def output_width(self) -> int:
        """D_out, the width of both embeddings."""
        return self.config.output_dim

    def forward(self, batch: ItemBatch) -> ItemEmbeddings:
        """ItemBatch (B items, T tokens) → ItemEmbeddings, each (B, D_out) and unit-norm."""
        embeddings = self.backbone.input_embeddings(batch.token_ids)  # (B, T, H)
        mask = batch.attention_mask
        shift = torch.zeros_like(batch.last_index)
        pooled = None
        if self.vision is not None and self.connector is not None:
            features = self.vision.features_of(batch)
            visual_tokens = self.connector(features.patches).to(embeddings.dtype)  # (B, Q, H)
            embeddings, mask = insert_visual_tokens(
                embeddings, mask, batch.image_placeholder_index, visual_tokens
            )
            shift = shift + visual_tokens.shape[1] - 1
            pooled = features.pooled
        hidden = self.backbone(embeddings, mask)  # (B, T + Q − 1, H)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        last = hidden[rows, batch.last_index + shift]  # (B, H)
        if self.late_fusion is not None and pooled is not None:
            last = self.late_fusion(last, pooled)
        multimodal = F.normalize(self.projection(last), dim=-1)
        visual = None
        if self.config.has_visual_embedding:
            compression = hidden[rows, batch.image_compression_index + shift]
            visual = F.normalize(self.projection(compression), dim=-1)
        return ItemEmbeddings(multimodal=multimodal, visual=visual)
