"""Picks the item encoder a config names: NoteLLM-2 (and its ablations) or a baseline.

Every encoder is an ``nn.Module`` with ``forward(ItemBatch) -> ItemEmbeddings`` and an
``output_width``, so training, evaluation, embedding and export treat them alike.
"""

from __future__ import annotations

from muse.item2item.models.item_encoder_config import ItemEncoderConfig, ItemEncoderKind
from muse.item2item.models.notellm2 import NoteLlm2
from muse.item2item.models.sentence_encoder import SentenceEncoder
from muse.item2item.models.vision_only_encoder import VisionOnlyEncoder

ItemEncoder = NoteLlm2 | VisionOnlyEncoder | SentenceEncoder


def build_item_encoder(config: ItemEncoderConfig) -> ItemEncoder:
    """The encoder of ``config.kind``, built from ``config`` alone."""
    if config.kind is ItemEncoderKind.VISION_ONLY:
        return VisionOnlyEncoder(config.vision, config.output_dim)
    if config.kind is ItemEncoderKind.SENTENCE_ENCODER:
        return SentenceEncoder(config.sentence, config.output_dim)
    return NoteLlm2(config)
