"""The NoteLLM-2 item encoder and its variants on tiny random configs (hidden 32, 2 layers, Q = 4)."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest
import torch

from muse.item2item.batch import ItemBatch
from muse.item2item.models.backbone import Backbone
from muse.item2item.models.backbone_config import BackboneConfig, BackboneKind
from muse.item2item.models.late_fusion import LateFusion
from muse.item2item.models.notellm2 import NoteLlm2, insert_visual_tokens
from muse.item2item.models.prompt import ItemPrompt, ItemText
from muse.item2item.models.prompt_config import PromptConfig, PromptKind
from tests.item2item import tiny

VARIANTS = [
    (PromptKind.MICL, True),  # NoteLLM-2
    (PromptKind.MICL, False),  # mICL without late fusion
    (PromptKind.SINGLE, True),  # late fusion without mICL
    (PromptKind.SINGLE, False),  # basic MLRM
    (PromptKind.TEXT_ONLY, False),  # text-only LLM (NoteLLM)
]


def _encode(kind: PromptKind, items: list[ItemText], images: torch.Tensor) -> ItemBatch:
    prompt = ItemPrompt(tiny.config(kind, late_fusion=False).prompt, tiny.tokenizer())
    return prompt.encode(items, None if kind is PromptKind.TEXT_ONLY else images)


@pytest.mark.parametrize(("kind", "late_fusion"), VARIANTS)
def test_every_variant_gives_unit_norm_embeddings_through_one_interface(
    kind: PromptKind, late_fusion: bool
) -> None:
    torch.manual_seed(0)
    model = NoteLlm2(tiny.config(kind, late_fusion)).eval()
    batch = _encode(kind, tiny.items(), tiny.images())
    output = model(batch)
    assert output.multimodal.shape == (2, model.output_width)
    assert torch.allclose(output.multimodal.norm(dim=-1), torch.ones(2), atol=1e-5)
    if kind is PromptKind.MICL:
        assert output.visual is not None and output.visual.shape == (2, model.output_width)
        assert torch.allclose(output.visual.norm(dim=-1), torch.ones(2), atol=1e-5)
    else:
        assert output.visual is None
    assert (model.vision is None) == (kind is PromptKind.TEXT_ONLY)


def test_visual_embedding_sees_only_the_image() -> None:
    torch.manual_seed(0)
    model = NoteLlm2(tiny.config()).eval()
    items = tiny.items()
    changed = [dataclasses.replace(item, content="blue summer sale") for item in items]
    batch = _encode(PromptKind.MICL, items, tiny.images())
    other = _encode(PromptKind.MICL, changed, tiny.images())
    with torch.no_grad():
        before, after = model(batch), model(other)
    assert before.visual is not None and after.visual is not None
    assert torch.allclose(before.visual, after.visual, atol=1e-6)
    assert not torch.allclose(before.multimodal, after.multimodal, atol=1e-4)


def test_late_fusion_matches_a_hand_computation() -> None:
    torch.manual_seed(0)
    fusion = LateFusion(llm_width=4, vision_width=3)
    hidden, pooled = torch.randn(2, 4), torch.randn(2, 3)
    v = pooled @ fusion.vision.weight.T + fusion.vision.bias
    z = torch.sigmoid(torch.cat([hidden, v], dim=-1) @ fusion.gate.weight.T + fusion.gate.bias)
    assert torch.allclose(fusion(hidden, pooled), z * hidden + (1 - z) * v, atol=1e-6)


def test_visual_tokens_replace_the_placeholder() -> None:
    embeddings = torch.arange(2 * 5, dtype=torch.float32).reshape(2, 5, 1)
    mask = torch.tensor([[True] * 5, [True] * 4 + [False]])
    visual = -torch.arange(1, 2 * 3 + 1, dtype=torch.float32).reshape(2, 3, 1)
    widened, widened_mask = insert_visual_tokens(embeddings, mask, torch.tensor([1, 3]), visual)
    assert widened.squeeze(-1).tolist() == [
        [0, -1, -2, -3, 2, 3, 4],
        [5, 6, 7, -4, -5, -6, 9],
    ]
    assert widened_mask.tolist() == [[True] * 7, [True] * 6 + [False]]


def test_model_puts_the_connector_output_at_the_placeholder() -> None:
    torch.manual_seed(0)
    model = NoteLlm2(tiny.config()).eval()
    batch = _encode(PromptKind.MICL, tiny.items(), tiny.images())
    seen: list[torch.Tensor] = []
    model.backbone.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    assert model.vision is not None and model.connector is not None
    with torch.no_grad():
        model(batch)
        tokens = model.connector(model.vision(batch.images).patches)
    start = int(batch.image_placeholder_index[0])
    assert seen[0].shape[1] == batch.token_ids.shape[1] + tiny.QUERIES - 1
    assert torch.equal(seen[0][:, start : start + tiny.QUERIES], tokens)


def test_only_the_vision_encoder_is_frozen() -> None:
    torch.manual_seed(0)
    model = NoteLlm2(tiny.config()).train()
    batch = _encode(PromptKind.MICL, tiny.items(), tiny.images())
    output = model(batch)
    assert output.visual is not None
    (output.multimodal.sum() + output.visual.sum()).backward()
    assert model.vision is not None and model.connector is not None
    assert not model.vision.network.training
    assert all(p.grad is None and not p.requires_grad for p in model.vision.parameters())
    for part in (model.connector, model.backbone):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_prompt_truncates_text_fields_and_marks_positions() -> None:
    config = PromptConfig(max_title_chars=3, max_topics=1, max_content_chars=4)
    prompt = ItemPrompt(config, tiny.tokenizer())
    item = ItemText("redshoes", ("style", "sport"), "warm wool")
    assert prompt.item_text(item) == "red style warm"
    batch = prompt.encode([item, tiny.items()[0]], tiny.images())
    assert batch.token_ids[0, batch.image_placeholder_index[0]] == prompt.placeholder_id
    for row in range(2):
        assert batch.token_ids[row, batch.image_compression_index[row]] == prompt.compression_id
        assert batch.token_ids[row, batch.last_index[row]] == prompt.compression_id
        assert batch.attention_mask[row].sum() == batch.last_index[row] + 1


def test_text_only_prompt_has_no_image_positions() -> None:
    prompt = ItemPrompt(PromptConfig(kind=PromptKind.TEXT_ONLY), tiny.tokenizer())
    batch = prompt.encode(tiny.items(), None)
    assert batch.image_placeholder_index.tolist() == [-1, -1]
    assert batch.image_compression_index.tolist() == [-1, -1]
    with pytest.raises(ValueError, match="takes no images"):
        prompt.encode(tiny.items(), tiny.images())


@pytest.mark.parametrize("kind", [BackboneKind.RANDOM_LLAMA, BackboneKind.RANDOM_QWEN2])
def test_truncating_the_backbone_keeps_n_layers(kind: BackboneKind) -> None:
    backbone = Backbone(BackboneConfig(kind=kind, num_hidden_layers=3, num_layers=1))
    assert backbone.num_layers == 1 and backbone.hidden_size == 32
    hidden = backbone(torch.randn(2, 5, 32), torch.ones(2, 5, dtype=torch.bool))
    assert hidden.shape == (2, 5, 32)
    with pytest.raises(ValueError, match="has 2"):
        Backbone(BackboneConfig(kind=kind, num_layers=3))


def test_pretrained_backbone_loads_from_disk_only(tmp_path: pathlib.Path) -> None:
    Backbone(BackboneConfig(num_hidden_layers=3)).model.save_pretrained(tmp_path)
    backbone = Backbone(BackboneConfig(kind=BackboneKind.PRETRAINED, path=tmp_path, num_layers=2))
    assert backbone.num_layers == 2
