"""Configuration of a conversational training job: ``task = "conversational"`` and its tables.

One job trains two models on the same dialogues, in one loop and one checkpoint: the generative
retriever (``[retriever]``, T5 from scratch: query → semantic ID) and the NoteLLM-2 encoder that
test-time reranking and the dense baseline read (``[encoder]``: rewritten query ↔ target item,
in-batch NT-Xent). ``[rewriter]`` turns each dialogue into its query, ``[reranker]`` rescores the
beams. Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from muse.conversational.models.generative_retriever_config import GenerativeRetrieverConfig
from muse.conversational.models.query_rewriter_config import QueryRewriterConfig
from muse.conversational.models.reranker_config import RerankerConfig
from muse.core.task_kind import TaskKind
from muse.item2item.models.item_encoder_config import ItemEncoderConfig
from muse.item2item.training.contrastive_loss import ContrastiveLossConfig
from muse.item2item.training.train_config import IMAGENET_MEAN, IMAGENET_STD
from muse.training.training_config import TrainingConfig

DEFAULT_KS = (1, 10)


@dataclass(frozen=True)
class ConversationDataConfig:
    """``[data]``: the catalogue (item-to-item format), its dialogues and its semantic IDs.

    every_turn: train on the dialogue so far at each user turn (else at the last one only); the
    target is the dialogue's item throughout. Evaluation reads the last turn, and every turn.
    """

    catalogue: Path = Path("data/synth_items")
    dialogues: Path = Path("data/synth_dialogues")
    semantic_ids: Path = Path("runs/conversational_ids")
    every_turn: bool = True
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    seed: int = 42

    def __post_init__(self) -> None:
        if min(self.image_std) <= 0:
            raise ValueError(f"data.image_std must be > 0, got {self.image_std}")


@dataclass(frozen=True)
class ConversationalTrainingConfig(TrainingConfig):
    """The generic ``[training]`` settings plus the weight of the encoder's loss beside the
    retriever's cross-entropy, and how many validation dialogues early stopping scores (0: all)."""

    encoder_loss_weight: float = 1.0
    validation_dialogues: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.encoder_loss_weight < 0:
            raise ValueError(f"encoder_loss_weight must be ≥ 0, got {self.encoder_loss_weight}")
        if self.validation_dialogues < 0:
            raise ValueError(f"validation_dialogues must be ≥ 0, got {self.validation_dialogues}")


def _conversational_loss() -> ContrastiveLossConfig:
    # A query without a picture has no visual embedding worth pulling: multimodal NT-Xent only.
    return ContrastiveLossConfig(multimodal_weight=1.0, visual_weight=0.0)


@dataclass(frozen=True)
class ConversationalTrainConfig:
    """A whole conversational job: retriever, encoder, rewriter, reranker, data and optimisation."""

    task: TaskKind = TaskKind.CONVERSATIONAL
    name: str = "conversational"  # names the default run directory runs/<name>
    retriever: GenerativeRetrieverConfig = field(default_factory=GenerativeRetrieverConfig)
    encoder: ItemEncoderConfig = field(default_factory=ItemEncoderConfig)
    loss: ContrastiveLossConfig = field(default_factory=_conversational_loss)
    rewriter: QueryRewriterConfig = field(default_factory=QueryRewriterConfig)
    reranker: RerankerConfig = field(default_factory=RerankerConfig)
    data: ConversationDataConfig = field(default_factory=ConversationDataConfig)
    training: ConversationalTrainingConfig = field(default_factory=ConversationalTrainingConfig)

    def __post_init__(self) -> None:
        if self.task is not TaskKind.CONVERSATIONAL:
            raise ValueError(f"task must be 'conversational', got {self.task.value!r}")
        if not self.name:
            raise ValueError("name must not be empty")

    @property
    def run_directory(self) -> Path:
        """Where this job writes: ``training.output_dir``, else ``runs/<name>``."""
        return self.training.output_dir or Path("runs") / self.name
