"""The ranking world's items taken from a synthetic multimodal catalogue (``[items] catalogue``).

The lifelong benchmark normally draws its own items (latent topics, categories, noisy embeddings:
features/synthetic_catalogue.py). With ``items.catalogue`` naming a directory written by ``muse
data synth-items``, the items ARE the catalogue's instead, so that the item embeddings NoteLLM-2
learns from the catalogue's images and text can be fed to the ranking models:

- item ids are the catalogue's raw ids (1,000,001 …) and the category is the catalogue's;
- the **topics** (what users' long-term and short-term interests are) are the catalogue's styles:
  every image style (category + colour + pattern + shape) and every text style (category + brand +
  material) with at least one item. Each item belongs to two topics, its image style and its text
  style, so half of the interests can only be recognised by looking at the images;
- the click model's cosines, and the written ``scl_embedding_int8_p90.parquet``, are the
  catalogue's ground-truth vectors (``oracle_embeddings.npy``: the attribute one-hots, image-only
  and text-only groups weighed alike), stored int8 as Taobao-MM does;
- popularity, city and province are drawn by the ranking generator from its own seed.

The catalogue is re-derived from the config in its ``manifest.json`` (the catalogue generator is a
pure function of it) and checked against the directory's oracle files, so the ranking data is a
function of the ranking config and that catalogue config. No torch here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from features.multimodal_catalogue import (
    FIRST_ITEM_ID,
    MANIFEST_FILE,
    ORACLE_FILE,
    ORACLE_IDS_FILE,
    ItemAttributes,
    draw_attributes,
    oracle_embeddings,
)
from features.multimodal_catalogue_config import MultimodalCatalogueConfig
from features.synthetic_catalogue import (
    INT8_SCALE,
    GroupedSampler,
    ItemCatalogue,
    covered_items,
    draw_locations,
    draw_popularity,
    unit_rows,
)
from features.synthetic_config import CatalogueConfig
from muse.core.atomic_write import atomic_file
from muse.core.config_loader import config_from_dict, config_to_dict
from muse.core.errors import ConfigError, DataError

# Oracle views the generator scores its diagnostics with (a perfect text-only / image-only model).
DIAGNOSTIC_VIEWS = ("text", "image")
# Written beside the ranking data built over a catalogue: which catalogue, which config.
PROVENANCE_FILE = "item_catalogue.json"


class CatalogueSource(NamedTuple):
    """A multimodal catalogue directory, re-derived from its manifest and checked."""

    directory: Path
    config: MultimodalCatalogueConfig
    attributes: ItemAttributes
    item_ids: np.ndarray  # (N,) int64
    oracle: np.ndarray  # (N, D) float32, the directory's oracle_embeddings.npy
    oracle_sha256: str

    def provenance(self) -> dict[str, Any]:
        """What the ranking data was built from (written beside it as PROVENANCE_FILE)."""
        return {
            "catalogue": str(self.directory),
            "num_items": int(self.item_ids.size),
            "oracle_sha256": self.oracle_sha256,
            "config": config_to_dict(self.config),
        }


def read_catalogue(directory: str | Path) -> CatalogueSource:
    """Read ``directory``'s manifest, re-derive the attributes, check the oracle files agree."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise DataError(
            manifest_path, "file not found (items.catalogue needs a `muse data synth-items` output)"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        raw_config = manifest["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataError(manifest_path, f"not a catalogue manifest: {error}") from error
    try:
        config = config_from_dict(MultimodalCatalogueConfig, raw_config, str(manifest_path))
    except ConfigError as error:
        raise DataError(manifest_path, f"config does not load: {error}") from error
    attributes = draw_attributes(config)
    item_ids = FIRST_ITEM_ID + np.arange(config.num_items, dtype=np.int64)
    oracle_path, ids_path = directory / ORACLE_FILE, directory / ORACLE_IDS_FILE
    for path in (oracle_path, ids_path):
        if not path.is_file():
            raise DataError(path, "file not found")
    stored_ids = np.load(ids_path, allow_pickle=False)
    if stored_ids.shape != item_ids.shape or not np.array_equal(stored_ids, item_ids):
        raise DataError(ids_path, "item ids differ from the ones the manifest's config generates")
    oracle_bytes = oracle_path.read_bytes()
    oracle = np.load(oracle_path, allow_pickle=False).astype(np.float32, copy=False)
    expected = oracle_embeddings(config, attributes, "all")
    if oracle.shape != expected.shape or not np.allclose(oracle, expected, atol=1e-6):
        raise DataError(
            oracle_path, "oracle vectors differ from the ones the manifest's config generates"
        )
    return CatalogueSource(
        directory=directory,
        config=config,
        attributes=attributes,
        item_ids=item_ids,
        oracle=oracle,
        oracle_sha256=hashlib.sha256(oracle_bytes).hexdigest(),
    )


def load_catalogue_items(
    directory: str | Path, config: CatalogueConfig, rng: np.random.Generator
) -> ItemCatalogue:
    """The ranking world's ItemCatalogue over the catalogue's items (see the module docstring).

    From ``config`` only the cities, provinces, popularity exponent and embedding coverage apply;
    ``rng`` (the world's catalogue stream) draws the locations and the popularity.
    """
    source = read_catalogue(directory)
    attributes = source.attributes
    num_items = source.item_ids.size
    city, province = draw_locations(rng, num_items, config.num_cities, config.num_provinces)
    popularity, popularity_score = draw_popularity(rng, num_items, config.popularity_exponent)

    # Topics: image styles, then text styles; styles without items are left out (compact ids).
    image_styles = int(attributes.image_style.max()) + 1
    styles = np.concatenate([attributes.image_style, image_styles + attributes.text_style])
    present, member_topics = np.unique(styles, return_inverse=True)
    member_topics = member_topics.astype(np.int32)
    member_items = np.concatenate([np.arange(num_items), np.arange(num_items)]).astype(np.int32)
    # Each membership carries half of its item's popularity, so memberships sum to 1 and a draw
    # over all of them picks an item ∝ its popularity.
    member_weights = np.concatenate([popularity, popularity]) / 2.0
    num_topics = int(present.size)
    topic_popularity = np.bincount(member_topics, weights=member_weights, minlength=num_topics)
    topic_categories = np.zeros((num_topics, 1), dtype=np.int32)
    topic_categories[member_topics, 0] = attributes.category[member_items]
    num_categories = source.config.attributes.num_categories

    embedding_int8 = np.trunc(np.clip(source.oracle, -1.0, 1.0) * INT8_SCALE).astype(np.int8)
    has_embedding = covered_items(popularity, config.embedding_coverage)
    embedding_int8[~has_embedding] = 0
    unit_embedding = unit_rows(embedding_int8.astype(np.float32)).astype(np.float32)
    category = attributes.category.astype(np.int32)
    return ItemCatalogue(
        topic=member_topics[:num_items],  # the image style; member_topics holds both
        category=category,
        city=city,
        province=province,
        popularity=popularity,
        popularity_score=popularity_score,
        embedding_int8=embedding_int8,
        has_embedding=has_embedding,
        unit_embedding=unit_embedding,
        topic_categories=topic_categories,
        topic_popularity=topic_popularity,
        by_topic=GroupedSampler(member_topics, member_weights, num_topics, member_items),
        by_category=GroupedSampler(category, popularity, num_categories),
        member_items=member_items,
        member_topics=member_topics,
        member_weights=member_weights,
        raw_item_ids=source.item_ids,
        oracle_views={
            view: oracle_embeddings(source.config, attributes, view) for view in DIAGNOSTIC_VIEWS
        },
    )


def oracle_view(directory: str | Path, view: str) -> tuple[np.ndarray, np.ndarray]:
    """(item ids (N,) int64, vectors (N, D_v) float32) of the catalogue's oracle ``view``:
    ``all`` (the ground truth, as stored), ``text`` or ``image`` (a perfect single-modality model)."""
    source = read_catalogue(directory)
    if view == "all":
        return source.item_ids, source.oracle
    if view not in DIAGNOSTIC_VIEWS:
        raise ConfigError(
            f"unknown oracle view {view!r}; known: all, {', '.join(DIAGNOSTIC_VIEWS)}"
        )
    return source.item_ids, oracle_embeddings(source.config, source.attributes, view)


def write_oracle_view(directory: str | Path, view: str, out: str | Path) -> Path:
    """Write the oracle ``view`` as item embeddings parquet (``item_id`` int64, ``embedding``
    list<float32>, the format of ``muse i2i embed``), atomically; returns ``out``."""
    item_ids, vectors = oracle_view(directory, view)
    frame = pl.DataFrame(
        {
            "item_id": pl.Series(item_ids, dtype=pl.Int64),
            "embedding": pl.Series(list(vectors.astype(np.float32)), dtype=pl.List(pl.Float32)),
        }
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as temporary:
        frame.write_parquet(temporary)
    return out
