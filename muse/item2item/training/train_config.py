"""Configuration of an item-to-item (NoteLLM-2) training job: ``task = "item_to_item"`` and its tables.

``[model]`` is the :class:`ItemEncoderConfig`, ``[data]`` the pair dataset and its validation
share, ``[loss]`` the :class:`ContrastiveLossConfig`, ``[tokenizer]`` where the prompt's tokenizer
comes from and ``[training]`` the generic loop's settings plus ``recall_k``. Imports no torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from muse.core.task_kind import TaskKind
from muse.item2item.models.backbone_config import BackboneKind
from muse.item2item.models.item_encoder_config import ItemEncoderConfig
from muse.item2item.training.contrastive_loss import ContrastiveLossConfig
from muse.training.training_config import TrainingConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ItemDataConfig:
    """``[data]``: the pair dataset (``muse data synth-items`` output or the I2I input format).

    validation_fraction of the TRAIN pairs (a seeded draw) is held out for early stopping; the
    test pairs are scored once, at the end. Images are resized to ``model.vision.image_size`` and
    normalised per channel with image_mean / image_std (ImageNet's, as EfficientNet expects).
    """

    dataset: Path = Path("data/synth_items")
    validation_fraction: float = 0.1
    seed: int = 42
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    # Compute the frozen vision encoder's features once per item and reuse them (exact: it is
    # frozen and always in eval mode). Memory: items · (patches + 1) · width · 4 bytes, e.g.
    # 2,000 items at 64² with EfficientNet-Lite0 take 51 MB, at 224² 512 MB.
    cache_vision_features: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if len(self.image_mean) != 3 or len(self.image_std) != 3:
            raise ValueError("image_mean and image_std need one value per RGB channel")
        if min(self.image_std) <= 0:
            raise ValueError(f"image_std must be > 0, got {self.image_std}")


class TokenizerKind(enum.Enum):
    """Where the prompt's tokenizer comes from."""

    # Built in: one token per word or punctuation mark over the training catalogue's words (most
    # frequent first, capped at the random backbone's vocab_size); offline, for tests and tiny runs.
    WORD = "word"
    PRETRAINED = "pretrained"  # a tokenizer folder on disk (never downloaded)


@dataclass(frozen=True)
class TokenizerConfig:
    """``[tokenizer]``: kind = "pretrained" loads ``path`` (default: the backbone's own folder,
    ``model.backbone.path``, or the converted copy for backbone kind "smollm2")."""

    kind: TokenizerKind = TokenizerKind.WORD
    path: Path | None = None


@dataclass(frozen=True)
class ItemTrainingConfig(TrainingConfig):
    """The generic ``[training]`` settings plus the validation Recall@k early stopping maximises.

    ``batch_size`` counts pairs (2 × batch_size items per step, every other item a negative).
    """

    recall_k: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.recall_k < 1:
            raise ValueError(f"recall_k must be ≥ 1, got {self.recall_k}")


@dataclass(frozen=True)
class ItemTrainConfig:
    """A whole item-to-item training job: encoder, data, loss, tokenizer and optimisation."""

    task: TaskKind = TaskKind.ITEM_TO_ITEM
    name: str = "notellm2"  # names the default run directory runs/<name>
    model: ItemEncoderConfig = field(default_factory=ItemEncoderConfig)
    data: ItemDataConfig = field(default_factory=ItemDataConfig)
    loss: ContrastiveLossConfig = field(default_factory=ContrastiveLossConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    training: ItemTrainingConfig = field(default_factory=ItemTrainingConfig)

    def __post_init__(self) -> None:
        if self.task is not TaskKind.ITEM_TO_ITEM:
            raise ValueError(f"task must be 'item_to_item', got {self.task.value!r}")
        if not self.name:
            raise ValueError("name must not be empty")
        # A real LM's embedding rows mean its own tokenizer's ids, never the word tokenizer's.
        pretrained_backbone = self.model.backbone.kind in (
            BackboneKind.PRETRAINED,
            BackboneKind.SMOLLM2,
        )
        if self.tokenizer.kind is TokenizerKind.PRETRAINED:
            if self.tokenizer.path is None and not pretrained_backbone:
                raise ValueError("tokenizer.kind = 'pretrained' needs tokenizer.path")
        elif pretrained_backbone:
            raise ValueError(
                "a pretrained backbone needs its own tokenizer: set tokenizer.kind = 'pretrained'"
            )

    @property
    def tokenizer_path(self) -> Path | None:
        """The tokenizer folder of kind "pretrained" (its own path, else the backbone's folder)."""
        if self.tokenizer.kind is not TokenizerKind.PRETRAINED:
            return None
        return self.tokenizer.path or self.model.backbone.model_dir

    @property
    def run_directory(self) -> Path:
        """Where this job writes: ``training.output_dir``, else ``runs/<name>``."""
        return self.training.output_dir or Path("runs") / self.name
