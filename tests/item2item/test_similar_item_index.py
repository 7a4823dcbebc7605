"""The similar-item index: each kind against the exact reference, filters, bundle round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from muse.core.errors import DataError
from muse.item2item.index.index_bundle import read_index_bundle, write_index_bundle
from muse.item2item.index.index_config import IndexConfig, IndexKind
from muse.item2item.index.similar_item_index import NO_ITEM, SimilarItemIndex


def _catalogue(count: int = 2000, dim: int = 32, seed: int = 0):
    """Clustered unit vectors (as real item embeddings are), raw ids with negatives, categories."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    cluster = rng.integers(0, 40, count)
    vectors = centres[cluster] + 0.3 * rng.normal(size=(count, dim))
    ids = rng.permutation(count).astype(np.int64) * 7 - 5000
    return ids, vectors.astype(np.float32), (cluster % 5).astype(np.int64)


CONFIGS = {
    IndexKind.EXACT: IndexConfig(kind=IndexKind.EXACT),
    IndexKind.HNSW: IndexConfig(kind=IndexKind.HNSW, hnsw_neighbours=16, hnsw_build_beam=80),
    IndexKind.IVF_PQ: IndexConfig(kind=IndexKind.IVF_PQ, pq_subquantizers=8, ivf_probe=8),
}


@pytest.mark.parametrize("kind", list(IndexKind))
def test_each_kind_finds_what_exact_search_finds(kind: IndexKind) -> None:
    ids, vectors, categories = _catalogue()
    index = SimilarItemIndex.build(CONFIGS[kind], ids, vectors, categories)
    recall = index.recall_against_exact(queries=200, k=20)
    assert recall == 1.0 if kind is IndexKind.EXACT else recall >= 0.9
    rows = np.arange(5)
    found = index.search(vectors[rows], 10, exclude_rows=rows)
    exact = index.exact_search(vectors[rows], 10, exclude_rows=rows)
    assert not np.isin(ids[rows], found.ids).any()  # a query never returns itself
    assert (np.diff(found.scores, axis=1) <= 1e-6).all()  # best first
    if kind is IndexKind.EXACT:
        np.testing.assert_array_equal(found.ids, exact.ids)
        np.testing.assert_allclose(found.scores, exact.scores, atol=1e-5)


@pytest.mark.parametrize("kind", list(IndexKind))
@pytest.mark.parametrize("exact_limit", [50_000, 0])
def test_category_filter_returns_only_that_category(kind: IndexKind, exact_limit: int) -> None:
    ids, vectors, categories = _catalogue()
    config = dataclasses.replace(CONFIGS[kind], filter_exact_limit=exact_limit)
    index = SimilarItemIndex.build(config, ids, vectors, categories)
    found = index.search(vectors[:8], 15, category=3)
    rows = index.rows_of(found.ids[found.ids != NO_ITEM])
    assert rows.size and (categories[rows] == 3).all()
    if exact_limit:  # a small category is scanned exactly: the reference's answer, in full
        exact = index.exact_search(vectors[:8], 15, category=3)
        np.testing.assert_array_equal(found.ids, exact.ids)


def test_fewer_items_than_k_pad_with_no_item_and_unknown_ids_map_to_minus_one() -> None:
    ids, vectors, _ = _catalogue(count=6)
    index = SimilarItemIndex.build(IndexConfig(kind=IndexKind.EXACT), ids, vectors)
    found = index.search(vectors[:1], 10, exclude_rows=np.array([0]))
    assert (found.ids[0, :5] != NO_ITEM).all() and (found.ids[0, 5:] == NO_ITEM).all()
    assert index.rows_of(np.array([ids[3], 123456789])).tolist() == [3, -1]


def test_bad_settings_are_named() -> None:
    ids, vectors, _ = _catalogue(count=100)
    with pytest.raises(ValueError, match="pq_subquantizers"):
        SimilarItemIndex.build(IndexConfig(kind=IndexKind.IVF_PQ, pq_subquantizers=5), ids, vectors)
    with pytest.raises(ValueError, match="at least 256 items"):
        SimilarItemIndex.build(IndexConfig(kind=IndexKind.IVF_PQ, pq_subquantizers=8), ids, vectors)
    with pytest.raises(ValueError, match="distinct"):
        SimilarItemIndex.build(IndexConfig(), np.zeros(100, np.int64), vectors)


def test_bundle_round_trip_records_recall_and_is_verified(tmp_path: Path) -> None:
    ids, vectors, categories = _catalogue()
    config = IndexConfig(kind=IndexKind.HNSW, hnsw_neighbours=16, recall_queries=100, recall_k=10)
    names = ("shoes", "bags", "hats", "coats", "socks")
    index = SimilarItemIndex.build(config, ids, vectors, categories, names)
    out = tmp_path / "similar"
    written = write_index_bundle(index, out, extra={"embeddings": "test"})
    loaded, manifest = read_index_bundle(out)
    assert manifest == written and manifest["embeddings"] == "test"
    assert manifest["task"] == "item_to_item" and manifest["items"] == 2000
    assert manifest["recall_against_exact"]["recall"] >= 0.9
    assert loaded.config == config
    assert loaded.category_code("hats") == 2 and loaded.category_code("gloves") is None
    np.testing.assert_array_equal(
        loaded.search(vectors[:4], 5).ids, index.search(vectors[:4], 5).ids
    )
    (out / "item_ids.npy").write_bytes(b"corrupt")
    with pytest.raises(DataError, match="sha256 differs"):
        read_index_bundle(out)
    manifest_path = out / "manifest.json"
    wrong = json.loads(manifest_path.read_text()) | {"task": "ranking"}
    manifest_path.write_text(json.dumps(wrong))
    with pytest.raises(DataError, match="expected a 'item_to_item' bundle"):
        read_index_bundle(out, verify=False)


def test_exact_search_in_chunks_ranks_ties_like_one_stable_sort(monkeypatch) -> None:
    from muse.item2item.index import similar_item_index

    ids, vectors, categories = _catalogue(count=3000)
    vectors[1500:] = vectors[:1500]  # every vector twice: exact ties in cosine
    index = SimilarItemIndex.build(IndexConfig(kind=IndexKind.EXACT), ids, vectors, categories)
    monkeypatch.setattr(similar_item_index, "EXACT_CHUNK_SCORES", 7 * 3000)  # 7 queries a chunk
    rows = np.arange(0, 3000, 137)
    for category in (None, 2):
        found = index.exact_search(vectors[rows], 30, category=category, exclude_rows=rows)
        # The same 7-query products the index computes: BLAS kernels may round a duplicated
        # column differently by its position in another shape, which would break exact ties.
        queries = index.vectors[rows]
        scores = np.concatenate(
            [queries[start : start + 7] @ index.vectors.T for start in range(0, rows.size, 7)]
        )
        if category is not None:
            scores[:, categories != category] = -np.inf
        scores[np.arange(rows.size), rows] = -np.inf
        expected = np.argsort(-scores, axis=1, kind="stable")[:, :30]
        np.testing.assert_array_equal(found.ids, ids[expected])


def test_recall_of_counts_served_answers_against_exact_search() -> None:
    ids, vectors, categories = _catalogue()
    index = SimilarItemIndex.build(IndexConfig(kind=IndexKind.EXACT), ids, vectors, categories)
    rows = np.arange(10)
    exact = index.exact_search(vectors[rows], 20, exclude_rows=rows).ids
    assert index.recall_of(rows, list(exact), 20) == 1.0
    # Half the answers replaced by ids outside the catalogue or padding: half the recall.
    half = [np.concatenate([answer[:10], [123456789] * 5, [NO_ITEM] * 5]) for answer in exact]
    assert index.recall_of(rows, half, 20) == pytest.approx(0.5)
    assert index.recall_of(rows, [answer[:5] for answer in exact], 20) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="10 answers"):
        index.recall_of(rows, list(exact[:3]), 20)
