"""The item-to-item test report: Recall@k overall and by link kind, beside the oracle's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from muse.item2item.training.pair_retrieval import ALL_LINKS

RecallByKind = dict[str, dict[int, float]]  # {link kind or "all": {k: recall}}


def recall_logs(recall: RecallByKind, prefix: str = "") -> dict[str, float]:
    """Flat names: ``recall@k`` over every query, ``recall@k/<kind>`` per link kind."""
    logs = {}
    for kind, by_k in recall.items():
        suffix = "" if kind == ALL_LINKS else f"/{kind}"
        for k, value in by_k.items():
            logs[f"{prefix}recall@{k}{suffix}"] = float(value)
    return logs


@dataclass(frozen=True)
class ItemPairReport:
    """Test Recall@k of the best-validation encoder on the test pairs (NoteLLM's protocol).

    recall: {kind: {k: recall}} with "all" over every query. oracle: the same for the dataset's
    ground-truth item vectors (synthetic catalogues), else None. queries: test queries scored.
    """

    model: str
    dataset: str
    recall: RecallByKind
    oracle: RecallByKind | None
    queries: int

    def scalars(self) -> dict[str, float]:
        scalars = recall_logs(self.recall)
        if self.oracle is not None:
            scalars.update(recall_logs(self.oracle, "oracle_"))
        return scalars

    def as_dict(self) -> dict[str, Any]:
        def table(recall: RecallByKind) -> dict[str, dict[str, float]]:
            return {kind: {str(k): v for k, v in by_k.items()} for kind, by_k in recall.items()}

        return {
            "model": self.model,
            "dataset": self.dataset,
            "test_queries": self.queries,
            "test": table(self.recall),
            "oracle": table(self.oracle) if self.oracle is not None else None,
        }
