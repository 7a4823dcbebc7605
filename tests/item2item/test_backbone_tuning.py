"""Backbone tuning options: frozen lower layers and LoRA adapters (peft), trained and exported."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from muse.item2item.export.encoder_bundle_writer import write_encoder_bundle
from muse.item2item.models.backbone_config import BackboneConfig
from muse.item2item.models.item_encoder_config import ItemEncoderConfig
from muse.item2item.models.lora_config import LoraConfig
from muse.item2item.models.notellm2 import NoteLlm2
from muse.item2item.models.prompt import ItemPrompt
from tests.item2item import tiny


def _config(**backbone: object) -> ItemEncoderConfig:
    config = tiny.config()
    return dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, **backbone))


def _batch(config: ItemEncoderConfig):  # type: ignore[no-untyped-def]
    return ItemPrompt(config.prompt, tiny.tokenizer()).encode(tiny.items(), tiny.images())


def test_frozen_layers_train_only_the_layers_above() -> None:
    config = _config(frozen_layers=1)
    model = NoteLlm2(config).train()
    backbone = model.backbone.model
    model(_batch(config)).multimodal.sum().backward()
    assert backbone.embed_tokens.weight.grad is None
    assert all(p.grad is None for p in backbone.layers[0].parameters())
    assert all(p.grad is not None for p in backbone.layers[1].parameters())
    assert model.connector is not None and all(
        p.grad is not None for p in model.connector.parameters() if p.requires_grad
    )
    with pytest.raises(ValueError, match="frozen_layers = 3, but 2 layers run"):
        NoteLlm2(_config(frozen_layers=3))


def test_lora_starts_as_the_plain_model_and_trains_only_its_adapters() -> None:
    torch.manual_seed(0)
    plain = NoteLlm2(tiny.config()).eval()
    config = _config(lora=LoraConfig(rank=4, dropout=0.0, target_modules=("q_proj", "v_proj")))
    adapted = NoteLlm2(config).eval()
    # Adapters wrap the same weights (peft renames an adapted layer's weight to
    # <layer>.base_layer.weight): load the plain ones; B = 0 keeps the output.
    names = set(adapted.state_dict())
    weights = {}
    for name, value in plain.state_dict().items():
        wrapped = name.replace("_proj.weight", "_proj.base_layer.weight")
        weights[name if name in names else wrapped] = value
    missing, unexpected = adapted.load_state_dict(weights, strict=False)
    assert not unexpected and missing and all("lora_" in name for name in missing)
    batch = _batch(config)
    with torch.no_grad():
        torch.testing.assert_close(adapted(batch).multimodal, plain(batch).multimodal)
    trainable = {n for n, p in adapted.backbone.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    assert {n.split(".")[-2] for n in trainable} == {"default"}
    assert len(trainable) == 2 * 2 * 2  # A and B, q_proj and v_proj, 2 layers
    before = {n: p.clone() for n, p in adapted.backbone.named_parameters() if not p.requires_grad}
    optimiser = torch.optim.SGD([p for p in adapted.parameters() if p.requires_grad], lr=0.5)
    adapted.train()
    for _ in range(3):
        optimiser.zero_grad()
        adapted(batch).multimodal[:, 0].sum().backward()
        optimiser.step()
    adapted.eval()
    with torch.no_grad():
        assert not torch.allclose(adapted(batch).multimodal, plain(batch).multimodal)
    for name, parameter in adapted.backbone.named_parameters():
        if name in before:
            torch.testing.assert_close(parameter, before[name])  # the backbone stays frozen
    with pytest.raises(ValueError, match="LoRA already freezes"):
        BackboneConfig(frozen_layers=1, lora=LoraConfig(rank=2))


def test_a_lora_encoder_exports_with_onnx_parity(tmp_path: Path) -> None:
    torch.manual_seed(1)
    config = _config(lora=LoraConfig(rank=4, dropout=0.0))
    encoder = NoteLlm2(config).eval()
    with torch.no_grad():  # non-zero adapters, so the check sees them
        for name, parameter in encoder.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    prompt = ItemPrompt(config.prompt, tiny.tokenizer())
    manifest = write_encoder_bundle(
        encoder, config, prompt, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), tmp_path / "lora"
    )
    assert manifest["export_check"]["max_abs_difference"] <= 1e-4
