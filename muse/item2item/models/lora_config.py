"""Configuration of LoRA adapters on the LLM backbone, ``[model.backbone.lora]``. Imports no torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoraConfig:
    """``[model.backbone.lora]``: rank 0 turns LoRA off; otherwise every ``target_modules``
    linear layer of the decoder gets a trainable rank-``rank`` update (scaled by alpha / rank)
    and every original backbone weight is frozen."""

    rank: int = 0
    alpha: int = 16
    dropout: float = 0.05
    # Linear layers by their name in Llama / Qwen2 / Mistral decoders.
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")

    def __post_init__(self) -> None:
        if self.rank < 0:
            raise ValueError(f"backbone.lora.rank must be ≥ 0, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"backbone.lora.dropout must be in [0, 1), got {self.dropout}")
        if self.rank and not self.target_modules:
            raise ValueError("backbone.lora.target_modules must name at least one layer")

    @property
    def enabled(self) -> bool:
        """Whether adapters are added."""
        return self.rank > 0
