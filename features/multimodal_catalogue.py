"""The synthetic multimodal catalogue: items with rendered images and text, co-engagement pairs.

Every item has latent attributes of three kinds: image-only (colour, pattern, shape: drawn into a
real image and never named in its text), text-only (brand, material: named in title, content and
topics, never drawn) and shared (category: the image's background and border colours, and a word
of the text). Pairs come from a co-engagement model with three link kinds, ``image`` (same image
style, different text style), ``text`` (same text style, different image style) and ``both``
(same image and text style), so a text-only model cannot recover image links beyond the category,
and an image-only model cannot recover text links. The ground-truth item vectors (the attribute
one-hots, each group weighed alike, L2-normalised) are the oracle. The model is documented in docs/synthetic-data.md.

The output is the item-to-item input format read by :mod:`features.item_catalogue`, plus
``item_attributes.parquet``, ``oracle_embeddings.npy`` / ``oracle_item_ids.npy`` and
``manifest.json``. It is a pure function of the config.
"""

from __future__ import annotations

import colorsys
import io
import itertools
import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
from PIL import Image
from tqdm import tqdm

from features.item_catalogue import ITEMS_FILE, TEST_PAIRS_FILE, TRAIN_PAIRS_FILE
from features.multimodal_catalogue_config import (
    CATEGORY_NAMES,
    COLOUR_NAMES,
    MATERIAL_NAMES,
    MAX_BRANDS,
    PATTERN_NAMES,
    SHAPE_NAMES,
    MultimodalCatalogueConfig,
)
from muse.core.atomic_write import atomic_directory
from muse.core.config_loader import config_to_dict
from muse.core.errors import ConfigError

LINK_KINDS = ("image", "text", "both")
ORACLE_VIEWS = ("all", "image", "text")
ATTRIBUTES_FILE = "item_attributes.parquet"
ORACLE_FILE = "oracle_embeddings.npy"
ORACLE_IDS_FILE = "oracle_item_ids.npy"
MANIFEST_FILE = "manifest.json"
FORMAT_NAME = "muse-item-pairs"
FORMAT_VERSION = 1
FIRST_ITEM_ID = 1_000_001
RECALL_K = 10
IMAGE_WORDS = frozenset(COLOUR_NAMES + PATTERN_NAMES + SHAPE_NAMES)

COLOUR_RGB = np.array(
    [
        (220, 40, 40), (240, 140, 20), (230, 210, 30), (150, 220, 40), (30, 150, 60),
        (30, 200, 210), (40, 80, 220), (130, 50, 190), (210, 40, 170), (250, 150, 190),
    ],
    dtype=np.float32,
)  # fmt: skip
ADJECTIVES = (
    "classic",
    "everyday",
    "compact",
    "premium",
    "handmade",
    "modern",
    "travel",
    "vintage",
)
CONTENT_TEMPLATES = (
    "{Brand} makes this {material} {category} for everyday use. Ref {sku}.",
    "A {adjective} {category} in {material}, designed by {Brand}. Ref {sku}.",
    "{Material} {category} from the {Brand} studio; {adjective} and easy to care for. Ref {sku}.",
)
# Independent random streams, so changing one part's size leaves the others' draws alone.
(_STREAM_ATTRIBUTES, _STREAM_IMAGES, _STREAM_TEXT, _STREAM_TRAIN, _STREAM_TEST, _STREAM_EVAL) = (
    range(6)
)


def brand_names(count: int) -> tuple[str, ...]:
    """``count`` made-up brand words, the same for every seed, none an attribute or category word."""
    if not 1 <= count <= MAX_BRANDS:
        raise ValueError(f"count must be in [1, {MAX_BRANDS}]")
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    reserved = IMAGE_WORDS | set(MATERIAL_NAMES) | set(CATEGORY_NAMES) | set(ADJECTIVES)
    words = [a + b for a, b in itertools.product(syllables, repeat=2) if a + b not in reserved]
    order = np.random.default_rng(0).permutation(len(words))[:count]
    return tuple(words[i].capitalize() for i in order)


class ItemAttributes(NamedTuple):
    """Latent attributes of every item (generator index 0..N-1), as indices into the name lists."""

    category: np.ndarray  # (N,) int32 (shared)
    colour: np.ndarray  # (N,) int32 (image-only)
    pattern: np.ndarray  # (N,) int32 (image-only)
    shape: np.ndarray  # (N,) int32 (image-only)
    brand: np.ndarray  # (N,) int32 (text-only)
    material: np.ndarray  # (N,) int32 (text-only)
    image_style: np.ndarray  # (N,) int32: category · styles per category + style within it
    text_style: np.ndarray  # (N,) int32
    is_test: np.ndarray  # (N,) bool: held out for the test pairs
    is_query: np.ndarray  # (N,) bool: test items the test pairs start from (never partners)


class PairDraw(NamedTuple):
    """Pairs as generator indices, with the link kind (index into LINK_KINDS) of each."""

    a: np.ndarray  # (P,) int64
    b: np.ndarray  # (P,) int64
    kind: np.ndarray  # (P,) int8


class MultimodalCatalogue(NamedTuple):
    """Everything the generator makes, in memory."""

    item_ids: np.ndarray  # (N,) int64
    attributes: ItemAttributes
    titles: list[str]
    contents: list[str]
    topics: list[list[str]]
    images: list[bytes]  # PNG
    train: PairDraw
    test: PairDraw
    oracle: np.ndarray  # (N, D) float32, L2-normalised


class MultimodalSummary(NamedTuple):
    """What one generation produced, with the oracles' Recall@10 on the test pairs."""

    out_dir: Path
    num_items: int
    num_test_items: int
    train_pairs: dict[str, int]  # link kind → count
    test_pairs: dict[str, int]
    # oracle view (all / image / text) → link kind → Recall@10 over the test pairs.
    oracle_recall: dict[str, dict[str, float]]
    elapsed_seconds: float


def random_stream(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, 7_919, stream])


def draw_attributes(config: MultimodalCatalogueConfig) -> ItemAttributes:
    """Per-category style tables, then each item's category, image style and text style."""
    rng = random_stream(config.seed, _STREAM_ATTRIBUTES)
    spec, n = config.attributes, config.num_items
    cats, img_per, txt_per = (
        spec.num_categories,
        spec.image_styles_per_category,
        spec.text_styles_per_category,
    )

    def table(values: int, per: int) -> np.ndarray:
        # A permutation prefix per category: the styles of one category differ in this attribute.
        return np.stack([rng.permutation(values)[:per] for _ in range(cats)]).astype(np.int32)

    colour, pattern, shape = (
        table(v, img_per) for v in (spec.num_colours, spec.num_patterns, spec.num_shapes)
    )
    brand, material = (table(v, txt_per) for v in (spec.num_brands, spec.num_materials))
    category = rng.integers(cats, size=n).astype(np.int32)
    image_local = rng.integers(img_per, size=n).astype(np.int32)
    text_local = rng.integers(txt_per, size=n).astype(np.int32)
    is_test = np.zeros(n, dtype=bool)
    num_test = min(n - 2, max(2, round(n * config.test_item_share)))
    is_test[rng.permutation(n)[:num_test]] = True
    is_query = np.zeros(n, dtype=bool)
    test_items = np.flatnonzero(is_test)
    num_query = min(num_test - 1, max(1, round(num_test * config.test_query_share)))
    is_query[rng.permutation(test_items)[:num_query]] = True
    return ItemAttributes(
        category=category,
        colour=colour[category, image_local],
        pattern=pattern[category, image_local],
        shape=shape[category, image_local],
        brand=brand[category, text_local],
        material=material[category, text_local],
        image_style=category * img_per + image_local,
        text_style=category * txt_per + text_local,
        is_test=is_test,
        is_query=is_query,
    )


def category_colours(num_categories: int) -> tuple[np.ndarray, np.ndarray]:
    """(C, 3) float32 background and border RGB of each category (pale and dark tones of a hue)."""
    hues = [c / max(num_categories, 1) for c in range(num_categories)]
    background = [colorsys.hsv_to_rgb(h, 0.18, 0.96) for h in hues]
    border = [colorsys.hsv_to_rgb(h, 0.55, 0.42) for h in hues]
    return (
        np.array(background, dtype=np.float32) * 255.0,
        np.array(border, dtype=np.float32) * 255.0,
    )


def render_image(
    size: int,
    background: np.ndarray,
    border: np.ndarray,
    colour: int,
    pattern: int,
    shape: int,
    rng: np.random.Generator,
    jitter: float = 0.0,
    noise: float = 0.0,
) -> np.ndarray:
    """(size, size, 3) uint8: a patterned shape of a colour on the category's background/border."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    centre_x, centre_y = size / 2 + jitter * size * rng.uniform(-1, 1, size=2)
    radius = size * (0.3 + jitter * rng.uniform(-0.5, 0.5))
    dx, dy = (x - centre_x) / radius, (y - centre_y) / radius
    distance = np.hypot(dx, dy)
    masks = (
        distance <= 1.0,  # circle
        np.maximum(np.abs(dx), np.abs(dy)) <= 0.8,  # square
        (dy <= 0.7) & (np.abs(dx) <= (dy + 1.0) * 0.6),  # triangle
        np.abs(dx) + np.abs(dy) <= 1.0,  # diamond
        ((np.abs(dx) <= 0.3) & (np.abs(dy) <= 1.0)) | ((np.abs(dy) <= 0.3) & (np.abs(dx) <= 1.0)),
        (distance <= 1.0) & (distance >= 0.55),  # ring
    )
    period = max(3, size // 10)
    xi, yi = x.astype(np.int32), y.astype(np.int32)
    half = period / 2
    on = (
        np.ones_like(distance, dtype=bool),  # solid
        (yi // period) % 2 == 0,  # striped
        (xi // period) % 2 == 0,  # banded
        ((xi // period) + (yi // period)) % 2 == 0,  # checked
        (xi % period - half) ** 2 + (yi % period - half) ** 2 > (period * 0.3) ** 2,  # dotted
        ((xi + yi) // period) % 2 == 0,  # diagonal
    )[pattern]
    inside = masks[shape]
    pixels = np.broadcast_to(background, (size, size, 3)).copy()
    pixels[inside & on] = COLOUR_RGB[colour]
    pixels[inside & ~on] = COLOUR_RGB[colour] * 0.4
    width = max(2, size // 16)
    frame = (np.minimum(xi, yi) < width) | (np.maximum(xi, yi) >= size - width)
    pixels[frame] = border
    if noise > 0:
        pixels += rng.normal(0.0, noise * 255.0, size=pixels.shape).astype(np.float32)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def item_texts(
    config: MultimodalCatalogueConfig, attributes: ItemAttributes, item_ids: np.ndarray
) -> tuple[list[str], list[str], list[list[str]]]:
    """Title, content and topics of every item: category, brand and material only."""
    rng = random_stream(config.seed, _STREAM_TEXT)
    brands = brand_names(config.attributes.num_brands)
    adjective = rng.integers(len(ADJECTIVES), size=item_ids.size)
    template = rng.integers(len(CONTENT_TEMPLATES), size=item_ids.size)
    sku = rng.integers(10_000, 100_000, size=item_ids.size)
    titles, contents, topics = [], [], []
    for i in range(item_ids.size):
        words = {
            "Brand": brands[attributes.brand[i]],
            "material": MATERIAL_NAMES[attributes.material[i]],
            "Material": MATERIAL_NAMES[attributes.material[i]].capitalize(),
            "category": CATEGORY_NAMES[attributes.category[i]],
            "adjective": ADJECTIVES[adjective[i]],
            "sku": str(sku[i]),
        }
        titles.append("{Brand} {material} {category}".format(**words))
        contents.append(CONTENT_TEMPLATES[template[i]].format(**words))
        topics.append(
            [words["Brand"].lower(), words["material"], words["category"], words["adjective"]]
        )
    return titles, contents, topics


def draw_pairs(
    attributes: ItemAttributes,
    anchor_items: np.ndarray,
    partner_items: np.ndarray,
    count: int,
    shares: tuple[float, float, float],
    rng: np.random.Generator,
    split: str,
) -> PairDraw:
    """``count`` pairs from ``anchor_items`` to ``partner_items`` (generator indices; the same
    array for train): kind ∝ shares, anchor uniform among the anchor items that have a partner of
    that kind, partner uniform among those partners."""
    probabilities = np.asarray(shares, dtype=np.float64) / sum(shares)
    kinds = rng.choice(len(LINK_KINDS), size=count, p=probabilities)
    num_text_styles = int(attributes.text_style.max()) + 1
    combo = attributes.image_style.astype(np.int64) * num_text_styles + attributes.text_style
    parts_a, parts_b, parts_kind = [], [], []
    for kind, name in enumerate(LINK_KINDS):
        wanted = int(np.sum(kinds == kind))
        if wanted == 0:
            continue
        # Partners share `group` with the anchor and must differ in `differ` (the item itself for
        # `both`), so an image link never shares a text attribute and vice versa.
        group, differ = {
            "image": (
                attributes.image_style.astype(np.int64),
                attributes.text_style.astype(np.int64),
            ),
            "text": (
                attributes.text_style.astype(np.int64),
                attributes.image_style.astype(np.int64),
            ),
            "both": (combo, np.arange(combo.size, dtype=np.int64)),
        }[name]
        group_of, differ_of = group[partner_items], differ[partner_items]
        order = np.lexsort((differ_of, group_of))
        sorted_groups = group_of[order]
        groups, start, size = np.unique(sorted_groups, return_index=True, return_counts=True)
        # An anchor's partners: the partner items of its group, minus those sharing its `differ`.
        anchor_group, anchor_differ = group[anchor_items], differ[anchor_items]
        slot = np.searchsorted(groups, anchor_group).clip(max=groups.size - 1)
        keys, key_counts = np.unique(
            group_of * (differ.max() + 1) + differ_of, return_counts=True
        )
        anchor_keys = anchor_group * (differ.max() + 1) + anchor_differ
        key_slot = np.searchsorted(keys, anchor_keys).clip(max=keys.size - 1)
        same_key = np.where(keys[key_slot] == anchor_keys, key_counts[key_slot], 0)
        partners = np.where(groups[slot] == anchor_group, size[slot] - same_key, 0)
        eligible = np.flatnonzero(partners > 0)
        if eligible.size == 0:
            raise ConfigError(
                f"no {name!r} link is possible among the {split} items: raise num_items or "
                f"test_item_share, lower the styles per category, or set pairs.{name}_share = 0"
            )
        anchors = eligible[rng.integers(eligible.size, size=wanted)]
        chosen = np.empty(wanted, dtype=np.int64)
        pending = np.arange(wanted)
        for _ in range(10_000):
            if pending.size == 0:
                break
            g = slot[anchors[pending]]
            draw = order[start[g] + (rng.random(pending.size) * size[g]).astype(np.int64)]
            ok = differ_of[draw] != anchor_differ[anchors[pending]]
            chosen[pending[ok]] = draw[ok]
            pending = pending[~ok]
        else:  # pragma: no cover - an eligible anchor has a partner with probability >= 1/size
            raise RuntimeError("partner sampling did not converge")
        parts_a.append(anchor_items[anchors])
        parts_b.append(partner_items[chosen])
        parts_kind.append(np.full(wanted, kind, dtype=np.int8))
    shuffle = rng.permutation(count)
    return PairDraw(
        a=np.concatenate(parts_a).astype(np.int64)[shuffle],
        b=np.concatenate(parts_b).astype(np.int64)[shuffle],
        kind=np.concatenate(parts_kind)[shuffle],
    )


def oracle_embeddings(
    config: MultimodalCatalogueConfig, attributes: ItemAttributes, view: str = "all"
) -> np.ndarray:
    """(N, D) float32: attribute one-hots, concatenated and L2-normalised, groups weighed alike.

    The attributes form three groups, shared (category), image-only (colour, pattern, shape) and
    text-only (brand, material); each group's one-hots are scaled to unit norm, so an image
    partner and a text partner score alike (2/3 for ``all``) and a ``both`` partner scores 1.
    ``all`` (the written oracle) holds the three groups; ``image`` the shared and image-only
    groups; ``text`` the shared and text-only groups.
    """
    spec = config.attributes
    groups = {
        "shared": ((attributes.category, spec.num_categories),),
        "image": (
            (attributes.colour, spec.num_colours),
            (attributes.pattern, spec.num_patterns),
            (attributes.shape, spec.num_shapes),
        ),
        "text": ((attributes.brand, spec.num_brands), (attributes.material, spec.num_materials)),
    }
    names = {
        "all": ("shared", "image", "text"),
        "image": ("shared", "image"),
        "text": ("shared", "text"),
    }[view]
    parts = [
        np.eye(width, dtype=np.float32)[values] / np.float32(np.sqrt(len(groups[name])))
        for name in names
        for values, width in groups[name]
    ]
    return np.concatenate(parts, axis=1) / np.float32(np.sqrt(len(names)))


def pair_recall(
    embeddings: np.ndarray,
    pool: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    k: int,
    rng: np.random.Generator,
    chunk: int = 1_024,
) -> np.ndarray:
    """(P,) bool: whether ``b`` ranks in the top ``k`` of ``pool`` (minus ``a``) for query ``a``.

    Scores are dot products; ties (one-hot oracles have many) are broken at random, so a hit
    among tied items counts with the probability a random order gives it.
    """
    pool_vectors = embeddings[pool]
    hits = np.empty(a.size, dtype=bool)
    for first in range(0, a.size, chunk):
        rows = slice(first, first + chunk)
        scores = embeddings[a[rows]] @ pool_vectors.T
        scores += rng.random(scores.shape, dtype=np.float32) * 1e-4
        scores[pool[None, :] == a[rows, None]] = -np.inf
        target = np.where(pool[None, :] == b[rows, None], scores, -np.inf).max(axis=1)
        hits[rows] = np.sum(scores > target[:, None], axis=1) < k
    return hits


def build_multimodal_catalogue(
    config: MultimodalCatalogueConfig, progress: bool = False
) -> MultimodalCatalogue:
    """Generate the catalogue in memory."""
    attributes = draw_attributes(config)
    item_ids = FIRST_ITEM_ID + np.arange(config.num_items, dtype=np.int64)
    background, border = category_colours(config.attributes.num_categories)
    rng = random_stream(config.seed, _STREAM_IMAGES)
    images = [
        encode_png(
            render_image(
                config.image.size,
                background[attributes.category[i]],
                border[attributes.category[i]],
                int(attributes.colour[i]),
                int(attributes.pattern[i]),
                int(attributes.shape[i]),
                rng,
                config.image.jitter,
                config.image.noise,
            )
        )
        for i in tqdm(range(config.num_items), desc="render", unit="image", disable=not progress)
    ]
    titles, contents, topics = item_texts(config, attributes, item_ids)
    shares = config.pairs.shares()
    train = draw_pairs(
        attributes,
        np.flatnonzero(~attributes.is_test),
        np.flatnonzero(~attributes.is_test),
        config.pairs.train_pairs,
        shares,
        random_stream(config.seed, _STREAM_TRAIN),
        "train",
    )
    test = draw_pairs(
        attributes,
        np.flatnonzero(attributes.is_query),
        np.flatnonzero(attributes.is_test & ~attributes.is_query),
        config.pairs.test_pairs,
        shares,
        random_stream(config.seed, _STREAM_TEST),
        "test",
    )
    return MultimodalCatalogue(
        item_ids=item_ids,
        attributes=attributes,
        titles=titles,
        contents=contents,
        topics=topics,
        images=images,
        train=train,
        test=test,
        oracle=oracle_embeddings(config, attributes, "all"),
    )


def oracle_recall(
    config: MultimodalCatalogueConfig, catalogue: MultimodalCatalogue, k: int = RECALL_K
) -> dict[str, dict[str, float]]:
    """View → link kind → Recall@k of the oracle view over the test pairs (NoteLLM's pool: the
    test items minus the queries)."""
    test = catalogue.test
    pool = np.setdiff1d(np.flatnonzero(catalogue.attributes.is_test), test.a)
    result: dict[str, dict[str, float]] = {}
    for view in ORACLE_VIEWS:
        embeddings = oracle_embeddings(config, catalogue.attributes, view)
        hits = pair_recall(
            embeddings, pool, test.a, test.b, k, random_stream(config.seed, _STREAM_EVAL)
        )
        result[view] = {
            name: float(hits[test.kind == kind].mean())
            for kind, name in enumerate(LINK_KINDS)
            if np.any(test.kind == kind)
        }
    return result


def generate_multimodal_catalogue(
    config: MultimodalCatalogueConfig, out_dir: str | Path, progress: bool = True
) -> MultimodalSummary:
    """Generate the catalogue described by ``config`` into ``out_dir`` (atomically)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    catalogue = build_multimodal_catalogue(config, progress)
    recall = oracle_recall(config, catalogue)
    counts = {
        split: {name: int(np.sum(draw.kind == kind)) for kind, name in enumerate(LINK_KINDS)}
        for split, draw in (("train", catalogue.train), ("test", catalogue.test))
    }
    with atomic_directory(out_dir) as staging:
        _write(staging, config, catalogue, counts, recall)
    return MultimodalSummary(
        out_dir=out_dir,
        num_items=config.num_items,
        num_test_items=int(catalogue.attributes.is_test.sum()),
        train_pairs=counts["train"],
        test_pairs=counts["test"],
        oracle_recall=recall,
        elapsed_seconds=time.perf_counter() - started,
    )


def _write(
    staging: Path,
    config: MultimodalCatalogueConfig,
    catalogue: MultimodalCatalogue,
    counts: dict[str, dict[str, int]],
    recall: dict[str, dict[str, float]],
) -> None:
    attributes, ids = catalogue.attributes, catalogue.item_ids
    pl.DataFrame(
        {
            "item_id": ids,
            "title": catalogue.titles,
            "content": catalogue.contents,
            "topics": catalogue.topics,
            "category": [CATEGORY_NAMES[c] for c in attributes.category],
            "image": catalogue.images,
        },
        schema={
            "item_id": pl.Int64,
            "title": pl.String,
            "content": pl.String,
            "topics": pl.List(pl.String),
            "category": pl.String,
            "image": pl.Binary,
        },
    ).write_parquet(staging / ITEMS_FILE)
    brands = brand_names(config.attributes.num_brands)
    pl.DataFrame(
        {
            "item_id": ids,
            # test_query: a test item the test pairs start from; test: a partner (the pool).
            "split": np.where(
                attributes.is_query, "test_query", np.where(attributes.is_test, "test", "train")
            ),
            "category": [CATEGORY_NAMES[v] for v in attributes.category],
            "colour": [COLOUR_NAMES[v] for v in attributes.colour],
            "pattern": [PATTERN_NAMES[v] for v in attributes.pattern],
            "shape": [SHAPE_NAMES[v] for v in attributes.shape],
            "brand": [brands[v] for v in attributes.brand],
            "material": [MATERIAL_NAMES[v] for v in attributes.material],
            "image_style": attributes.image_style,
            "text_style": attributes.text_style,
        }
    ).write_parquet(staging / ATTRIBUTES_FILE)
    for name, draw in ((TRAIN_PAIRS_FILE, catalogue.train), (TEST_PAIRS_FILE, catalogue.test)):
        pl.DataFrame(
            {
                "item_id_a": ids[draw.a],
                "item_id_b": ids[draw.b],
                "weight": np.ones(draw.a.size, dtype=np.float64),
                "link_kind": [LINK_KINDS[k] for k in draw.kind],
            },
            schema={
                "item_id_a": pl.Int64,
                "item_id_b": pl.Int64,
                "weight": pl.Float64,
                "link_kind": pl.String,
            },
        ).write_parquet(staging / name)
    np.save(staging / ORACLE_FILE, catalogue.oracle)
    np.save(staging / ORACLE_IDS_FILE, ids)
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "source": "synthetic multimodal catalogue (features/multimodal_catalogue.py)",
        "num_items": config.num_items,
        "num_test_items": int(attributes.is_test.sum()),
        "pairs": counts,
        "oracle_dim": int(catalogue.oracle.shape[1]),
        f"oracle_recall_at_{RECALL_K}": recall,
        "config": config_to_dict(config),
    }
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
