"""Item-to-item (NoteLLM-2) training as the generic loop drives it (a ``TrainingTask``).

A training row is one co-engaged pair of the TRAIN pairs; a seeded ``data.validation_fraction`` of
them is held out and scored by Recall@k (NoteLLM's protocol) for early stopping. The test pairs,
whose items training never sees, are scored once with the best validation weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from features.item_catalogue import ItemPairs, read_item_pair_dataset
from features.multimodal_catalogue import ORACLE_FILE, ORACLE_IDS_FILE
from muse.core.config_loader import config_to_dict
from muse.item2item.models.vision_encoder import VisionEncoder
from muse.item2item.training.item_embeddings import embed_rows
from muse.item2item.training.item_inputs import (
    ItemInputs,
    ItemPairBatch,
    build_prompt,
    item_batch_to,
)
from muse.item2item.training.item_pair_model import ItemPairModel, encoder_of, logit_scale_of
from muse.item2item.training.item_pair_report import ItemPairReport, RecallByKind, recall_logs
from muse.item2item.training.pair_retrieval import (
    ALL_LINKS,
    DEFAULT_KS,
    pair_queries,
    pair_retrieval_recall,
)
from muse.item2item.training.train_config import ItemTrainConfig
from muse.training.distributed import DistributedContext
from muse.training.training_task import Evaluation


class PairSplit:
    """Pairs as parallel arrays: catalogue rows and ids of each side, weights and link kinds."""

    def __init__(self, pairs: ItemPairs, chosen: np.ndarray) -> None:
        self.row_a = pairs.row_a[chosen]
        self.row_b = pairs.row_b[chosen]
        self.id_a = pairs.item_id_a[chosen]
        self.id_b = pairs.item_id_b[chosen]
        self.weight = pairs.weight[chosen].astype(np.float32)
        self.link_kind = (
            np.asarray(pairs.link_kind, dtype=object)[chosen]
            if pairs.link_kind is not None
            else None
        )

    def __len__(self) -> int:
        return int(self.row_a.size)


def split_pairs(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) pair indices, both sorted: a seeded ``fraction`` of ``count`` held out
    (at least one pair each side)."""
    if count < 2:
        raise ValueError(f"need at least 2 train pairs to hold out validation, got {count}")
    held = min(max(int(round(count * fraction)), 1), count - 1)
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[held:]), np.sort(order[:held])


class ItemPairTask:
    """The encoder, pair batches, NT-Xent loss and Recall@k of one item-to-item training job."""

    def __init__(self, config: ItemTrainConfig) -> None:
        self.config = config
        self.dataset = read_item_pair_dataset(config.data.dataset)
        self.prompt = build_prompt(config, self.dataset.items)
        data = config.data
        self.inputs = ItemInputs(
            self.dataset.items, self.prompt, config.model, data.image_mean, data.image_std
        )
        train = self.dataset.train
        fit, validation = split_pairs(len(train), data.validation_fraction, data.seed)
        self.fit = PairSplit(train, fit)
        self.validation = PairSplit(train, validation)
        self.test_pairs = PairSplit(self.dataset.test, np.arange(len(self.dataset.test)))

    def run_config(self) -> dict[str, Any]:
        return config_to_dict(self.config)

    def build_model(self) -> nn.Module:
        model = ItemPairModel(self.config)
        vision = getattr(model.encoder, "vision", None)
        if self.config.data.cache_vision_features and isinstance(vision, VisionEncoder):
            self.inputs.cache_vision_features(vision, self.config.training.evaluation_batch_size)
        return model

    def num_train_rows(self) -> int:
        return len(self.fit)

    def train_batch(self, rows: np.ndarray) -> ItemPairBatch:
        """The ItemPairBatch of fitting pairs ``rows`` (N,)."""
        fit = self.fit
        return self.inputs.pairs(fit.row_a[rows], fit.row_b[rows], fit.weight[rows])

    def loss(self, model: nn.Module, batch: ItemPairBatch, device: torch.device) -> torch.Tensor:
        """NT-Xent over the batch's 2N items: multimodal 0.9 + visual 0.1 (visual with mICL only)."""
        batch = ItemPairBatch(
            item_batch_to(batch.side_a, device),
            item_batch_to(batch.side_b, device),
            batch.weights.to(device),
        )
        parts = model(batch)
        total: torch.Tensor = parts.total
        return total

    def validate(self, model: nn.Module, context: DistributedContext, progress: bool) -> Evaluation:
        """Recall@k (k in 1, 10, 100, 1000 and ``recall_k``) on the validation pairs; the score is
        Recall@``training.recall_k`` over every query."""
        recall = self._recall(model, self.validation, context)
        k = self.config.training.recall_k
        logs = recall_logs(recall)
        logs["logit_scale"] = logit_scale_of(model)
        return Evaluation(score=recall[ALL_LINKS][k], logs=logs)

    def test(self, model: nn.Module, context: DistributedContext, progress: bool) -> ItemPairReport:
        """Recall@1/10/100/1000 on the test pairs, overall and by link kind, and the oracle's."""
        test = self.test_pairs
        queries, _ = pair_queries(test.id_a, test.id_b, test.link_kind)
        return ItemPairReport(
            model=self.config.name,
            dataset=str(self.config.data.dataset),
            recall=self._recall(model, test, context),
            oracle=self._oracle_recall(test),
            queries=int(np.unique(queries.query_ids).size),
        )

    def _ks(self) -> tuple[int, ...]:
        return tuple(sorted({*DEFAULT_KS, self.config.training.recall_k}))

    def _recall(
        self, model: nn.Module, pairs: PairSplit, context: DistributedContext
    ) -> RecallByKind:
        """Every item of ``pairs`` embedded once (eval mode, no grad), then exact Recall@k.

        Every rank computes the same figures from the same weights.
        """
        ids, first = np.unique(np.concatenate([pairs.id_a, pairs.id_b]), return_index=True)
        rows = np.concatenate([pairs.row_a, pairs.row_b])[first]
        embeddings = embed_rows(
            encoder_of(model),
            self.inputs,
            rows,
            self.config.training.evaluation_batch_size,
            context.device,
        )
        return pair_retrieval_recall(
            ids, embeddings, pairs.id_a, pairs.id_b, pairs.link_kind, self._ks()
        )

    def _oracle_recall(self, pairs: PairSplit) -> RecallByKind | None:
        directory = Path(self.config.data.dataset)
        if not (directory / ORACLE_FILE).is_file() or not (directory / ORACLE_IDS_FILE).is_file():
            return None
        return pair_retrieval_recall(
            np.load(directory / ORACLE_IDS_FILE),
            np.load(directory / ORACLE_FILE),
            pairs.id_a,
            pairs.id_b,
            pairs.link_kind,
            self._ks(),
        )
