"""The training-side module: the item encoder and the contrastive loss whose temperature it learns."""

from __future__ import annotations

import torch
from torch import nn

from muse.item2item.models.item_encoder import ItemEncoder, build_item_encoder
from muse.item2item.training.contrastive_loss import ContrastiveLoss, ContrastiveLossParts
from muse.item2item.training.item_inputs import ItemPairBatch
from muse.item2item.training.train_config import ItemTrainConfig


class ItemPairModel(nn.Module):
    """``encoder`` (the item encoder, what is served) and ``loss`` (NT-Xent with its learnable t)."""

    def __init__(self, config: ItemTrainConfig) -> None:
        super().__init__()
        self.encoder = build_item_encoder(config.model)
        self.loss = ContrastiveLoss(config.loss)

    def forward(self, batch: ItemPairBatch) -> ContrastiveLossParts:
        """N pairs → the weighted multimodal + visual NT-Xent over their 2N embeddings."""
        side_a = self.encoder(batch.side_a)  # (N, D_out) each
        side_b = self.encoder(batch.side_b)
        return self.loss(
            side_a.multimodal, side_b.multimodal, side_a.visual, side_b.visual, batch.weights
        )


def encoder_of(model: nn.Module) -> ItemEncoder:
    """The item encoder inside a (maybe DDP-wrapped) ItemPairModel."""
    inner = getattr(model, "module", model)
    if not isinstance(inner, ItemPairModel):
        raise TypeError(f"expected an ItemPairModel, got {type(inner).__name__}")
    return inner.encoder


def logit_scale_of(model: nn.Module) -> float:
    """exp(t), the contrastive loss's current logit scale."""
    inner = getattr(model, "module", model)
    assert isinstance(inner, ItemPairModel)
    with torch.no_grad():
        return float(inner.loss.temperature.exp())
