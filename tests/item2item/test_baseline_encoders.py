"""The baselines behind the item-encoder interface: the frozen vision encoder alone and MiniLM."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from muse.core.errors import ConfigError
from muse.item2item.models.item_encoder import build_item_encoder
from muse.item2item.models.item_encoder_config import ItemEncoderConfig, ItemEncoderKind
from muse.item2item.models.prompt import ItemPrompt, load_tokenizer
from muse.item2item.models.prompt_config import PromptConfig, PromptKind
from muse.item2item.models.sentence_encoder import SentenceEncoder, sentence_encoder_path
from muse.item2item.models.sentence_encoder_config import (
    SentenceEncoderConfig,
    SentenceEncoderSource,
)
from muse.item2item.models.vision_only_encoder import VisionOnlyEncoder
from tests.item2item import tiny

PLAIN = PromptConfig(kind=PromptKind.PLAIN)


def _baseline(kind: ItemEncoderKind) -> ItemEncoderConfig:
    return dataclasses.replace(tiny.config(), kind=kind, prompt=PLAIN, late_fusion=False)


def test_vision_only_reads_the_image_and_ignores_the_text() -> None:
    encoder = build_item_encoder(_baseline(ItemEncoderKind.VISION_ONLY))
    assert isinstance(encoder, VisionOnlyEncoder) and encoder.output_width == 8
    prompt = ItemPrompt(PLAIN, tiny.tokenizer())
    images = tiny.images()
    out = encoder(prompt.encode(tiny.items(), images)).multimodal
    swapped = encoder(prompt.encode(tiny.items()[::-1], images)).multimodal
    assert out.shape == (2, 8)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(out, swapped)  # text swapped, images kept: same embeddings
    flipped = encoder(prompt.encode(tiny.items(), images.flip(0))).multimodal
    torch.testing.assert_close(flipped, out.flip(0))
    # Only the projection trains; the frozen encoder gets no gradient.
    out.sum().backward()
    assert encoder.projection.weight.grad is not None
    assert all(p.grad is None for p in encoder.vision.parameters())
    with pytest.raises(ValueError, match="reads images"):
        encoder(prompt.encode(tiny.items(), None))


def test_minilm_is_found_in_its_package_and_embeds_text() -> None:
    config = _baseline(ItemEncoderKind.SENTENCE_ENCODER)
    encoder = build_item_encoder(config)
    assert isinstance(encoder, SentenceEncoder)
    assert encoder.network.config.hidden_size == 384  # all-MiniLM-L6-v2
    tokenizer = load_tokenizer(sentence_encoder_path(config.sentence))
    prompt = ItemPrompt(PLAIN, tokenizer, max_plain_tokens=16)
    batch = prompt.encode(tiny.items(), None)
    # A plain prompt is [CLS] item text [SEP], truncated to the encoder's limit.
    assert batch.token_ids[0, 0] == tokenizer.cls_token_id
    assert batch.attention_mask.sum(dim=1).max() <= 16
    encoder.train()
    assert not encoder.network.training  # frozen: no dropout even in training mode
    out = encoder(batch).multimodal
    again = encoder(batch).multimodal
    torch.testing.assert_close(out, again)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))
    out.sum().backward()
    assert encoder.projection.weight.grad is not None
    assert all(p.grad is None for p in encoder.network.parameters())


def test_pretrained_minilm_separates_related_from_unrelated_text() -> None:
    # Mean-pooled MiniLM itself (no projection): a paraphrase scores above an unrelated text.
    config = SentenceEncoderConfig()
    encoder = SentenceEncoder(config, output_dim=4)
    tokenizer = load_tokenizer(sentence_encoder_path(config))
    texts = ["red running shoes", "crimson sneakers for jogging", "a ceramic soup bowl"]
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder.network(**tokens).last_hidden_state
    mask = tokens["attention_mask"].unsqueeze(-1)
    pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    similar, unrelated = float(pooled[0] @ pooled[1]), float(pooled[0] @ pooled[2])
    assert similar > unrelated + 0.2


def test_baseline_configs_are_checked() -> None:
    with pytest.raises(ValueError, match="needs prompt.kind = 'plain'"):
        dataclasses.replace(_baseline(ItemEncoderKind.VISION_ONLY), prompt=PromptConfig())
    with pytest.raises(ValueError, match="no late fusion"):
        dataclasses.replace(_baseline(ItemEncoderKind.SENTENCE_ENCODER), late_fusion=True)
    with pytest.raises(ValueError, match="'plain' is for the baselines"):
        dataclasses.replace(tiny.config(), prompt=PLAIN, late_fusion=False)
    with pytest.raises(ValueError, match="needs sentence.path"):
        SentenceEncoderConfig(source=SentenceEncoderSource.PATH)
    assert not _baseline(ItemEncoderKind.SENTENCE_ENCODER).sees_images
    assert _baseline(ItemEncoderKind.VISION_ONLY).sees_images
    assert not _baseline(ItemEncoderKind.VISION_ONLY).has_visual_embedding


def test_a_missing_sentence_encoder_folder_is_a_clear_error(tmp_path: object) -> None:
    config = SentenceEncoderConfig(source=SentenceEncoderSource.PATH, path=tmp_path / "none")  # type: ignore[operator]
    with pytest.raises((OSError, ConfigError)):
        SentenceEncoder(config, output_dim=4)
