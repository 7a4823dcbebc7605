"""Configuration of the synthetic multimodal catalogue (see docs/synthetic-data.md, "Multimodal")."""

from __future__ import annotations

from dataclasses import dataclass, field

# Names the generator draws attribute values from; the counts below may not exceed them.
CATEGORY_NAMES = (
    "mug", "lamp", "tote", "sneaker", "vase", "cushion", "notebook", "bottle",
    "scarf", "clock", "bowl", "candle", "hat", "wallet", "chair", "backpack",
)  # fmt: skip
COLOUR_NAMES = (
    "red", "orange", "yellow", "lime", "green", "cyan", "blue", "purple", "magenta", "pink",
)  # fmt: skip
PATTERN_NAMES = ("solid", "striped", "banded", "checked", "dotted", "diagonal")
SHAPE_NAMES = ("circle", "square", "triangle", "diamond", "cross", "ring")
MATERIAL_NAMES = (
    "cotton", "wool", "leather", "linen", "silk", "denim",
    "bamboo", "ceramic", "steel", "oak", "glass", "canvas",
)  # fmt: skip
# Brands are made-up two-syllable words; this many exist.
MAX_BRANDS = 400


@dataclass(frozen=True)
class AttributeConfig:
    """Latent attributes: image-only, text-only and shared (category)."""

    num_categories: int = 8
    # Image-only attributes.
    num_colours: int = 8
    num_patterns: int = 6
    num_shapes: int = 6
    # Text-only attributes.
    num_brands: int = 24
    num_materials: int = 8
    # Each category offers this many image styles (colour, pattern, shape) and text styles
    # (brand, material); two styles of one category differ in every attribute.
    image_styles_per_category: int = 5
    text_styles_per_category: int = 5

    def __post_init__(self) -> None:
        limits = {
            "num_categories": len(CATEGORY_NAMES),
            "num_colours": len(COLOUR_NAMES),
            "num_patterns": len(PATTERN_NAMES),
            "num_shapes": len(SHAPE_NAMES),
            "num_brands": MAX_BRANDS,
            "num_materials": len(MATERIAL_NAMES),
        }
        for name, limit in limits.items():
            if not 1 <= getattr(self, name) <= limit:
                raise ValueError(f"{name} must be in [1, {limit}]")
        image_limit = min(self.num_colours, self.num_patterns, self.num_shapes)
        if not 1 <= self.image_styles_per_category <= image_limit:
            raise ValueError(
                f"image_styles_per_category must be in [1, {image_limit}] "
                "(at most min(num_colours, num_patterns, num_shapes))"
            )
        text_limit = min(self.num_brands, self.num_materials)
        if not 1 <= self.text_styles_per_category <= text_limit:
            raise ValueError(
                f"text_styles_per_category must be in [1, {text_limit}] "
                "(at most min(num_brands, num_materials))"
            )


@dataclass(frozen=True)
class ImageConfig:
    """Rendering of each item's image."""

    size: int = 64
    # Shape centre offset and radius spread, as shares of the image size.
    jitter: float = 0.08
    # Standard deviation of the per-pixel Gaussian noise, as a share of 255.
    noise: float = 0.03

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 1024:
            raise ValueError("size must be in [16, 1024]")
        if not 0.0 <= self.jitter <= 0.2:
            raise ValueError("jitter must be in [0, 0.2]")
        if not 0.0 <= self.noise <= 0.5:
            raise ValueError("noise must be in [0, 0.5]")


@dataclass(frozen=True)
class PairConfig:
    """The co-engagement model: how many pairs, and the share of each link kind (normalised)."""

    train_pairs: int = 8_000
    test_pairs: int = 1_000
    image_share: float = 0.4
    text_share: float = 0.4
    both_share: float = 0.2

    def __post_init__(self) -> None:
        if self.train_pairs < 1 or self.test_pairs < 1:
            raise ValueError("train_pairs and test_pairs must be >= 1")
        shares = self.shares()
        if min(shares) < 0 or sum(shares) <= 0:
            raise ValueError("link kind shares must be non-negative with a positive sum")

    def shares(self) -> tuple[float, float, float]:
        """Shares in LinkKind order (image, text, both)."""
        return (self.image_share, self.text_share, self.both_share)


@dataclass(frozen=True)
class MultimodalCatalogueConfig:
    """The whole synthetic multimodal catalogue with its co-engagement pairs."""

    seed: int = 42
    num_items: int = 2_000
    # Share of the items held out for test pairs (train pairs never touch them).
    test_item_share: float = 0.3
    # Share of the test items the test pairs start from (the queries); the other test items are
    # the partners and, as in NoteLLM's protocol, the retrieval pool (test items minus queries).
    test_query_share: float = 0.25
    attributes: AttributeConfig = field(default_factory=AttributeConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    pairs: PairConfig = field(default_factory=PairConfig)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        if self.num_items < 4:
            raise ValueError("num_items must be >= 4")
        if not 0.0 < self.test_item_share < 1.0:
            raise ValueError("test_item_share must be in (0, 1)")
        if not 0.0 < self.test_query_share < 1.0:
            raise ValueError("test_query_share must be in (0, 1)")
