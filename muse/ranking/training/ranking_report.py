"""The ranking task's final report: exact test metrics and, on synthetic data, the oracle's."""

from __future__ import annotations

from typing import Any, NamedTuple

from muse.ranking.training.evaluation import Metrics


class RankingReport(NamedTuple):
    """test: metrics of the best-validation weights on the whole test split. oracle: the metrics
    of the dataset's true click probabilities, when it has them (synthetic data), else None."""

    model: str
    dataset: str
    test: Metrics
    oracle: Metrics | None

    def scalars(self) -> dict[str, float]:
        """AUC, GAUC and logloss, for TensorBoard."""
        return {"auc": self.test.auc, "gauc": self.test.gauc, "logloss": self.test.logloss}

    def as_dict(self) -> dict[str, Any]:
        """The model, dataset and split, the test metrics and the oracle's, for metrics.json."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "split": "test",
            **self.test.as_dict(),
            "oracle": self.oracle.as_dict() if self.oracle is not None else None,
        }
