"""Configuration of the second stage (ESU), the ``[model.esu]`` tables of a ranking TOML.

The ESU turns the searched top-K and the N most recent behaviours into features for the CTR
tower. Each part below is switched on by its own table; the enums pick module classes. Rules that
span both stages (a search that keeps nothing vs. parts that read the top-K) live in
``RankingModelConfig``. Imports no torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class AttentionVariant(enum.Enum):
    """Target attention as the official code computes it, or as the paper writes it."""

    CODE = "code"  # SiLU-gated q/k/v, dot without √D; SA-TA: b1·dot + b2·cos/a1 + b3·dot·cos/a1
    PAPER = "paper"  # plain linear q/k/v, dot scaled by 1/√D; SA-TA: γ1·α_ID + γ2·R + γ3·α_ID⊙R


class ShortTermAttentionKind(enum.Enum):
    """Target attention over the N most recent behaviours."""

    NONE = "none"
    TARGET = "target"  # MUSE's short-term path: ID target attention (q·k softmax)
    ACTIVATION_UNIT = "activation_unit"  # DIN: MLP over [q, k, q−k, q⊙k]


class LongTermAttentionKind(enum.Enum):
    """How the ESU attends over the K searched behaviours."""

    NONE = "none"
    TARGET = "target"  # ID-only dot-product target attention
    SIMILARITY_AWARE = "similarity_aware"  # SA-TA: ID attention fused with the MM cosine


@dataclass(frozen=True)
class ShortTermAttentionConfig:
    """``[model.esu.short_term]``: attention over the recent window; reads no cosine."""

    kind: ShortTermAttentionKind = ShortTermAttentionKind.TARGET
    variant: AttentionVariant = AttentionVariant.CODE  # used by kind = "target"
    activation_unit_hidden: tuple[int, ...] = (64, 32)  # used by kind = "activation_unit"

    def __post_init__(self) -> None:
        if self.kind is ShortTermAttentionKind.ACTIVATION_UNIT and not self.activation_unit_hidden:
            raise ValueError("activation_unit_hidden needs at least one hidden layer")
        if any(size < 1 for size in self.activation_unit_hidden):
            raise ValueError(
                f"activation_unit_hidden sizes must be ≥ 1, got {self.activation_unit_hidden}"
            )


@dataclass(frozen=True)
class LongTermAttentionConfig:
    """``[model.esu.long_term]``: attention over the searched top-K (SA-TA in MUSE)."""

    kind: LongTermAttentionKind = LongTermAttentionKind.SIMILARITY_AWARE
    variant: AttentionVariant = AttentionVariant.CODE
    temperature_init: float = 0.1  # SA-TA code variant: a1 in cos / a1
    fusion_init: float = 1.0  # SA-TA: b1..b3 (code) or γ1..γ3 (paper)

    @property
    def reads_cosines(self) -> bool:
        """Whether this attention fuses the MM cosines of the top-K into its logits."""
        return self.kind is LongTermAttentionKind.SIMILARITY_AWARE


@dataclass(frozen=True)
class SimTierConfig:
    """``[model.esu.simtier]``: histograms of the cosines of the top-K and/or the recent window."""

    top_k: bool = True
    recent: bool = True
    tier_width: float = 0.1

    def __post_init__(self) -> None:
        tiers = 1.0 / self.tier_width if self.tier_width > 0 else 0.0
        if self.tier_width <= 0 or abs(tiers - round(tiers)) > 1e-6:
            raise ValueError(f"tier_width must divide 1 evenly, got {self.tier_width}")


@dataclass(frozen=True)
class MeanPoolConfig:
    """``[model.esu.mean_pool]``: plain means of the top-K and/or the recent ID embeddings."""

    top_k: bool = True
    recent: bool = True


@dataclass(frozen=True)
class EsuConfig:
    """``[model.esu]``: which parts the ESU concatenates for the tower (MUSE: all of them)."""

    short_term: ShortTermAttentionConfig = field(default_factory=ShortTermAttentionConfig)
    long_term: LongTermAttentionConfig = field(default_factory=LongTermAttentionConfig)
    simtier: SimTierConfig = field(default_factory=SimTierConfig)
    mean_pool: MeanPoolConfig = field(default_factory=MeanPoolConfig)

    def __post_init__(self) -> None:
        if not (
            self.short_term.kind is not ShortTermAttentionKind.NONE
            or self.simtier.recent
            or self.mean_pool.recent
            or self.top_k_readers
        ):
            raise ValueError("the model uses no behaviour feature at all")

    @property
    def top_k_readers(self) -> tuple[str, ...]:
        """Config keys of the parts that read the searched top-K, e.g. ``esu.simtier.top_k``."""
        used = (
            ("esu.long_term.kind", self.long_term.kind is not LongTermAttentionKind.NONE),
            ("esu.simtier.top_k", self.simtier.top_k),
            ("esu.mean_pool.top_k", self.mean_pool.top_k),
        )
        return tuple(name for name, reads in used if reads)

    @property
    def reads_selected_behaviours(self) -> bool:
        """Whether any part reads the searched top-K (their IDs, cosines or mask)."""
        return bool(self.top_k_readers)

    @property
    def reads_selected_cosines(self) -> bool:
        """Whether the ESU reads ``selected_cosines`` (SA-TA or SimTier over the top-K)."""
        return self.long_term.reads_cosines or self.simtier.top_k

    @property
    def reads_recent_cosines(self) -> bool:
        """Whether the ESU reads ``recent_cosines`` (SimTier over the recent window)."""
        return self.simtier.recent
