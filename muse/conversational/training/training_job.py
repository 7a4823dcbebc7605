"""``train(config)``: a conversational training job, run by the generic loop of :mod:`muse.training`.

Run directory: ``config.toml`` (resolved config), ``metrics.json`` (the test report: every method
at the last user turn, over every turn and per turn; the α used; validation history),
``checkpoints/last.pt`` (resume point) and ``best.pt`` (best validation TTR MRR; ``muse conv
evaluate`` reads it), ``tensorboard/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from muse.conversational.training.conversation_report import (
    BM25,
    DENSE,
    GENERATIVE,
    GENERATIVE_TTR,
    ConversationalReport,
)
from muse.conversational.training.conversational_task import ConversationalTask
from muse.conversational.training.train_config import ConversationalTrainConfig
from muse.training.trainer import train_task


@dataclass(frozen=True)
class ConversationalTrainResult:
    """What a finished run returns: the test report of the best-validation weights and the
    run's figures; model is the ConversationalModel with the best weights loaded."""

    run_dir: Path
    test: ConversationalReport
    validation: dict[str, float] | None
    epochs: int
    best_epoch: int
    steps: int
    samples_per_second: float
    model: nn.Module

    def summary(self) -> str:
        """One line per method: last-turn MRR and nDCG@1 on the test dialogues."""
        methods = self.test.methods
        figures = "; ".join(
            f"{name} MRR {methods[name].last_turn['mrr']:.3f} nDCG@1 "
            f"{methods[name].last_turn['ndcg@1']:.3f}"
            for name in (GENERATIVE, GENERATIVE_TTR, DENSE, BM25)
            if name in methods
        )
        return (
            f"{self.test.model}: test (last turn, {self.test.beams} beams, α {self.test.alpha:.2f}) "
            f"{figures}; {self.epochs} epoch(s), best {self.best_epoch}; "
            f"{self.samples_per_second:,.0f} train queries/s; metrics in {self.run_dir / 'metrics.json'}"
        )


def train(
    config: ConversationalTrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> ConversationalTrainResult:
    """Train ``config``'s retriever and encoder on its dialogues; see the module docstring."""
    task = ConversationalTask(config, progress)
    outcome = train_task(task, config.training, run_dir or config.run_directory, resume, progress)
    return ConversationalTrainResult(
        run_dir=outcome.run_dir,
        test=outcome.test,
        validation=outcome.validation,
        epochs=outcome.epochs,
        best_epoch=outcome.best_epoch,
        steps=outcome.steps,
        samples_per_second=outcome.samples_per_second,
        model=outcome.model,
    )
