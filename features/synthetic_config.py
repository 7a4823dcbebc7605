"""Configuration of the synthetic lifelong benchmark (see docs/synthetic-data.md for the model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Taobao-MM has exactly five user profile columns, 130_1 .. 130_5.
NUM_PROFILE_FEATURES = 5


@dataclass(frozen=True)
class CatalogueConfig:
    """Items: latent topics, categories cutting across them, popularity and embeddings."""

    num_items: int = 50_000
    num_topics: int = 500
    num_categories: int = 100
    # Each topic spreads its items over this many categories (Dirichlet weights).
    categories_per_topic: int = 8
    category_concentration: float = 3.0
    num_cities: int = 300
    num_provinces: int = 30
    embedding_dim: int = 128
    # Item embedding = topic_weight·topic centre + category_weight·category centre + noise_weight·noise.
    topic_weight: float = 1.0
    category_weight: float = 0.3
    noise_weight: float = 0.8
    # L2 norm of the float embedding before int8 storage (trunc(clip(x, -1, 1)·127)).
    embedding_norm: float = 2.0
    # Zipf exponent of item popularity (over a random item order).
    popularity_exponent: float = 0.9
    # Share of items (the most popular first) that get an embedding row; the rest are cold.
    embedding_coverage: float = 1.0

    def __post_init__(self) -> None:
        _positive(self, "num_items", "num_topics", "num_categories", "categories_per_topic")
        _positive(self, "num_cities", "num_provinces", "embedding_dim")
        _positive(self, "category_concentration", "embedding_norm")
        if self.num_items < self.num_topics:
            raise ValueError("num_items must be at least num_topics (every topic owns an item)")
        if self.categories_per_topic > self.num_categories:
            raise ValueError("categories_per_topic must not exceed num_categories")
        if self.num_provinces > self.num_cities:
            raise ValueError("num_provinces must not exceed num_cities")
        if not 0.0 < self.embedding_coverage <= 1.0:
            raise ValueError("embedding_coverage must be in (0, 1]")
        if min(self.topic_weight, self.category_weight, self.noise_weight) < 0:
            raise ValueError("embedding weights must be non-negative")


@dataclass(frozen=True)
class HistoryConfig:
    """Each user's lifelong behaviour sequence and the interests planted in it."""

    # Behaviours visible at each impression (Taobao-MM: 1,000).
    length: int = 1_000
    # New behaviours between the train-time and the test-time snapshot of a user.
    test_time_gap: int = 100
    # Background behaviours pick a topic ∝ topic popularity ** exponent (0: every topic alike),
    # then an item of that topic ∝ its popularity.
    background_topic_exponent: float = 0.0
    long_term_interests: int = 4
    # Expected share of the history that each long-term interest occupies (Poisson count).
    long_term_share: float = 0.012
    # Interest strength varies: each user-interest scales its expected count by a Gamma(shape,
    # 1/shape) draw (mean 1); smaller shape = more varied.
    long_term_strength_shape: float = 1.5
    # Long-term interest behaviours lie in this oldest share of the sequence (never recent).
    long_term_span: float = 0.8
    short_term_interests: int = 2
    # The most recent `short_term_window` behaviours are short-term interest items with this share.
    short_term_window: int = 30
    short_term_share: float = 0.5

    def __post_init__(self) -> None:
        _positive(
            self, "length", "long_term_interests", "short_term_interests", "short_term_window"
        )
        _positive(self, "long_term_strength_shape")
        if self.test_time_gap < 0:
            raise ValueError("test_time_gap must be >= 0")
        if self.short_term_window > self.length:
            raise ValueError("short_term_window must not exceed length")
        for name in ("long_term_share", "short_term_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if not 0.0 < self.long_term_span <= 1.0:
            raise ValueError("long_term_span must be in (0, 1]")


@dataclass(frozen=True)
class ImpressionConfig:
    """Impressions per user and where their target items come from (weights, normalised)."""

    train_per_user: int = 15
    test_per_user: int = 10
    from_popularity: float = 0.40
    from_long_term_interest: float = 0.30
    from_short_term_interest: float = 0.05
    # Same category as a long-term interest item, usually another topic: hard for category search.
    from_interest_category: float = 0.15
    from_uniform: float = 0.10

    def __post_init__(self) -> None:
        if self.train_per_user < 0 or self.test_per_user < 1:
            raise ValueError("train_per_user must be >= 0 and test_per_user >= 1")
        weights = self.source_weights()
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("target source weights must be non-negative with a positive sum")

    def source_weights(self) -> tuple[float, float, float, float, float]:
        """Weights in TargetSource order."""
        return (
            self.from_popularity,
            self.from_long_term_interest,
            self.from_short_term_interest,
            self.from_interest_category,
            self.from_uniform,
        )


@dataclass(frozen=True)
class ClickModelConfig:
    """The true click probability; see docs/synthetic-data.md for the formula."""

    # A behaviour counts as matching the target by ramp((cos - low) / (high - low)) clipped to [0, 1].
    similarity_low: float = 0.40
    similarity_high: float = 0.60
    long_term_weight: float = 2.0
    short_term_weight: float = 0.5
    # Short-term matches are counted over this many most recent behaviours.
    short_term_recent: int = 50
    popularity_weight: float = 0.25
    profile_weight: float = 0.3
    profile_category_weight: float = 0.4
    positive_rate: float = 0.125
    # Users drawn (from their own random stream) to calibrate the intercept to `positive_rate`.
    calibration_users: int = 1_000

    def __post_init__(self) -> None:
        if not -1.0 <= self.similarity_low < self.similarity_high <= 1.0:
            raise ValueError("need -1 <= similarity_low < similarity_high <= 1")
        _positive(self, "short_term_recent", "calibration_users")
        if not 0.0 < self.positive_rate < 1.0:
            raise ValueError("positive_rate must be in (0, 1)")


@dataclass(frozen=True)
class CatalogueItemsConfig:
    """Take the ranking world's items from a synthetic multimodal catalogue (``muse data
    synth-items``) instead of drawing topics and embeddings (docs/synthetic-data.md, "Ranking over
    the multimodal catalogue").

    The items are the catalogue's (same raw item ids, category from the catalogue); interests are
    the catalogue's image styles and text styles; the click model's cosines and the written
    ``scl_embedding_int8_p90.parquet`` are the catalogue's ground-truth (oracle) vectors. Of
    ``[catalogue]`` only ``num_cities``, ``num_provinces``, ``popularity_exponent`` and
    ``embedding_coverage`` still apply.
    """

    # Directory written by `muse data synth-items` (manifest.json, oracle_embeddings.npy, ...).
    catalogue: Path

    def __post_init__(self) -> None:
        if not str(self.catalogue):
            raise ValueError("items.catalogue must name a catalogue directory")


@dataclass(frozen=True)
class SynthConfig:
    """The whole synthetic dataset: sizes, generative model and chunking."""

    seed: int = 42
    num_users: int = 10_000
    # Values per profile column 130_1 .. 130_5.
    profile_cardinalities: tuple[int, ...] = (8, 3, 10, 50, 20)
    # Users generated per chunk (capped so a chunk holds at most `max_chunk_events` behaviours).
    chunk_users: int = 1_024
    max_chunk_events: int = 4_000_000
    catalogue: CatalogueConfig = field(default_factory=CatalogueConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    impressions: ImpressionConfig = field(default_factory=ImpressionConfig)
    click: ClickModelConfig = field(default_factory=ClickModelConfig)
    # Unset: the generator draws its own catalogue (above). Set: the items of a multimodal catalogue.
    items: CatalogueItemsConfig | None = None

    def __post_init__(self) -> None:
        _positive(self, "num_users", "chunk_users", "max_chunk_events")
        if len(self.profile_cardinalities) != NUM_PROFILE_FEATURES:
            raise ValueError(f"profile_cardinalities needs {NUM_PROFILE_FEATURES} entries")
        if min(self.profile_cardinalities) < 1:
            raise ValueError("profile_cardinalities must be >= 1")
        if self.seed < 0:
            raise ValueError("seed must be >= 0")

    def users_per_chunk(self) -> int:
        """Users in one generation chunk, so that memory stays bounded for long histories."""
        events_per_user = self.history.length + self.history.test_time_gap
        return max(1, min(self.chunk_users, self.max_chunk_events // events_per_user))


def _positive(config: object, *names: str) -> None:
    for name in names:
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be > 0")
