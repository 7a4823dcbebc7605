"""Exact ranking metrics over a whole evaluation set (numpy; no torch).

GAUC follows the paper's definition, not the official code's per-batch approximation: per-user
AUC with ties counted as half, weighted by the user's impression count, over users that have both
a click and a non-click.
"""

from __future__ import annotations

import numpy as np


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact rank-based ROC AUC (ties count half). NaN when only one class is present."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks with tied scores sharing their average rank."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [scores.size]])
    average = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(scores.size, dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def gauc(user_ids: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """Impression-weighted per-user AUC over users with both classes (exact, ties half)."""
    user_ids = np.asarray(user_ids).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if not (user_ids.size == labels.size == scores.size):
        raise ValueError("user_ids, labels and scores must have the same length")
    if user_ids.size == 0:
        return float("nan")
    # Rank within each user in one pass: sort by (user, score), then average ties per (user, score).
    order = np.lexsort((scores, user_ids))
    users_sorted = user_ids[order]
    scores_sorted = scores[order]
    labels_sorted = labels[order]
    user_start = np.concatenate([[True], users_sorted[1:] != users_sorted[:-1]])
    group_start = user_start | np.concatenate([[True], scores_sorted[1:] != scores_sorted[:-1]])
    group_id = np.cumsum(group_start) - 1
    group_first = np.flatnonzero(group_start)
    group_size = np.diff(np.concatenate([group_first, [scores_sorted.size]]))
    user_id_of_row = np.cumsum(user_start) - 1
    user_first = np.flatnonzero(user_start)
    position_in_user = np.arange(scores_sorted.size) - user_first[user_id_of_row]
    group_rank = position_in_user[group_first] + (group_size + 1) / 2.0  # 1-based average rank
    ranks = group_rank[group_id]
    num_users = user_first.size
    positives = np.bincount(user_id_of_row, weights=labels_sorted, minlength=num_users)
    counts = np.bincount(user_id_of_row, minlength=num_users).astype(np.float64)
    negatives = counts - positives
    rank_sum = np.bincount(user_id_of_row, weights=ranks * labels_sorted, minlength=num_users)
    valid = (positives > 0) & (negatives > 0)
    if not valid.any():
        return float("nan")
    user_auc = (rank_sum[valid] - positives[valid] * (positives[valid] + 1) / 2) / (
        positives[valid] * negatives[valid]
    )
    return float(np.sum(user_auc * counts[valid]) / np.sum(counts[valid]))


def logloss(labels: np.ndarray, probabilities: np.ndarray, epsilon: float = 1e-7) -> float:
    """Mean binary cross-entropy with probabilities clipped to [epsilon, 1 - epsilon]."""
    labels = np.asarray(labels, dtype=np.float64).ravel()
    p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), epsilon, 1 - epsilon)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
