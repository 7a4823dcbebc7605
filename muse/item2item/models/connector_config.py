"""Configuration of the Q-Former connector, the ``[model.connector]`` table. Imports no torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectorConfig:
    """``[model.connector]``: BLIP-2 Q-Former + 2-layer GELU MLP (NoteLLM-2: 6 layers, Q = 16)."""

    num_queries: int = 16  # Q visual tokens that replace the one image placeholder
    num_layers: int = 6
    num_heads: int = 12
    hidden_size: int = 768
    intermediate_size: int = 3072
    cross_attention_frequency: int = 2  # every n-th Q-Former layer cross-attends to the patches
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.num_queries < 1 or self.num_layers < 1:
            raise ValueError("connector.num_queries and connector.num_layers must be ≥ 1")
        if self.hidden_size % self.num_heads:
            raise ValueError("connector.hidden_size must be a multiple of connector.num_heads")
