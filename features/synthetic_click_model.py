"""The true click probability of the synthetic benchmark (formula in docs/synthetic-data.md).

    logit = intercept
          + long_term_weight  · log(1 + Σ_{all visible behaviours j} match(cos(target, j)))
          + short_term_weight · log(1 + Σ_{most recent R behaviours j} match(cos(target, j)))
          + popularity_weight · standardised log popularity(target)
          + user bias(profile) + affinity(profile column 130_1, category(target))

match(s) = clip((s - low) / (high - low), 0, 1) is a soft count of behaviours that look like the
target. Cosines are taken between the stored int8 embeddings (restored, L2-normalised), so the
probability is a function of exactly what a model can see, and the long-term term of a function
of the target-vs-history cosines, which a cosine top-K search and a similarity histogram recover.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from features.synthetic_config import ClickModelConfig


class MatchCounts(NamedTuple):
    """Soft counts of history behaviours that match each target; arrays shaped like the targets."""

    whole_history: np.ndarray
    recent: np.ndarray


class ClickModel:
    """Holds the click model's random tables; the intercept is calibrated after construction."""

    def __init__(
        self,
        config: ClickModelConfig,
        profile_cardinalities: tuple[int, ...],
        num_categories: int,
        rng: np.random.Generator,
    ) -> None:
        self.config = config
        scale = config.profile_weight / np.sqrt(len(profile_cardinalities))
        self.profile_effects = [rng.standard_normal(size) * scale for size in profile_cardinalities]
        self.profile_category_affinity = (
            rng.standard_normal((profile_cardinalities[0], num_categories))
            * config.profile_category_weight
        )
        self.intercept = 0.0

    def match(self, cosines: np.ndarray) -> np.ndarray:
        """Soft match of each cosine (ramp from similarity_low to similarity_high), float32."""
        low, high = self.config.similarity_low, self.config.similarity_high
        scaled = (cosines - np.float32(low)) * np.float32(1.0 / (high - low))
        return np.clip(scaled, 0.0, 1.0, out=scaled)

    def match_counts(self, cosines: np.ndarray) -> MatchCounts:
        """Soft counts from cosines of shape (..., L) against a history oldest first."""
        matches = self.match(cosines)
        length = matches.shape[-1]
        recent = min(self.config.short_term_recent, length)
        return MatchCounts(
            whole_history=matches.sum(axis=-1, dtype=np.float64),
            recent=matches[..., length - recent :].sum(axis=-1, dtype=np.float64),
        )

    def user_bias(self, profiles: np.ndarray) -> np.ndarray:
        """(U,) bias of users with profile value indices ``profiles`` (U, 5)."""
        return sum(
            (effects[profiles[:, column]] for column, effects in enumerate(self.profile_effects)),
            np.zeros(profiles.shape[0]),
        )

    def logits_without_intercept(
        self,
        counts: MatchCounts,
        popularity_score: np.ndarray,
        user_bias: np.ndarray,
        first_profile: np.ndarray,
        target_category: np.ndarray,
    ) -> np.ndarray:
        """Click logits minus the intercept; every argument is shaped like the targets."""
        config = self.config
        return (
            config.long_term_weight * np.log1p(counts.whole_history)
            + config.short_term_weight * np.log1p(counts.recent)
            + config.popularity_weight * popularity_score
            + user_bias
            + self.profile_category_affinity[first_profile, target_category]
        )

    def probability(self, logits_without_intercept: np.ndarray) -> np.ndarray:
        """True click probability."""
        return _sigmoid(logits_without_intercept + self.intercept)

    def calibrate(self, logits_without_intercept: np.ndarray) -> float:
        """Set the intercept so that the mean probability equals the target positive rate."""
        low, high = -30.0, 30.0
        for _ in range(100):
            middle = 0.5 * (low + high)
            if _sigmoid(logits_without_intercept + middle).mean() < self.config.positive_rate:
                low = middle
            else:
                high = middle
        self.intercept = 0.5 * (low + high)
        return self.intercept


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
