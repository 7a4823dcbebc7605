"""The item-encoder bundle: ONNX export parity with torch, the serving-side inputs, checksums.

Encoders are the tiny random ones of ``tiny.py``; new items go through the bundle's own
``tokenizer.json`` and image recipe (what the server runs) and must give the token ids the
training prompt gives and, through onnxruntime, the torch embeddings to 1e-4.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

from muse.cli.main import main
from muse.core.errors import DataError
from muse.item2item.batch import ItemBatch
from muse.item2item.export.encoder_bundle_layout import (
    GRAPH_FILE,
    TOKENIZER_FILE,
    encoder_recipe,
    read_encoder_manifest,
)
from muse.item2item.export.encoder_bundle_writer import write_encoder_bundle
from muse.item2item.export.new_item_inputs import NewItem, NewItemError, NewItemInputs
from muse.item2item.models.item_encoder import build_item_encoder
from muse.item2item.models.item_encoder_config import ItemEncoderConfig, ItemEncoderKind
from muse.item2item.models.prompt import ItemPrompt
from muse.item2item.models.prompt_config import PromptConfig, PromptKind
from muse.item2item.models.prompt_layout import ItemText
from tests.item2item import tiny

MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)
# Texts of different lengths, one longer than any the export saw, one with no topics.
TEXTS = [
    ("red shoes", ("#style", "#sport"), "new sneakers for running"),
    ("wool hat", ("#cozy",), "warm winter hat sale"),
    ("blue", (), "sale"),
    ("summer sale", ("#style",) * 6, "new red shoes for running warm wool cozy sport " * 3),
    ("", ("#sport",), ""),
    ("hat", (), "blue winter wool hat for running in the summer sale"),
]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _png(seed: int, size: int = tiny.IMAGE_SIZE, mode: str = "RGB") -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _new_items() -> list[NewItem]:
    # Images of other sizes and modes are converted and resized as the catalogue's are.
    images = [_png(0), _png(1, 13), _png(2, mode="L"), _png(3, 20, "RGBA"), _png(4), _png(5)]
    return [
        NewItem(title, content, topics, "shoes", image)
        for (title, topics, content), image in zip(TEXTS, images, strict=True)
    ]


def _export(config: ItemEncoderConfig, out: Path, **kwargs: object) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    encoder = build_item_encoder(config).eval()
    prompt = ItemPrompt(config.prompt, tiny.tokenizer())
    manifest = write_encoder_bundle(encoder, config, prompt, MEAN, STD, out, **kwargs)  # type: ignore[arg-type]
    return encoder, manifest


VARIANTS = {
    "notellm2": tiny.config(PromptKind.MICL, late_fusion=True),
    "text_only": tiny.config(PromptKind.TEXT_ONLY, late_fusion=False),
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    config = VARIANTS[request.param]
    out = tmp_path_factory.mktemp("encoders") / request.param
    encoder, manifest = _export(config, out)
    return config, encoder, manifest, out


def test_onnx_matches_torch_on_new_items_of_different_lengths(exported) -> None:
    config, encoder, manifest, out = exported
    recipe = encoder_recipe(manifest, out)
    assert manifest["export_check"]["max_abs_difference"] <= 1e-4
    assert recipe.reads_images is config.sees_images and recipe.output_dim == 8
    inputs = NewItemInputs.from_file(recipe, out / TOKENIZER_FILE)
    items = _new_items()
    feeds = inputs.feeds(items)
    # The serving prompt is the training prompt, token for token.
    prompt = ItemPrompt(config.prompt, tiny.tokenizer())
    texts = [ItemText(item.title, item.topics, item.content) for item in items]
    reference_batch = prompt.encode(texts, torch.zeros(6, 3, 8, 8) if config.sees_images else None)
    np.testing.assert_array_equal(feeds["token_ids"], reference_batch.token_ids.numpy())
    np.testing.assert_array_equal(feeds["last_index"], reference_batch.last_index.numpy())
    lengths = feeds["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) >= 4 and ("images" in feeds) is config.sees_images
    session = onnxruntime.InferenceSession(
        str(out / GRAPH_FILE), providers=["CPUExecutionProvider"]
    )
    batch = ItemBatch(
        **{name: torch.from_numpy(feeds[name]) for name in feeds if name != "images"},
        images=torch.from_numpy(feeds["images"]) if "images" in feeds else None,
    )
    with torch.no_grad():
        expected = encoder(batch).multimodal.numpy()
    (served,) = session.run(None, feeds)
    assert np.abs(served - expected).max() <= 1e-4
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)
    # One item alone (batch axis 1) embeds as it does in the batch.
    (alone,) = session.run(None, inputs.feeds(items[3:4]))
    assert np.abs(alone[0] - expected[3]).max() <= 1e-4


def test_new_item_inputs_name_what_the_encoder_lacks(exported) -> None:
    config, _, manifest, out = exported
    inputs = NewItemInputs.from_file(encoder_recipe(manifest, out), out / TOKENIZER_FILE)
    if config.sees_images:
        with pytest.raises(NewItemError, match="reads the item's image") as missing:
            inputs.feeds([NewItem("red shoes")])
        assert missing.value.field == "item.image"
        for corrupt in (b"not an image", _png(0)[:40], b"GIF89a" + bytes(20)):
            with pytest.raises(NewItemError) as bad:
                inputs.feeds([NewItem("red shoes", image=corrupt)])
            assert bad.value.field == "item.image"
        # Image and no text: the image part still carries the item.
        assert inputs.feeds([NewItem(image=_png(0))])["token_ids"].shape[0] == 1
    else:
        with pytest.raises(NewItemError, match="all empty") as empty:
            inputs.feeds([NewItem(image=_png(0), category="hats")])
        assert empty.value.field == "item"
        # A text-only encoder ignores the image, even a corrupt one.
        assert "images" not in inputs.feeds([NewItem("red shoes", image=b"junk")])


def test_a_tampered_or_unlisted_file_is_refused_with_its_name(exported, tmp_path: Path) -> None:
    _, _, _, out = exported
    for name in (TOKENIZER_FILE, GRAPH_FILE + ".data"):
        copy = tmp_path / f"copy_{name}"
        copy.mkdir()
        for file in out.iterdir():
            (copy / file.name).write_bytes(file.read_bytes())
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 1
        (copy / name).write_bytes(bytes(data))
        with pytest.raises(DataError, match="sha256 differs") as tampered:
            read_encoder_manifest(copy)
        assert tampered.value.path == str(copy / name)
    extra = tmp_path / "extra"
    extra.mkdir()
    for file in out.iterdir():
        (extra / file.name).write_bytes(file.read_bytes())
    (extra / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="not listed"):
        read_encoder_manifest(extra)


def test_baselines_export_and_a_failed_check_writes_nothing(tmp_path: Path) -> None:
    plain = PromptConfig(kind=PromptKind.PLAIN)
    config = dataclasses.replace(
        tiny.config(), kind=ItemEncoderKind.VISION_ONLY, prompt=plain, late_fusion=False
    )
    _, manifest = _export(config, tmp_path / "vision_only")
    recipe = encoder_recipe(manifest, tmp_path / "vision_only")
    assert recipe.reads_images and not recipe.reads_text
    assert manifest["export_check"]["max_abs_difference"] <= 1e-4
    with pytest.raises(ValueError, match="more than the -1 allowed"):
        _export(config, tmp_path / "refused", tolerance=-1.0)
    assert not (tmp_path / "refused").exists()
    # An index bundle is not an encoder bundle.
    index_like = tmp_path / "index_like"
    index_like.mkdir()
    manifest = {**json.loads((tmp_path / "vision_only" / "manifest.json").read_text())}
    manifest.pop("contents")
    manifest["files"] = {}
    (index_like / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="not an item-encoder bundle"):
        read_encoder_manifest(index_like)


def test_export_command_names_a_bad_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = tmp_path / "x.pt"
    checkpoint.write_bytes(b"nope")
    code = main(["i2i", "export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "b")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and str(checkpoint) in lines[0]
    assert not (tmp_path / "b").exists()
