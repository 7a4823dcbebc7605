"""Realistic ranking requests from a prepared dataset: test users and their test impressions.

`muse client --dataset` and the demo use these to score users the model knows with items they
were shown, instead of made-up ids. Imports no torch.
"""

from __future__ import annotations

import numpy as np

from features.dataset import Dataset
from muse.core.errors import DataError


def users_in_test_split(dataset: Dataset) -> list[int]:
    """Raw ids of the users with test samples, in the order of their first test sample."""
    raw_ids = dataset.users()["user_id"].to_numpy()[
        dataset.samples("test")["user_index"].to_numpy()
    ]
    return [int(user_id) for user_id in dict.fromkeys(raw_ids.tolist())]


def shown_in_test_split(dataset: Dataset, user_id: int, limit: int | None = None) -> list[int]:
    """Raw ids of the items shown to ``user_id`` in the test split (at most ``limit``)."""
    users = dataset.users()
    rows = np.flatnonzero(users["user_id"].to_numpy() == user_id)
    test = dataset.samples("test")
    items = test.filter(test["user_index"].is_in(rows.tolist()))["item_index"].to_numpy()[:limit]
    return [int(item) for item in dataset.vocabulary("item").raw_of(items).tolist()]


def sample_request(
    dataset: Dataset, user_id: int | None = None, limit: int | None = None
) -> tuple[int, list[int]]:
    """(user, candidates): ``user_id`` (default: the first test user) and its test impressions."""
    if user_id is None:
        users = users_in_test_split(dataset)
        if not users:
            raise DataError(dataset.root, "has no test samples to take a request from")
        user_id = users[0]
    candidates = shown_in_test_split(dataset, user_id, limit)
    if not candidates:
        raise DataError(dataset.root, f"user {user_id} has no test impressions to score")
    return user_id, candidates
