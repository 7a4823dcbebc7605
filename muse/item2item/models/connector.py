"""The connector: a BLIP-2 Q-Former whose learned queries read the patches, then an MLP into the LLM.

The Q output tokens are the visual tokens the mICL prompt puts where its image placeholder was.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel

from muse.item2item.models.connector_config import ConnectorConfig


class Connector(nn.Module):
    """Patch features (B, P, C) → visual tokens (B, Q, H) in the LLM's embedding space.

    ``vision_width`` is C (the Q-Former's ``encoder_hidden_size``); ``llm_width`` is H.
    """

    def __init__(self, config: ConnectorConfig, vision_width: int, llm_width: int) -> None:
        super().__init__()
        self.config = config
        self.llm_width = llm_width
        qformer_config = Blip2QFormerConfig(
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads,
            intermediate_size=config.intermediate_size,
            cross_attention_frequency=config.cross_attention_frequency,
            encoder_hidden_size=vision_width,
            hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout,
        )
        self.qformer = Blip2QFormerModel(qformer_config)
        self.queries = nn.Parameter(torch.randn(1, config.num_queries, config.hidden_size) * 0.02)
        self.projection = nn.Sequential(
            nn.Linear(config.hidden_size, llm_width),
            nn.GELU(),
            nn.Linear(llm_width, llm_width),
        )

    @property
    def output_width(self) -> int:
        """H, the width of each visual token."""
        return self.llm_width

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """patches (B, P, C) → visual tokens (B, Q, H)."""
        queries = self.queries.expand(patches.shape[0], -1, -1)
        output = self.qformer(query_embeds=queries, encoder_hidden_states=patches)
        tokens: torch.Tensor = self.projection(output.last_hidden_state)
        return tokens
