"""Sort-based id helpers agree with numpy's plain versions (they exist because those were slow)."""

from __future__ import annotations

import numpy as np

from features.dense_ids import dense_ids
from features.user_time_key import user_time_key
from features.vocabulary import SORTED_QUERY_THRESHOLD, Vocabulary, sorted_positions, sorted_unique


def test_dense_ids_match_numpy_unique() -> None:
    rng = np.random.default_rng(1)
    for values in (
        rng.integers(-(2**62), 2**62, size=1000),
        rng.integers(-5, 5, size=1000),
        np.array([7]),
        np.zeros(0, dtype=np.int64),
    ):
        distinct, position = dense_ids(values)
        expected, inverse = np.unique(values, return_inverse=True)
        assert distinct.tolist() == expected.tolist()
        assert position.tolist() == inverse.ravel().tolist()
        assert sorted_unique(values).tolist() == expected.tolist()


def test_sorted_positions_large_and_small_match_searchsorted() -> None:
    rng = np.random.default_rng(2)
    haystack = np.sort(rng.integers(0, 10**9, size=5000))
    for size in (100, SORTED_QUERY_THRESHOLD + 10):
        needles = rng.integers(-10, 10**9 + 10, size=size)
        assert np.array_equal(
            sorted_positions(haystack, needles), np.searchsorted(haystack, needles)
        )


def test_user_time_key_sorts_like_the_pair_and_declines_when_too_wide() -> None:
    rng = np.random.default_rng(3)
    users = rng.integers(0, 50, size=500)
    times = rng.integers(-1000, 1000, size=500)
    packing = user_time_key(50, -1000, 999)
    assert packing is not None
    order = np.argsort(packing.pack(users, times), kind="stable")
    assert np.array_equal(order, np.lexsort((times, users)))
    assert user_time_key(2**20, 0, 2**45) is None


def test_dense_and_sparse_vocabularies_look_up_as_a_binary_search() -> None:
    rng = np.random.default_rng(5)
    dense = np.unique(rng.integers(10**12, 10**12 + 3_000, 1_500))  # a direct-address table
    sparse = np.unique(rng.integers(-(2**62), 2**62, 1_500))  # a binary search
    extreme = np.array([-(2**63), -5, 7, 2**63 - 1], dtype=np.int64)
    for raw in (dense, sparse, extreme):
        vocabulary = Vocabulary(raw)
        queries = np.concatenate(
            [rng.choice(raw, 400), raw[:1] - 1, raw[-1:] + 1, extreme, rng.integers(-9, 9, 50)]
        ).reshape(-1, 2)
        position = np.minimum(np.searchsorted(raw, queries.ravel()), raw.size - 1)
        expected = np.where(raw[position] == queries.ravel(), position + 2, 1).reshape(queries.shape)
        np.testing.assert_array_equal(vocabulary.lookup(queries), expected)
        assert (vocabulary._direct_table() is not None) == (raw is dense)
