"""The frozen vision encoder: shapes, frozenness, and the real EfficientNet-Lite0 weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from muse.item2item.models.vision_encoder import VisionEncoder
from muse.item2item.models.vision_encoder_config import VisionEncoderConfig, VisionEncoderKind

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def _rendered_photo(size: int) -> torch.Tensor:
    """A drawn scene (no CC0 photo ships offline here), ImageNet-normalised, (3, S, S)."""
    image = Image.new("RGB", (size, size), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, size * 2 // 3, size, size), fill=(70, 140, 60))
    draw.ellipse((size // 3, size // 4, size * 2 // 3, size * 7 // 12), fill=(230, 60, 40))
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    chw = pixels.view(size, size, 3).permute(2, 0, 1).float() / 255
    return (chw - IMAGENET_MEAN) / IMAGENET_STD


def test_tiny_encoder_shapes_and_stays_frozen() -> None:
    config = VisionEncoderConfig(kind=VisionEncoderKind.TINY_CONV, image_size=8, tiny_width=8)
    encoder = VisionEncoder(config).train()
    features = encoder(torch.randn(2, 3, 8, 8, requires_grad=True))
    assert features.patches.shape == (2, 4, config.feature_width) == (2, 4, 8)
    assert torch.allclose(features.pooled, features.patches.mean(dim=1))
    assert not features.patches.requires_grad and not encoder.network.training


@pytest.mark.slow
def test_efficientnet_lite0_imagenet_weights_give_49_patches_of_1280() -> None:
    config = VisionEncoderConfig(kind=VisionEncoderKind.EFFICIENTNET_LITE0, image_size=224)
    encoder = VisionEncoder(config).train()
    photo = _rendered_photo(224)
    features = encoder(torch.stack([photo, photo.flip(-1)]))
    assert config.feature_width == 1280
    assert features.patches.shape == (2, 49, 1280)
    assert features.pooled.shape == (2, 1280)
    assert torch.isfinite(features.patches).all()
    # Real weights, in eval mode: features are not all zero and a mirrored scene stays close.
    assert features.pooled.abs().sum() > 0
    cosine = torch.nn.functional.cosine_similarity(features.pooled[0], features.pooled[1], dim=0)
    assert cosine > 0.8


def test_a_hugging_face_vision_model_on_disk_works_by_path(tmp_path: Path) -> None:
    from transformers import ViTConfig, ViTModel

    from muse.item2item.export.encoder_bundle_writer import write_encoder_bundle
    from muse.item2item.models.notellm2 import NoteLlm2
    from muse.item2item.models.prompt import ItemPrompt
    from tests.item2item import tiny

    torch.manual_seed(0)
    vit = ViTConfig(
        image_size=8, patch_size=4, num_channels=3, hidden_size=12, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=24,
    )  # fmt: skip
    ViTModel(vit).save_pretrained(tmp_path / "vit")
    config = VisionEncoderConfig(
        kind=VisionEncoderKind.PRETRAINED, path=tmp_path / "vit", image_size=8
    )
    encoder = VisionEncoder(config)
    assert encoder.output_width == 12
    features = encoder(torch.randn(3, 3, 8, 8))
    # (8 / 4)² patches plus the CLS token; pooled is the ViT's own pooler output.
    assert features.patches.shape == (3, 5, 12) and features.pooled.shape == (3, 12)
    assert not any(parameter.requires_grad for parameter in encoder.parameters())
    # The whole item encoder over it trains and exports like the packaged one.
    model_config = dataclasses.replace(tiny.config(), vision=config)
    model = NoteLlm2(model_config).eval()
    prompt = ItemPrompt(model_config.prompt, tiny.tokenizer())
    batch = prompt.encode(tiny.items(), tiny.images())
    assert model(batch).multimodal.shape == (2, 8)
    manifest = write_encoder_bundle(
        model, model_config, prompt, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), tmp_path / "bundle"
    )
    assert manifest["export_check"]["max_abs_difference"] <= 1e-4
    with pytest.raises(ValueError, match="needs vision.path"):
        VisionEncoderConfig(kind=VisionEncoderKind.PRETRAINED)
