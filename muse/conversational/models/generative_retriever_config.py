"""Configuration of the generative retriever, the ``[retriever]`` table. Imports no torch.

The text vocabulary, the image feature width and the ID vocabulary are not keys: they come from
the tokenizer, the vision encoder and the semantic ID map, and are given when the model is built.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GenerativeRetrieverConfig:
    """``[retriever]``: a T5 encoder-decoder trained from scratch, query → semantic ID.

    TIGER's sizes by default: 4 + 4 layers, d_model 128, d_ff 1024, 6 heads of d_kv 64.
    """

    d_model: int = 128
    d_ff: int = 1024
    num_heads: int = 6
    d_kv: int = 64  # per head; T5 allows num_heads · d_kv ≠ d_model
    encoder_layers: int = 4
    decoder_layers: int = 4
    dropout: float = 0.1
    image_tokens: int = 2  # encoder tokens a query's picture becomes (one Linear of its features)
    max_query_tokens: int = 96  # a longer query keeps its latest text tokens

    def __post_init__(self) -> None:
        sizes = {
            "d_model": self.d_model,
            "d_ff": self.d_ff,
            "num_heads": self.num_heads,
            "d_kv": self.d_kv,
            "encoder_layers": self.encoder_layers,
            "decoder_layers": self.decoder_layers,
            "image_tokens": self.image_tokens,
            "max_query_tokens": self.max_query_tokens,
        }
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"retriever.{name} must be ≥ 1, got {value}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"retriever.dropout must be in [0, 1), got {self.dropout}")
