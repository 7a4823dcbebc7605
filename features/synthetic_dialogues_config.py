"""Configuration of the synthetic dialogues (see docs/synthetic-data.md, "Synthetic dialogues")."""

from __future__ import annotations

from dataclasses import dataclass, field

# The kinds of user turn, in the order of TurnKindConfig.shares().
TURN_KINDS = ("words", "picture", "rejection", "drift")
# Dialogues longer than this would run out of attributes to reveal.
MAX_USER_TURNS = 8


@dataclass(frozen=True)
class TurnKindConfig:
    """The mixture of user-turn kinds (normalised); the first user turn is words or picture."""

    # State attributes in words ("I'm looking for a leather mug").
    words_share: float = 0.4
    # Show a reference picture ("like this one"): the image-only attributes come through it.
    picture_share: float = 0.25
    # Reject the assistant's recommendation, naming what is wrong ("no, not Kadu").
    rejection_share: float = 0.2
    # Replace an earlier stated value ("actually, make it wool instead of cotton").
    drift_share: float = 0.15

    def __post_init__(self) -> None:
        for name, share in zip(TURN_KINDS, self.shares(), strict=True):
            if share < 0:
                raise ValueError(f"{name}_share must be >= 0")
        if sum(self.shares()) <= 0:
            raise ValueError("turn kind shares must have a positive sum")
        if self.words_share + self.picture_share <= 0:
            raise ValueError("words_share + picture_share must be > 0 (the first user turn is one)")

    def shares(self) -> tuple[float, float, float, float]:
        """Shares in TURN_KINDS order (words, picture, rejection, drift)."""
        return (self.words_share, self.picture_share, self.rejection_share, self.drift_share)


@dataclass(frozen=True)
class SyntheticDialoguesConfig:
    """Synthetic dialogues over a `muse data synth-items` catalogue."""

    seed: int = 42
    # Dialogues per split; each dialogue draws its target and turns from its own random stream.
    train_dialogues: int = 4_000
    validation_dialogues: int = 400
    test_dialogues: int = 400
    # User turns per dialogue, uniform in [min_user_turns, max_user_turns].
    min_user_turns: int = 2
    max_user_turns: int = 6
    # Share of picture turns whose reference item differs from the target in one image attribute
    # that the text then names ("like this one, but in red"), where the catalogue has such an item.
    picture_variant_share: float = 0.5
    # Share of rejections that name the recommended item's wrong value ("no, not Kadu") instead
    # of the wanted one ("not that one, I want it in cotton").
    negative_rejection_share: float = 0.3
    turn_kinds: TurnKindConfig = field(default_factory=TurnKindConfig)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        for name in ("train_dialogues", "validation_dialogues", "test_dialogues"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 1 <= self.min_user_turns <= MAX_USER_TURNS:
            raise ValueError(f"min_user_turns must be in [1, {MAX_USER_TURNS}]")
        if not self.min_user_turns <= self.max_user_turns <= MAX_USER_TURNS:
            raise ValueError(f"max_user_turns must be in [min_user_turns, {MAX_USER_TURNS}]")
        for name in ("picture_variant_share", "negative_rejection_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")

    def split_sizes(self) -> dict[str, int]:
        """Split name → number of dialogues, in writing order."""
        return {
            "train": self.train_dialogues,
            "validation": self.validation_dialogues,
            "test": self.test_dialogues,
        }
