"""The training-side module: the generative retriever, the NoteLLM-2 encoder and their losses.

The two models share no parameters; they train side by side on the same batches (one optimiser,
one checkpoint) because they read the same rewritten queries and serve the same request.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from muse.conversational.conversation_batch import ConversationBatch
from muse.conversational.models.generative_retriever import GenerativeRetriever
from muse.conversational.training.train_config import ConversationalTrainConfig
from muse.item2item.models.item_encoder import ItemEncoder, build_item_encoder
from muse.item2item.models.vision_encoder import VisionEncoder
from muse.item2item.training.contrastive_loss import ContrastiveLoss


class ConversationalLossParts(NamedTuple):
    """total: retrieval + weight · encoder (scalar); retrieval: the ID tokens' mean
    cross-entropy; encoder: the query ↔ target NT-Xent; logit_scale: its exp(t)."""

    total: torch.Tensor
    retrieval: torch.Tensor
    encoder: torch.Tensor
    logit_scale: torch.Tensor


class ConversationalModel(nn.Module):
    """``retriever`` (T5 → semantic IDs), ``encoder`` (NoteLLM-2: TTR's enc) and the NT-Xent
    whose temperature the encoder learns."""

    def __init__(
        self, config: ConversationalTrainConfig, text_vocab_size: int, id_vocab_size: int
    ) -> None:
        super().__init__()
        self.config = config
        self.encoder: ItemEncoder = build_item_encoder(config.encoder)
        vision = getattr(self.encoder, "vision", None)
        # An encoder without a vision tower still needs pictures turned into features.
        self.vision: VisionEncoder = (
            vision if isinstance(vision, VisionEncoder) else VisionEncoder(config.encoder.vision)
        )
        self.retriever = GenerativeRetriever(
            config.retriever,
            text_vocab_size=text_vocab_size,
            image_feature_width=self.vision.output_width,
            id_vocab_size=id_vocab_size,
        )
        self.contrastive = ContrastiveLoss(config.loss)

    def forward(self, batch: ConversationBatch) -> ConversationalLossParts:
        """B queries → the retriever's teacher-forced cross-entropy on their targets' ID tokens
        (B, L + 2) plus the weighted NT-Xent of query and target embeddings (B, D_out) each."""
        logits = self.retriever(batch.queries, batch.labels)  # (B, L + 2, V)
        retrieval = F.cross_entropy(logits.flatten(0, 1).float(), batch.labels.flatten())
        query = self.encoder(batch.query_items).multimodal
        target = self.encoder(batch.targets).multimodal
        parts = self.contrastive(query, target)
        weight = self.config.training.encoder_loss_weight
        return ConversationalLossParts(
            retrieval + weight * parts.total, retrieval, parts.total, parts.logit_scale
        )


def conversational_model_of(model: nn.Module) -> ConversationalModel:
    """The ConversationalModel inside a (maybe DDP-wrapped) model."""
    inner = getattr(model, "module", model)
    if not isinstance(inner, ConversationalModel):
        raise TypeError(f"expected a ConversationalModel, got {type(inner).__name__}")
    return inner
