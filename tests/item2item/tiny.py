"""Tiny offline pieces for the item-encoder tests: a word-level tokenizer and small configs."""

from __future__ import annotations

import dataclasses

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from muse.item2item.models.backbone_config import BackboneConfig
from muse.item2item.models.connector_config import ConnectorConfig
from muse.item2item.models.item_encoder_config import ItemEncoderConfig
from muse.item2item.models.prompt import ItemText
from muse.item2item.models.prompt_config import PromptConfig, PromptKind
from muse.item2item.models.vision_encoder_config import VisionEncoderConfig

WORDS = frozenset(
    [
        "note",
        "image",
        "content",
        "compress",
        "this",
        "into",
        "one",
        "word",
        ":",
        '"',
        "red",
        "shoes",
        "blue",
        "hat",
        "summer",
        "winter",
        "sale",
        "new",
        "sneakers",
        "for",
        "running",
        "warm",
        "wool",
        "#",
        "style",
        "sport",
        "cozy",
    ]
)
IMAGE_SIZE = 8
QUERIES = 4


def tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``WORDS`` (lower-cased, punctuation split off)."""
    vocab = {"[PAD]": 0, "[UNK]": 1, **{word: i + 2 for i, word in enumerate(sorted(WORDS))}}
    model = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    model.normalizer = None
    model.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    return PreTrainedTokenizerFast(tokenizer_object=model, pad_token="[PAD]", unk_token="[UNK]")


def config(kind: PromptKind = PromptKind.MICL, late_fusion: bool = True) -> ItemEncoderConfig:
    """Hidden 32, 2 layers, Q = 4, 8×8 images, tiny conv vision encoder."""
    return ItemEncoderConfig(
        backbone=BackboneConfig(vocab_size=64),
        vision=VisionEncoderConfig(image_size=IMAGE_SIZE, tiny_width=8, tiny_patch=4),
        connector=ConnectorConfig(
            num_queries=QUERIES, num_layers=2, num_heads=2, hidden_size=16, intermediate_size=32
        ),
        prompt=dataclasses.replace(
            PromptConfig(kind=kind),
            image_prefix="note image :",
            text_prefix="note content :",
        ),
        late_fusion=late_fusion,
        output_dim=8,
    )


def items() -> list[ItemText]:
    return [
        ItemText("red shoes", ("#style", "#sport"), "new sneakers for running"),
        ItemText("wool hat", ("#cozy",), "warm winter hat sale"),
    ]


def images(count: int = 2) -> torch.Tensor:
    return torch.randn(count, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0))
