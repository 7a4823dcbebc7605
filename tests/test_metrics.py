"""Exact AUC / GAUC / logloss against brute-force pair counting."""

from __future__ import annotations

import math

import numpy as np

from muse.core.metrics import auc, gauc, logloss


def _pairwise_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    positive = scores[labels == 1]
    negative = scores[labels == 0]
    wins = (positive[:, None] > negative[None, :]).sum() + 0.5 * (positive[:, None] == negative[None, :]).sum()
    return float(wins / (positive.size * negative.size))


def test_auc_matches_pair_counting_with_ties() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = rng.integers(0, 20, 500).astype(float)  # many ties
    assert math.isclose(auc(labels, scores), _pairwise_auc(labels, scores), rel_tol=1e-12)


def test_auc_extremes_and_single_class() -> None:
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert auc(np.array([0, 0, 1, 1]), np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    assert math.isnan(auc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_gauc_is_impression_weighted_over_users_with_both_classes() -> None:
    rng = np.random.default_rng(1)
    users = rng.integers(0, 40, 2000)
    labels = rng.integers(0, 2, 2000)
    scores = np.round(rng.random(2000) + 0.3 * labels, 1)
    total, weight = 0.0, 0
    for user in np.unique(users):
        rows = users == user
        if labels[rows].min() == labels[rows].max():
            continue
        total += _pairwise_auc(labels[rows], scores[rows]) * rows.sum()
        weight += rows.sum()
    assert math.isclose(gauc(users, labels, scores), total / weight, rel_tol=1e-12)


def test_gauc_ignores_single_class_users_and_order() -> None:
    users = np.array([7, 7, 7, 9, 9, -3, -3])
    labels = np.array([1, 0, 0, 1, 1, 0, 1])
    scores = np.array([0.9, 0.1, 0.5, 0.3, 0.2, 0.8, 0.2])
    # user 7 AUC 1 (3 rows), user 9 skipped, user -3 AUC 0 (2 rows) → 3/5.
    assert math.isclose(gauc(users, labels, scores), 0.6)
    order = np.random.default_rng(2).permutation(users.size)
    assert math.isclose(gauc(users[order], labels[order], scores[order]), 0.6)


def test_logloss_matches_formula_and_clips() -> None:
    labels = np.array([1, 0])
    probabilities = np.array([0.8, 0.3])
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert math.isclose(logloss(labels, probabilities), expected)
    assert math.isfinite(logloss(np.array([1]), np.array([0.0])))
