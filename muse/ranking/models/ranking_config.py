"""Configuration of a ranking model (the ``[model]`` table of a ranking TOML).

A model is a composition: a first stage (GSU) picked by :class:`SearchKind`, and a second stage
(ESU) whose parts are switched by the enums and flags below. MUSE, every baseline and every
ablation is one such composition; ``configs/ranking/*.toml`` names them. Imports no torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class SearchKind(enum.Enum):
    """The first stage: how the top-K long-term behaviours are chosen."""

    NONE = "none"  # DIN: no search, the ESU sees only the recent window
    MULTIMODAL_COSINE = "multimodal_cosine"  # MUSE: parameter-free cosine of MM embeddings
    SAME_CATEGORY = "same_category"  # SIM-hard: most recent behaviours of the target's category
    SOFT_INNER_PRODUCT = "soft_inner_product"  # SIM-soft: learned (W_b e_i)·(W_a e_a)
    SIMHASH = "simhash"  # ETA: Hamming distance of SimHash codes of MM embeddings
    SHARED_ATTENTION = "shared_attention"  # TWIN: the ESU's own attention logits over the history


class LongTermAttention(enum.Enum):
    """How the ESU attends over the K searched behaviours."""

    NONE = "none"
    TARGET = "target"  # ID-only dot-product target attention
    SIMILARITY_AWARE = "similarity_aware"  # SA-TA: ID attention fused with the MM cosine


class SimilarityAwareVariant(enum.Enum):
    """SA-TA as the official code computes it, or as the paper writes it."""

    CODE = "code"  # SiLU-gated q/k/v, dot without √D, b1·dot + b2·cos/a1 + b3·dot·cos/a1
    PAPER = "paper"  # α = γ1·α_ID + γ2·R + γ3·α_ID⊙R with α_ID scaled by 1/√D


class ShortTermAttention(enum.Enum):
    """Target attention over the most recent behaviours."""

    NONE = "none"
    TARGET = "target"  # MUSE's short-term path: ID target attention (q·k softmax)
    ACTIVATION_UNIT = "activation_unit"  # DIN: MLP over [q, k, q−k, q⊙k]


@dataclass(frozen=True)
class SearchConfig:
    """First-stage settings; fields a kind does not use are ignored by it."""

    kind: SearchKind = SearchKind.MULTIMODAL_COSINE
    top_k: int = 50
    simhash_bits: int = 64  # ETA code length
    simhash_seed: int = 0  # ETA's fixed random projections
    soft_search_dim: int = 32  # SIM-soft projection width of W_a, W_b
    auxiliary_hidden: tuple[int, ...] = (200, 80)  # SIM-soft auxiliary CTR tower

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"search.top_k must be ≥ 1, got {self.top_k}")
        if self.simhash_bits < 1 or self.soft_search_dim < 1:
            raise ValueError("search.simhash_bits and search.soft_search_dim must be ≥ 1")


@dataclass(frozen=True)
class RankingModelConfig:
    """A ranking model: GSU (``search``) + ESU parts + CTR tower.

    ``recent_length`` is N, the recent window for short-term attention, recent SimTier and the
    recent mean; 0 means the whole visible history (DIN over the full sequence).
    ``name`` is a label for reports only; nothing dispatches on it.
    """

    name: str = "muse"
    search: SearchConfig = field(default_factory=SearchConfig)
    id_embedding_dim: int = 16
    embedding_init_std: float = 0.05
    recent_length: int = 50
    short_term_attention: ShortTermAttention = ShortTermAttention.TARGET
    long_term_attention: LongTermAttention = LongTermAttention.SIMILARITY_AWARE
    similarity_aware_variant: SimilarityAwareVariant = SimilarityAwareVariant.CODE
    temperature_init: float = 0.1  # SA-TA code version: a1 in cos / a1
    fusion_init: float = 1.0  # SA-TA: b1..b3 (code) or γ1..γ3 (paper)
    simtier_top_k: bool = True
    simtier_recent: bool = True
    simtier_tier_width: float = 0.1
    mean_pool_top_k: bool = True
    mean_pool_recent: bool = True
    activation_unit_hidden: tuple[int, ...] = (64, 32)
    tower_hidden: tuple[int, ...] = (256, 128, 64)

    def __post_init__(self) -> None:
        if self.id_embedding_dim < 1:
            raise ValueError(f"id_embedding_dim must be ≥ 1, got {self.id_embedding_dim}")
        if self.recent_length < 0:
            raise ValueError(
                f"recent_length must be ≥ 0 (0 = whole history), got {self.recent_length}"
            )
        tiers = 1.0 / self.simtier_tier_width
        if self.simtier_tier_width <= 0 or abs(tiers - round(tiers)) > 1e-6:
            raise ValueError(
                f"simtier_tier_width must divide 1 evenly, got {self.simtier_tier_width}"
            )
        if self.search.kind is SearchKind.NONE:
            uses_top_k = [
                name
                for name, used in (
                    ("long_term_attention", self.long_term_attention is not LongTermAttention.NONE),
                    ("simtier_top_k", self.simtier_top_k),
                    ("mean_pool_top_k", self.mean_pool_top_k),
                )
                if used
            ]
            if uses_top_k:
                raise ValueError(
                    f"search.kind = 'none' selects no behaviours, but {uses_top_k} use them"
                )
        if (
            self.search.kind is SearchKind.SHARED_ATTENTION
            and self.long_term_attention is LongTermAttention.NONE
        ):
            raise ValueError(
                "search.kind = 'shared_attention' (TWIN) needs a long_term_attention to share"
            )
        if not (
            self.short_term_attention is not ShortTermAttention.NONE
            or self.long_term_attention is not LongTermAttention.NONE
            or self.simtier_top_k
            or self.simtier_recent
            or self.mean_pool_top_k
            or self.mean_pool_recent
        ):
            raise ValueError("the model uses no behaviour feature at all")

    @property
    def simtier_bins(self) -> int:
        """Number of SimTier bins: ceil(cos / width) + 1/width spans 0 … 2/width, plus one spare."""
        return 2 * round(1.0 / self.simtier_tier_width) + 2

    @property
    def uses_multimodal(self) -> bool:
        """Whether any stage reads the item multimodal embedding table."""
        return (
            self.search.kind in (SearchKind.MULTIMODAL_COSINE, SearchKind.SIMHASH)
            or self.long_term_attention is LongTermAttention.SIMILARITY_AWARE
            or self.simtier_top_k
            or self.simtier_recent
        )
