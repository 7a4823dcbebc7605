"""Figures of conversational retrieval: MRR, nDCG@1, nDCG@10, Recall@10 per method, at the last
user turn, over every turn, and turn by turn. Torch-free."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from muse.core.retrieval_metrics import mean_reciprocal_rank, ndcg_at_k, recall_at_k

METRICS = ("mrr", "ndcg@1", "ndcg@10", "recall@10")
# Methods in report order: the retriever alone, with TTR, and the two baselines.
GENERATIVE = "generative"
GENERATIVE_TTR = "generative_ttr"
DENSE = "dense"
BM25 = "bm25"
METHODS = (GENERATIVE, GENERATIVE_TTR, DENSE, BM25)


def ranking_figures(ranked_rows: np.ndarray, target_rows: np.ndarray) -> dict[str, float]:
    """The four metrics of ranked lists (Q, K) of catalogue rows against one target row each."""
    relevant = [np.array([target]) for target in np.asarray(target_rows).tolist()]
    if not relevant:
        return dict.fromkeys(METRICS, float("nan"))
    return {
        "mrr": mean_reciprocal_rank(ranked_rows, relevant),
        "ndcg@1": ndcg_at_k(ranked_rows, relevant, 1),
        "ndcg@10": ndcg_at_k(ranked_rows, relevant, 10),
        "recall@10": recall_at_k(ranked_rows, relevant, 10),
    }


class MethodFigures(NamedTuple):
    """One method's figures: at the last user turn, over every turn's example, and per turn."""

    last_turn: dict[str, float]
    every_turn: dict[str, float]
    by_turn: dict[int, dict[str, float]]
    list_length: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "last_turn": self.last_turn,
            "every_turn": self.every_turn,
            "by_turn": {str(turn): figures for turn, figures in self.by_turn.items()},
            "list_length": self.list_length,
        }


def method_figures(
    ranked_rows: np.ndarray, target_rows: np.ndarray, turn: np.ndarray, last: np.ndarray
) -> MethodFigures:
    """Figures of one method's ranked lists (Q, K) over examples with their turn numbers (Q,)
    and last-turn flags (Q,)."""
    by_turn = {
        int(number): ranking_figures(ranked_rows[turn == number], target_rows[turn == number])
        for number in np.unique(turn).tolist()
    }
    return MethodFigures(
        last_turn=ranking_figures(ranked_rows[last], target_rows[last]),
        every_turn=ranking_figures(ranked_rows, target_rows),
        by_turn=by_turn,
        list_length=int(ranked_rows.shape[1]),
    )


class ConversationalReport(NamedTuple):
    """The test report: every method's figures, the beams and α used, and example counts."""

    model: str
    dialogues: int
    examples: int
    beams: int
    alpha: float
    methods: dict[str, MethodFigures]
    seconds_per_query: dict[str, float]

    def scalars(self) -> dict[str, float]:
        return {
            f"{method}/{name}": value
            for method, figures in self.methods.items()
            for name, value in figures.last_turn.items()
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dialogues": self.dialogues,
            "examples": self.examples,
            "beams": self.beams,
            "alpha": self.alpha,
            "methods": {name: figures.as_dict() for name, figures in self.methods.items()},
            "seconds_per_query": self.seconds_per_query,
        }
