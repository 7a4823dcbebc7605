"""The synthetic multimodal catalogue: determinism, images, no text leak, link kinds, oracle, CLI."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from features.item_catalogue import read_item_pair_dataset
from features.multimodal_catalogue import (
    ATTRIBUTES_FILE,
    COLOUR_RGB,
    IMAGE_WORDS,
    LINK_KINDS,
    MANIFEST_FILE,
    ORACLE_FILE,
    ORACLE_IDS_FILE,
    MultimodalCatalogue,
    brand_names,
    build_multimodal_catalogue,
    category_colours,
    generate_multimodal_catalogue,
    oracle_recall,
    render_image,
)
from features.multimodal_catalogue_config import (
    AttributeConfig,
    ImageConfig,
    MultimodalCatalogueConfig,
    PairConfig,
)
from muse.cli.main import main
from muse.core.config_loader import load_config
from muse.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SMALL = MultimodalCatalogueConfig(
    num_items=400,
    image=ImageConfig(size=32),
    pairs=PairConfig(train_pairs=600, test_pairs=300),
)


@pytest.fixture(scope="module")
def small() -> MultimodalCatalogue:
    return build_multimodal_catalogue(SMALL)


def test_default_config_file_matches_the_dataclass_defaults() -> None:
    assert load_config(MultimodalCatalogueConfig, ROOT / "configs/data/items_default.toml") == (
        MultimodalCatalogueConfig()
    )


def test_deterministic_for_a_seed(small: MultimodalCatalogue) -> None:
    again = build_multimodal_catalogue(SMALL)
    assert again.images == small.images and again.titles == small.titles
    for part in ("train", "test"):
        for mine, theirs in zip(getattr(small, part), getattr(again, part), strict=True):
            np.testing.assert_array_equal(mine, theirs)
    other = build_multimodal_catalogue(dataclasses.replace(SMALL, seed=7))
    assert other.images != small.images
    assert not np.array_equal(other.attributes.colour, small.attributes.colour)


def test_images_decode_and_show_their_attributes(small: MultimodalCatalogue) -> None:
    attributes = small.attributes
    pixels = np.stack(
        [np.asarray(Image.open(io.BytesIO(png)).convert("RGB")) for png in small.images]
    )
    assert pixels.shape == (400, 32, 32, 3)
    # Colour: the mean of the shape's pixels (those far from the background) follows the colour.
    background, border = category_colours(SMALL.attributes.num_categories)
    centre = pixels[:, 12:20, 12:20].astype(np.float32)
    bg = background[attributes.category][:, None, None, :]
    shape_pixels = np.linalg.norm(centre - bg, axis=-1) > 60
    for colour in np.unique(attributes.colour):
        chosen = (attributes.colour == colour) & (attributes.pattern == 0)  # solid: pure colour
        if not chosen.any():
            continue
        values = centre[chosen][shape_pixels[chosen]]
        nearest = np.argmin(np.linalg.norm(COLOUR_RGB[:, None] - values.mean(axis=0), axis=-1))
        assert nearest == colour
    # Category: the border corner carries the category's tone, the same for all its items.
    top_rows = pixels[:, 0].astype(np.float32).mean(axis=1)  # mean over the row: noise averages out
    assert np.abs(top_rows - border[attributes.category]).max() < 6


@pytest.mark.parametrize("changed", ["colour", "pattern", "shape"])
def test_each_image_attribute_changes_the_pixels(changed: str) -> None:
    background, border = category_colours(4)
    values = {"colour": 0, "pattern": 1, "shape": 0}

    def draw(**override: int) -> np.ndarray:
        rng = np.random.default_rng(0)
        return render_image(48, background[0], border[0], rng=rng, **{**values, **override})

    base = draw()
    other = draw(**{changed: 2})
    assert (np.abs(base.astype(int) - other).sum(axis=-1) > 30).mean() > 0.05


def test_no_image_attribute_in_any_text(small: MultimodalCatalogue) -> None:
    for title, content, topics in zip(small.titles, small.contents, small.topics, strict=True):
        words = set(re.findall(r"[a-z]+", " ".join([title, content, *topics]).lower()))
        assert not words & IMAGE_WORDS
    brands = brand_names(400)
    assert len(set(brands)) == 400 and not {b.lower() for b in brands} & IMAGE_WORDS


def test_text_names_the_text_attributes(small: MultimodalCatalogue) -> None:
    brands = brand_names(SMALL.attributes.num_brands)
    for i in range(0, 400, 37):
        title = small.titles[i]
        assert title.startswith(brands[small.attributes.brand[i]] + " ")
        assert small.topics[i][0] == brands[small.attributes.brand[i]].lower()


def test_link_kinds_as_documented(small: MultimodalCatalogue) -> None:
    at = small.attributes
    image_attrs = np.stack([at.category, at.colour, at.pattern, at.shape], axis=1)
    text_attrs = np.stack([at.brand, at.material], axis=1)
    for draw, test_side in ((small.train, False), (small.test, True)):
        assert np.all(at.is_test[draw.a] == test_side) and np.all(at.is_test[draw.b] == test_side)
        assert np.all(draw.a != draw.b)
        same_image = np.all(image_attrs[draw.a] == image_attrs[draw.b], axis=1)
        text_equal = text_attrs[draw.a] == text_attrs[draw.b]
        other_image = np.all(image_attrs[draw.a][:, 1:] != image_attrs[draw.b][:, 1:], axis=1)
        kind = np.asarray(LINK_KINDS)[draw.kind]
        image, text, both = kind == "image", kind == "text", kind == "both"
        # image: every image attribute shared, every text attribute different.
        assert np.all(same_image[image]) and not np.any(text_equal[image])
        # text: category and every text attribute shared, every image-only attribute different.
        assert np.all(text_equal[text].all(axis=1)) and np.all(other_image[text])
        assert np.all(at.category[draw.a][text] == at.category[draw.b][text])
        # both: everything shared.
        assert np.all(same_image[both]) and np.all(text_equal[both].all(axis=1))
    shares = np.bincount(small.train.kind, minlength=3) / small.train.kind.size
    np.testing.assert_allclose(shares, [0.4, 0.4, 0.2], atol=0.06)


def test_test_pairs_run_from_queries_into_a_large_pool(small: MultimodalCatalogue) -> None:
    at = small.attributes
    assert np.all(at.is_query <= at.is_test) and at.is_query.sum() == 30  # 25% of 120
    # Every test pair starts at a query and ends outside the queries, so the protocol's pool
    # (test items minus queries) holds every target and is most of the held-out items.
    assert np.all(at.is_query[small.test.a]) and not np.any(at.is_query[small.test.b])
    pool = np.setdiff1d(np.flatnonzero(at.is_test), small.test.a)
    assert np.isin(small.test.b, pool).all() and pool.size >= 90


def test_oracle_views_separate_the_link_kinds() -> None:
    # The default sizes (600 test items, 450 of them the pool: 56 per category) with tiny
    # images, so that the top 10 is much smaller than a category.
    config = dataclasses.replace(SMALL, num_items=2_000, image=ImageConfig(size=16))
    catalogue = build_multimodal_catalogue(config)
    np.testing.assert_allclose(np.linalg.norm(catalogue.oracle, axis=1), 1.0, rtol=1e-6)
    recall = oracle_recall(config, catalogue)
    # A text-only model cannot find image links (only the category is shared), nor vice versa.
    assert recall["text"]["image"] < 0.1 and recall["image"]["text"] < 0.1
    # ~11 pool items share an image (or text) style, so a perfect single view ties about 10 of them.
    assert recall["image"]["image"] > 0.7 and recall["text"]["text"] > 0.7
    # The full oracle ranks `both` partners first, then image and text partners alike.
    assert recall["all"]["both"] > 0.95
    assert 0.35 < recall["all"]["image"] < 0.75 and 0.35 < recall["all"]["text"] < 0.75


def test_impossible_link_kind_is_a_config_error() -> None:
    config = dataclasses.replace(
        SMALL,
        num_items=8,
        attributes=AttributeConfig(num_categories=8),
        pairs=PairConfig(train_pairs=10, test_pairs=10, image_share=0, text_share=0),
    )
    with pytest.raises(ConfigError, match="no 'both' link is possible"):
        build_multimodal_catalogue(config)


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="image_styles_per_category"):
        AttributeConfig(num_shapes=3, image_styles_per_category=4)
    with pytest.raises(ValueError, match="num_colours"):
        AttributeConfig(num_colours=11)
    with pytest.raises(ValueError, match="shares"):
        PairConfig(image_share=0, text_share=0, both_share=0)


def test_generate_writes_a_readable_dataset(tmp_path: Path, small: MultimodalCatalogue) -> None:
    summary = generate_multimodal_catalogue(SMALL, tmp_path / "items", progress=False)
    data = read_item_pair_dataset(tmp_path / "items")
    assert len(data.items) == 400 and len(data.train) == 600 and len(data.test) == 300
    assert data.items.titles == tuple(small.titles)
    assert data.items.image_bytes(5) == small.images[5]
    np.testing.assert_array_equal(data.train.row_a, small.train.a)
    assert data.test.link_kind == tuple(LINK_KINDS[k] for k in small.test.kind)
    oracle = np.load(tmp_path / "items" / ORACLE_FILE)
    np.testing.assert_array_equal(oracle, small.oracle)
    np.testing.assert_array_equal(
        np.load(tmp_path / "items" / ORACLE_IDS_FILE), data.items.item_ids
    )
    attributes = pl.read_parquet(tmp_path / "items" / ATTRIBUTES_FILE)
    splits = attributes["split"].to_list()
    assert splits.count("test") + splits.count("test_query") == summary.num_test_items == 120
    assert splits.count("test_query") == 30
    manifest = json.loads((tmp_path / "items" / MANIFEST_FILE).read_text())
    assert manifest["config"]["num_items"] == 400
    assert manifest["pairs"]["train"] == summary.train_pairs
    assert sum(summary.test_pairs.values()) == 300


def test_cli_writes_a_dataset_and_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    args = ["data", "synth-items", "--config", str(ROOT / "configs/data/items_default.toml")]
    small = ["--set", "num_items=300", "--set", "image.size=32", "--set", "pairs.train_pairs=200"]
    assert main([*args, "--out", str(out), "--no-progress", *small]) == 0
    printed = capsys.readouterr().out
    assert "items 300" in printed and "oracle Recall@10" in printed
    assert len(read_item_pair_dataset(out).train) == 200
    assert main([*args, "--out", str(tmp_path / "bad"), "--set", "image.size=8"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("muse data synth-items: ") and "size must be in [16, 1024]" in error
    assert not (tmp_path / "bad").exists()
    # A generation that fails leaves an earlier output as it was.
    impossible = [
        "--set",
        "num_items=8",
        "--set",
        "pairs.image_share=0",
        "--set",
        "pairs.text_share=0",
    ]
    assert main([*args, "--out", str(out), "--no-progress", *impossible]) == 2
    assert "no 'both' link is possible" in capsys.readouterr().err
    assert len(read_item_pair_dataset(out).train) == 200
