"""The synthetic item catalogue: latent topics, categories that cut across them, embeddings.

Every item belongs to one latent topic and one category. Each topic spreads its items over a few
categories and each category mixes many topics, so a category is only a weak proxy for a topic.
An item's multimodal embedding sits around its topic centre, pulled a little towards its category
centre, and is stored int8 as Taobao-MM does. See docs/synthetic-data.md.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from features.synthetic_config import CatalogueConfig

INT8_SCALE = 127.0


class GroupedSampler:
    """Draws items with probability proportional to a weight, overall or within one group.

    Entry e is item ``members[e]`` (default: item e) in group ``groups[e]`` with ``weights[e]``;
    with ``members`` one item may belong to several groups (one entry per membership).
    """

    def __init__(
        self,
        groups: np.ndarray,
        weights: np.ndarray,
        num_groups: int,
        members: np.ndarray | None = None,
    ) -> None:
        # Entries sorted by group; one cumulative sum serves both the global and the per-group draw.
        self.order = np.argsort(groups, kind="stable").astype(np.int32)
        if members is not None:
            self.order = members[self.order].astype(np.int32)
        self.cumulative = np.cumsum(weights[self.order], dtype=np.float64)
        counts = np.bincount(groups, minlength=num_groups)
        self.group_end = np.cumsum(counts)
        self.group_start = self.group_end - counts
        padded = np.concatenate([[0.0], self.cumulative])
        self.mass_before = padded[self.group_start]
        self.mass_through = padded[self.group_end]

    def draw(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """Items drawn over the whole catalogue."""
        targets = rng.random(size) * self.cumulative[-1]
        positions = np.searchsorted(self.cumulative, targets, side="right")
        return self.order[np.minimum(positions, self.order.size - 1)]

    def draw_within(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        """One item per entry of ``groups``, drawn within that group (groups must be non-empty)."""
        low = self.mass_before[groups]
        targets = low + rng.random(groups.shape) * (self.mass_through[groups] - low)
        positions = np.searchsorted(self.cumulative, targets, side="right")
        positions = np.clip(positions, self.group_start[groups], self.group_end[groups] - 1)
        return self.order[positions]


class AliasSampler:
    """Draws items with probability proportional to a weight in O(1) each (Vose's alias method)."""

    def __init__(self, weights: np.ndarray, values: np.ndarray | None = None) -> None:
        # Draws return values[slot] when given (e.g. the item of a membership), else the slot.
        self.values = values
        size = weights.size
        scaled = weights * (size / weights.sum())
        self.keep = np.ones(size, dtype=np.float64)
        self.alias = np.arange(size, dtype=np.int32)
        small = [int(i) for i in np.flatnonzero(scaled < 1.0)]
        large = [int(i) for i in np.flatnonzero(scaled >= 1.0)]
        while small and large:
            low, high = small.pop(), large.pop()
            self.keep[low] = scaled[low]
            self.alias[low] = high
            scaled[high] -= 1.0 - scaled[low]
            (small if scaled[high] < 1.0 else large).append(high)

    def draw(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """Item indices (int32) of the given shape (``values`` of the drawn slots when given)."""
        uniform = rng.random(size) * self.keep.size
        slot = np.minimum(uniform.astype(np.int32), self.keep.size - 1)
        drawn = np.where(uniform - slot < self.keep[slot], slot, self.alias[slot])
        return drawn if self.values is None else self.values[drawn]


class ItemCatalogue(NamedTuple):
    """All items, indexed 0..N-1 (dense generator indices, not the dataset's vocabulary indices)."""

    topic: np.ndarray  # (N,) int32 latent topic
    category: np.ndarray  # (N,) int32
    city: np.ndarray  # (N,) int32
    province: np.ndarray  # (N,) int32
    popularity: np.ndarray  # (N,) float64, sums to 1
    popularity_score: np.ndarray  # (N,) float32, standardised log popularity
    embedding_int8: np.ndarray  # (N, D) int8, as stored
    has_embedding: np.ndarray  # (N,) bool
    unit_embedding: (
        np.ndarray
    )  # (N, D) float32, the stored int8 restored and L2-normalised; 0 if none
    topic_categories: np.ndarray  # (T, categories_per_topic) int32
    topic_popularity: np.ndarray  # (T,) float64, sums to 1
    by_topic: GroupedSampler
    by_category: GroupedSampler
    # Topic memberships: membership m is item member_items[m] in topic member_topics[m]. Here
    # every item has one topic (member_items = 0..N-1); catalogue items have two (their image
    # style and their text style, features/synthetic_catalogue_items.py).
    member_items: np.ndarray  # (M,) int32
    member_topics: np.ndarray  # (M,) int32
    member_weights: np.ndarray  # (M,) float64, popularity mass of each membership, sums to 1
    # Raw int64 item ids to write; None: hashed ids of the generator indices.
    raw_item_ids: np.ndarray | None = None
    # Oracle views for the diagnostics (catalogue items only): name -> (N, D_v) float32 unit rows.
    oracle_views: dict[str, np.ndarray] | None = None

    @property
    def size(self) -> int:
        return int(self.topic.size)

    @property
    def num_topics(self) -> int:
        return int(self.topic_popularity.size)

    @property
    def num_categories(self) -> int:
        return int(self.by_category.group_end.size)


def build_catalogue(config: CatalogueConfig, rng: np.random.Generator) -> ItemCatalogue:
    """Draw the catalogue (topics, categories, popularity, embeddings) from ``rng``."""
    num_items, num_topics = config.num_items, config.num_topics
    dim = config.embedding_dim
    # Every topic owns at least one item; the rest are assigned uniformly.
    topic = np.concatenate(
        [
            rng.permutation(num_topics)[: min(num_topics, num_items)],
            rng.integers(0, num_topics, max(0, num_items - num_topics)),
        ]
    ).astype(np.int32)
    topic_categories = np.argsort(rng.random((num_topics, config.num_categories)), axis=1)[
        :, : config.categories_per_topic
    ].astype(np.int32)
    category_weights = rng.dirichlet(
        np.full(config.categories_per_topic, config.category_concentration), size=num_topics
    )
    choice = _draw_rows(rng, category_weights[topic])
    category = topic_categories[topic, choice]

    city, province = draw_locations(rng, num_items, config.num_cities, config.num_provinces)
    popularity, popularity_score = draw_popularity(rng, num_items, config.popularity_exponent)
    topic_popularity = np.bincount(topic, weights=popularity, minlength=num_topics)

    topic_centres = unit_rows(rng.standard_normal((num_topics, dim)))
    category_centres = unit_rows(rng.standard_normal((config.num_categories, dim)))
    embedding_int8 = np.empty((num_items, dim), dtype=np.int8)
    block = 65_536
    for start in range(0, num_items, block):
        stop = min(num_items, start + block)
        noise = rng.standard_normal((stop - start, dim)) / np.sqrt(dim)
        raw = (
            config.topic_weight * topic_centres[topic[start:stop]]
            + config.category_weight * category_centres[category[start:stop]]
            + config.noise_weight * noise
        )
        raw = unit_rows(raw) * config.embedding_norm
        embedding_int8[start:stop] = np.trunc(np.clip(raw, -1.0, 1.0) * INT8_SCALE).astype(np.int8)
    # The most popular items get embeddings first, as Taobao-MM's p90 table does.
    has_embedding = covered_items(popularity, config.embedding_coverage)
    embedding_int8[~has_embedding] = 0
    unit_embedding = unit_rows(embedding_int8.astype(np.float32)).astype(np.float32)

    return ItemCatalogue(
        topic=topic,
        category=category.astype(np.int32),
        city=city,
        province=province,
        popularity=popularity,
        popularity_score=popularity_score,
        embedding_int8=embedding_int8,
        has_embedding=has_embedding,
        unit_embedding=unit_embedding,
        topic_categories=topic_categories,
        topic_popularity=topic_popularity,
        by_topic=GroupedSampler(topic, popularity, num_topics),
        by_category=GroupedSampler(category, popularity, config.num_categories),
        member_items=np.arange(num_items, dtype=np.int32),
        member_topics=topic,
        member_weights=popularity,
    )


def draw_popularity(
    rng: np.random.Generator, num_items: int, exponent: float
) -> tuple[np.ndarray, np.ndarray]:
    """Zipf popularity over a random item order (sums to 1) and its standardised log."""
    rank = rng.permutation(num_items) + 1
    popularity = rank.astype(np.float64) ** -exponent
    popularity /= popularity.sum()
    log_popularity = np.log(popularity)
    popularity_score = (
        (log_popularity - log_popularity.mean()) / max(log_popularity.std(), 1e-12)
    ).astype(np.float32)
    return popularity, popularity_score


def draw_locations(
    rng: np.random.Generator, num_items: int, num_cities: int, num_provinces: int
) -> tuple[np.ndarray, np.ndarray]:
    """(city, province) of every item: cities belong to provinces, each province has a city."""
    city_province = np.concatenate(
        [np.arange(num_provinces), rng.integers(0, num_provinces, num_cities - num_provinces)]
    )
    city = rng.integers(0, num_cities, num_items).astype(np.int32)
    return city, city_province[city].astype(np.int32)


def covered_items(popularity: np.ndarray, coverage: float) -> np.ndarray:
    """(N,) bool: the most popular share ``coverage`` of the items (Taobao-MM's p90 table)."""
    covered_count = max(1, int(round(coverage * popularity.size)))
    has_embedding = np.zeros(popularity.size, dtype=bool)
    has_embedding[np.argsort(-popularity, kind="stable")[:covered_count]] = True
    return has_embedding


def _draw_rows(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One column index per row of ``probabilities`` (rows sum to 1)."""
    cumulative = np.cumsum(probabilities, axis=1)
    picks = (rng.random((probabilities.shape[0], 1)) * cumulative[:, -1:] >= cumulative).sum(axis=1)
    return np.minimum(picks, probabilities.shape[1] - 1)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)
