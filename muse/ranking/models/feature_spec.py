"""Vocabulary sizes and widths a ranking model is built for, read from a dataset (not configs)."""

from __future__ import annotations

from dataclasses import dataclass

from features.dataset import Dataset


@dataclass(frozen=True)
class FeatureSpec:
    """Rows of each ID embedding table (ids + padding + OOV) and the MM embedding width.

    ``item_attributes`` and ``profile_features`` keep the dataset's order, which is the column
    order of ``RankingBatch.target_attributes`` and ``RankingBatch.user_profile``.
    """

    item_vocabulary_size: int
    category_vocabulary_size: int
    item_attributes: tuple[tuple[str, int], ...] = ()
    profile_features: tuple[tuple[str, int], ...] = ()
    multimodal_dim: int = 128

    def __post_init__(self) -> None:
        sizes = [self.item_vocabulary_size, self.category_vocabulary_size]
        sizes += [size for _, size in self.item_attributes + self.profile_features]
        if min(sizes) < 2:
            raise ValueError("every vocabulary needs at least the padding and OOV rows (size ≥ 2)")
        names = [name for name, _ in self.item_attributes + self.profile_features]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be distinct, got {names}")

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> FeatureSpec:
        """Sizes of ``dataset``'s vocabularies; features are named as its manifest lists them."""
        return cls(
            item_vocabulary_size=dataset.vocabulary_size("item"),
            category_vocabulary_size=dataset.vocabulary_size("category"),
            item_attributes=tuple(
                (name, dataset.vocabulary_size(name)) for name in dataset.item_attributes
            ),
            profile_features=tuple(
                (name, dataset.vocabulary_size(name)) for name in dataset.profile_features
            ),
            multimodal_dim=dataset.embedding_dim,
        )
