"""Plain per-row reference for :class:`muse.ranking.training.batch_builder.BatchBuilder` (tests compare them)."""

from __future__ import annotations

import numpy as np
import torch

from features.dataset import Dataset
from muse.core.ids import OOV_INDEX, PADDING_INDEX
from muse.ranking.batch import RankingBatch
from muse.ranking.training.sample_table import SampleTable


def reference_batch(
    dataset: Dataset, samples: SampleTable, rows: np.ndarray, max_history_length: int
) -> RankingBatch:
    """One Python loop per sample: slice the user's visible history, keep the last L, pad left."""
    item_rows = {row["item_index"]: row for row in dataset.items().iter_rows(named=True)}
    users = dataset.users()
    attribute_columns = [f"{name}_index" for name in dataset.item_attributes]
    profile_columns = [
        name if name in users.columns else f"profile_{name}" for name in dataset.profile_features
    ]
    batch: dict[str, list] = {name: [] for name in RankingBatch._fields}
    for row in rows:
        user = int(samples.user_index[row])
        target = int(samples.item_index[row])
        visible_items, visible_categories = dataset.history(
            user, max(int(samples.history_end[row]), 0)
        )
        kept_items = [int(item) for item in visible_items][-max_history_length:]
        kept_categories = [int(category) for category in visible_categories][-max_history_length:]
        padding = [PADDING_INDEX] * (max_history_length - len(kept_items))
        missing = PADDING_INDEX if target == PADDING_INDEX else OOV_INDEX
        item_row = item_rows.get(target)
        user_row = users.row(user, named=True)
        batch["user_profile"].append([user_row[column] for column in profile_columns])
        batch["target_item"].append(target)
        batch["target_category"].append(item_row["category_index"] if item_row else missing)
        batch["target_attributes"].append(
            [item_row[c] if item_row else missing for c in attribute_columns]
        )
        batch["history_items"].append(padding + kept_items)
        batch["history_categories"].append(padding + kept_categories)
        batch["history_length"].append(len(kept_items))
        batch["label"].append(float(samples.label[row]))
    size = len(rows)
    return RankingBatch(
        user_profile=torch.tensor(batch["user_profile"], dtype=torch.int64).reshape(
            size, len(profile_columns)
        ),
        target_item=torch.tensor(batch["target_item"], dtype=torch.int64),
        target_category=torch.tensor(batch["target_category"], dtype=torch.int64),
        target_attributes=torch.tensor(batch["target_attributes"], dtype=torch.int64).reshape(
            size, len(attribute_columns)
        ),
        history_items=torch.tensor(batch["history_items"], dtype=torch.int64).reshape(
            size, max_history_length
        ),
        history_categories=torch.tensor(batch["history_categories"], dtype=torch.int64).reshape(
            size, max_history_length
        ),
        history_length=torch.tensor(batch["history_length"], dtype=torch.int64),
        label=torch.tensor(batch["label"], dtype=torch.float32),
    )
