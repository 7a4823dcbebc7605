"""The prefix trie of semantic IDs: real prefix walks, rows, errors and build time."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from muse.conversational.models.prefix_trie import EOS_TOKEN, NO_ROW, PAD_TOKEN, PrefixTrie


def _random_ids(seed: int, count: int, levels: int = 2, codebook: int = 3) -> np.ndarray:
    """(count, levels + 1) unique IDs in the semantic ID layout: codes, then a collision token."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, codebook, size=(count, levels))
    collision = np.zeros(count, dtype=np.int64)
    seen: dict[tuple[int, ...], int] = {}
    for row, code in enumerate(map(tuple, codes.tolist())):
        collision[row] = seen.get(code, 0)
        seen[code] = collision[row] + 1
    offsets = 2 + codebook * np.arange(levels)
    return np.concatenate([codes + offsets, (2 + levels * codebook + collision)[:, None]], axis=1)


def test_a_trie_refuses_what_a_per_position_table_allows() -> None:
    ids = np.array([[2, 5, 8], [3, 6, 8]])
    trie = PrefixTrie.from_sequences(ids)
    table = [set(ids[:, position].tolist()) for position in range(ids.shape[1])]
    invalid = [2, 6, 8]
    assert all(
        token in table[position] for position, token in enumerate(invalid)
    )  # the table's hole
    assert trie.allowed([]).tolist() == [2, 3]
    assert trie.allowed([2]).tolist() == [5]
    assert trie.allowed([3]).tolist() == [6]
    assert trie.allowed([2, 6]).tolist() == []
    assert not trie.contains(invalid)
    assert trie.row_of(invalid) == NO_ROW


def test_allowed_tokens_are_exactly_the_catalogue_continuations() -> None:
    ids = _random_ids(seed=0, count=40)
    trie = PrefixTrie.from_sequences(ids)
    length = ids.shape[1]
    prefixes = {tuple(row[:depth]) for row in ids.tolist() for depth in range(length)}
    for prefix in prefixes:
        expected = sorted(
            {row[len(prefix)] for row in ids.tolist() if tuple(row[: len(prefix)]) == prefix}
        )
        assert trie.allowed(list(prefix)).tolist() == expected
    assert trie.num_nodes == 1 + len(prefixes - {()}) + len(ids)
    # Every token sequence of the ID length is valid exactly when it is a row.
    vocabulary = sorted(set(ids.ravel().tolist()))
    rows = {tuple(row): index for index, row in enumerate(ids.tolist())}
    for sequence in itertools.product(vocabulary, repeat=length):
        assert trie.row_of(sequence) == rows.get(sequence, NO_ROW)


def test_after_a_complete_id_only_eos_then_only_pad() -> None:
    ids = _random_ids(seed=1, count=10)
    trie = PrefixTrie.from_sequences(ids)
    complete = ids[3].tolist()
    assert trie.allowed(complete).tolist() == [EOS_TOKEN]
    assert trie.allowed([*complete, EOS_TOKEN]).tolist() == [PAD_TOKEN]
    assert trie.allowed([*complete, EOS_TOKEN, PAD_TOKEN]).tolist() == [PAD_TOKEN]
    assert trie.allowed([*complete, PAD_TOKEN]).tolist() == []
    assert trie.allowed([*complete, EOS_TOKEN, EOS_TOKEN]).tolist() == []
    assert trie.allowed([99]).tolist() == []


def test_rows_come_back_for_ids_with_and_without_their_eos() -> None:
    ids = _random_ids(seed=2, count=30)
    trie = PrefixTrie.from_sequences(ids)
    assert trie.num_ids == len(ids) and trie.id_length == ids.shape[1]
    for row, sequence in enumerate(ids.tolist()):
        assert trie.row_of(sequence) == row
        assert trie.row_of([*sequence, EOS_TOKEN]) == row
        assert trie.row_of([*sequence, EOS_TOKEN, PAD_TOKEN]) == row
        assert trie.contains(sequence)
        assert trie.row_of(sequence[:-1]) == NO_ROW  # a proper prefix is no item
        assert trie.row_of([*sequence, PAD_TOKEN]) == NO_ROW


def test_duplicate_ids_are_refused() -> None:
    ids = np.array([[2, 3], [4, 5], [2, 3]])
    with pytest.raises(ValueError, match="rows 0 and 2 share the ID"):
        PrefixTrie.from_sequences(ids)


@pytest.mark.parametrize(
    "ids",
    [
        np.array([[2, EOS_TOKEN]]),
        np.array([[PAD_TOKEN, 3]]),
        np.zeros((0, 3), dtype=np.int64),
        np.array([2, 3]),
        np.array([[2.0, 3.0]]),
    ],
)
def test_malformed_ids_are_refused(ids: np.ndarray) -> None:
    with pytest.raises(ValueError):
        PrefixTrie.from_sequences(ids)


def test_a_hundred_thousand_ids_build_well_under_a_second() -> None:
    rng = np.random.default_rng(0)
    count, levels, codebook = 100_000, 3, 256
    codes = rng.choice(codebook**levels, size=count, replace=False)  # distinct 3-code IDs
    digits = np.stack([(codes // codebook**level) % codebook for level in range(levels)], axis=1)
    ids = np.concatenate(
        [digits + 2 + codebook * np.arange(levels), np.full((count, 1), 2 + levels * codebook)],
        axis=1,
    )
    started = time.perf_counter()
    trie = PrefixTrie.from_sequences(ids)
    assert time.perf_counter() - started < 1.0
    assert trie.num_ids == count
    for row in rng.integers(0, count, size=200).tolist():
        assert trie.row_of(ids[row]) == row
