"""Test Recall@k of a trained item encoder on any pair dataset (``muse i2i evaluate``).

The same protocol and figures as the end of training (NoteLLM's: queries from the test pairs,
pool = test items minus queries, by link kind, beside the dataset's oracle when it has one), on
the run's own dataset or another one in the item-to-item input format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from features.item_catalogue import read_item_pair_dataset
from features.multimodal_catalogue import ORACLE_FILE, ORACLE_IDS_FILE
from muse.item2item.training.item_embeddings import embed_rows, load_trained_encoder
from muse.item2item.training.item_inputs import ItemInputs
from muse.item2item.training.item_pair_report import ItemPairReport
from muse.item2item.training.pair_retrieval import DEFAULT_KS, pair_queries, pair_retrieval_recall


def evaluate_checkpoint(
    checkpoint: str | Path,
    dataset: str | Path | None = None,
    batch_size: int = 256,
    device: torch.device | None = None,
) -> ItemPairReport:
    """Recall@1/10/100/1000 (and the run's recall_k) of ``checkpoint`` on ``dataset``'s test pairs.

    ``dataset`` defaults to the run's own ``data.dataset``.
    """
    trained = load_trained_encoder(checkpoint)
    config = trained.config
    directory = Path(dataset) if dataset is not None else Path(config.data.dataset)
    data = read_item_pair_dataset(directory)
    test = data.test
    inputs = ItemInputs(
        data.items, trained.prompt, config.model, config.data.image_mean, config.data.image_std
    )
    rows = np.unique(np.concatenate([test.row_a, test.row_b]))
    encoder = trained.encoder.to(device or torch.device("cpu"))
    embeddings = embed_rows(encoder, inputs, rows, batch_size, device or torch.device("cpu"))
    ids = data.items.item_ids[rows].astype(np.int64)
    kinds = np.asarray(test.link_kind, dtype=object) if test.link_kind is not None else None
    ks = tuple(sorted({*DEFAULT_KS, config.training.recall_k}))
    recall = pair_retrieval_recall(ids, embeddings, test.item_id_a, test.item_id_b, kinds, ks)
    oracle = None
    if (directory / ORACLE_FILE).is_file() and (directory / ORACLE_IDS_FILE).is_file():
        oracle = pair_retrieval_recall(
            np.load(directory / ORACLE_IDS_FILE),
            np.load(directory / ORACLE_FILE),
            test.item_id_a,
            test.item_id_b,
            kinds,
            ks,
        )
    queries, _ = pair_queries(test.item_id_a, test.item_id_b, kinds)
    return ItemPairReport(
        model=config.name,
        dataset=str(directory),
        recall=recall,
        oracle=oracle,
        queries=int(np.unique(queries.query_ids).size),
    )
