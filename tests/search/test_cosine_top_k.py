"""The fast GSU search returns the reference's exact top-K on random and adversarial inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.gsu import top_k_gathered
from muse.search import EmbeddingTable
from muse.search.cosine_top_k import EXACT_PATH_MAX_CANDIDATES, top_k, top_k_prepared
from muse.search.device import SearchBackend
from muse.search.embedding_table import searchable_mask
from muse.search.native_library import load_native_library
from muse.search.prepared_history import prepare_from_embeddings, prepare_from_table
from muse.search.reference import reference_top_k, reference_top_k_gathered
from tests.search.search_checks import assert_same_top_k, recall_at_k

BACKENDS = [SearchBackend.TORCH]
if load_native_library() is not None:
    BACKENDS.insert(0, SearchBackend.NATIVE_CPU)

# Candidate counts that exercise both native paths (exact per row, and packed int16 + re-score).
SMALL_C = 1
LARGE_C = EXACT_PATH_MAX_CANDIDATES + 3


def random_table(num_rows: int, dim: int, dtype: np.dtype, seed: int) -> EmbeddingTable:
    rng = np.random.default_rng(seed)
    if dtype == np.int8:
        array = rng.integers(-128, 128, size=(num_rows, dim), dtype=np.int8)
    else:
        array = rng.standard_normal((num_rows, dim)).astype(dtype)
    array[:2] = 0
    return EmbeddingTable(array, 1 / 127 if dtype == np.int8 else 1.0)


def check_table_search(
    table: EmbeddingTable,
    items: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    backend: SearchBackend,
    tolerance: float = 2e-5,
) -> None:
    fast = top_k(table, items, candidates, k, backend=backend)
    reference = reference_top_k(table, items, candidates, k)
    assert_same_top_k(
        fast, reference, table.gather(items), searchable_mask(items), candidates, tolerance
    )


def check_gathered_search(
    history: torch.Tensor,
    searchable: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    backend: SearchBackend,
) -> None:
    fast = top_k_gathered(history, searchable, candidates, k, backend=backend)
    reference = reference_top_k_gathered(history, searchable, candidates, k)
    assert_same_top_k(fast, reference, history, searchable, candidates)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
@pytest.mark.parametrize("dtype", [np.int8, np.float16, np.float32], ids=str)
@pytest.mark.parametrize(
    ("batch", "length", "num_candidates", "k", "dim"),
    [
        (3, 200, SMALL_C, 10, 32),
        (2, 1500, SMALL_C, 50, 128),
        (2, 1500, LARGE_C, 50, 128),
        (1, 37, LARGE_C, 50, 16),
        (4, 333, 2, 1, 33),
        (2, 999, 17, 7, 3),
        (1, 5000, LARGE_C + 2, 64, 64),
    ],
)
def test_table_search_matches_reference(
    backend: SearchBackend,
    dtype: np.dtype,
    batch: int,
    length: int,
    num_candidates: int,
    k: int,
    dim: int,
) -> None:
    seed = batch * 7919 + length * 31 + num_candidates * 7 + k + dim
    table = random_table(4000, dim, dtype, seed)
    generator = torch.Generator().manual_seed(seed)
    items = torch.randint(0, table.num_rows, (batch, length), generator=generator)
    candidates = torch.randn(batch, num_candidates, dim, generator=generator)
    check_table_search(table, items, candidates, k, backend)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
@pytest.mark.parametrize(
    ("batch", "length", "num_candidates", "k", "dim"),
    [
        (2, 500, SMALL_C, 20, 32),
        (3, 2000, LARGE_C, 50, 128),
        (1, 10, LARGE_C, 50, 8),
        (2, 4096, 3, 16, 17),
    ],
)
def test_gathered_search_matches_reference(
    backend: SearchBackend, batch: int, length: int, num_candidates: int, k: int, dim: int
) -> None:
    generator = torch.Generator().manual_seed(batch + length + num_candidates + k + dim)
    history = torch.randn(batch, length, dim, generator=generator)
    searchable = torch.rand(batch, length, generator=generator) > 0.2
    candidates = torch.randn(batch, num_candidates, dim, generator=generator)
    check_gathered_search(history, searchable, candidates, k, backend)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
@pytest.mark.parametrize("num_candidates", [SMALL_C, LARGE_C])
def test_adversarial_histories(backend: SearchBackend, num_candidates: int) -> None:
    table = random_table(300, 24, np.int8, 5)
    table.array[5] = 0  # a zero embedding: cosine 0 with everything, still searchable
    generator = torch.Generator().manual_seed(3)
    candidates = torch.randn(1, num_candidates, 24, generator=generator)
    cases = {
        "all padding": torch.zeros(1, 80, dtype=torch.int64),
        "all OOV": torch.ones(1, 80, dtype=torch.int64),
        "shorter than K": torch.tensor([[0, 7, 1, 9, 12]]),
        "one item repeated": torch.full((1, 3000), 17),
        "two items repeated": torch.tensor([[17, 23] * 1500]),
        "zero embeddings and padding": torch.tensor([[5, 0, 5, 1, 5, 40] * 30]),
        "empty history": torch.zeros(1, 0, dtype=torch.int64),
    }
    for name, items in cases.items():
        try:
            check_table_search(table, items, candidates, 50, backend)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from error


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
@pytest.mark.parametrize("num_candidates", [SMALL_C, LARGE_C])
def test_zero_candidate_and_exact_ties(backend: SearchBackend, num_candidates: int) -> None:
    generator = torch.Generator().manual_seed(11)
    history = torch.randn(2, 700, 16, generator=generator)
    history[:, 100:400] = history[:, 50:51]  # 300 identical rows: a tie straddling the K boundary
    searchable = torch.ones(2, 700, dtype=torch.bool)
    candidates = torch.randn(2, num_candidates, 16, generator=generator)
    candidates[0, 0] = 0.0  # every cosine is 0: all rows tie
    candidates[1, 0] = history[1, 50]  # the repeated row is the best match
    check_gathered_search(history, searchable, candidates, 50, backend)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
def test_near_ties_below_quantisation_step(backend: SearchBackend) -> None:
    # 3000 rows whose cosines with each candidate spread over ~4e-3: within the int8 rounding
    # of the packed history (~1e-2) yet far above fp32 rounding, so only exact re-scoring orders them.
    generator = torch.Generator().manual_seed(19)
    base = torch.randn(64, generator=generator)
    history = (base + torch.randn(3000, 64, generator=generator) * 1e-2)[None]
    searchable = torch.ones(1, 3000, dtype=torch.bool)
    candidates = (base + torch.randn(LARGE_C, 64, generator=generator) * 0.5)[None]
    fast = top_k_gathered(history, searchable, candidates, 50, backend=backend)
    reference = reference_top_k_gathered(history, searchable, candidates, 50)
    assert_same_top_k(fast, reference, history, searchable, candidates, tolerance=1e-6)
    assert recall_at_k(fast, reference) >= 0.98


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
def test_prepared_history_search_matches_reference(backend: SearchBackend) -> None:
    table = random_table(30_000, 128, np.int8, 23)
    generator = torch.Generator().manual_seed(23)
    # Distinct items (plus padding/OOV), so that recall is not blurred by duplicate-row ties.
    items = torch.randperm(table.num_rows, generator=generator)[:20_000]
    candidates = torch.randn(40, 128, generator=generator)
    from_table = prepare_from_table(table, items, backend=backend)
    from_rows = prepare_from_embeddings(
        table.gather(items), searchable_mask(items), backend=backend
    )
    reference = reference_top_k(table, items[None], candidates[None], 50)
    for prepared in (from_table, from_rows):
        fast = top_k_prepared(prepared, candidates, 50)
        assert_same_top_k(
            fast,
            reference,
            table.gather(items)[None],
            searchable_mask(items)[None],
            candidates[None],
        )
        assert recall_at_k(fast, reference) >= 0.999


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
def test_reordering_candidates_reorders_results(backend: SearchBackend) -> None:
    table = random_table(2000, 32, np.int8, 29)
    generator = torch.Generator().manual_seed(29)
    items = torch.randint(2, table.num_rows, (2, 1200), generator=generator)
    candidates = torch.randn(2, 9, 32, generator=generator)
    order = torch.randperm(9, generator=generator)
    forward = top_k(table, items, candidates, 20, backend=backend)
    shuffled = top_k(table, items, candidates[:, order], 20, backend=backend)
    assert torch.equal(shuffled.cosines, forward.cosines[:, order])
    assert torch.equal(shuffled.positions, forward.positions[:, order])


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
def test_bad_inputs_are_rejected(backend: SearchBackend) -> None:
    table = random_table(50, 8, np.int8, 1)
    with pytest.raises(IndexError):
        top_k(table, torch.tensor([[3, 50]]), torch.randn(1, 1, 8), 5, backend=backend)
    with pytest.raises(IndexError):
        top_k(table, torch.tensor([[3, -1]]), torch.randn(1, LARGE_C, 8), 5, backend=backend)
    with pytest.raises(ValueError):
        top_k(table, torch.tensor([[3, 4]]), torch.randn(1, 1, 9), 5, backend=backend)
    with pytest.raises(ValueError):
        top_k(table, torch.tensor([[3, 4]]), torch.randn(2, 1, 8), 5, backend=backend)
    with pytest.raises(ValueError):
        top_k(table, torch.tensor([[3, 4]]), torch.randn(1, 1, 8), 0, backend=backend)


def test_training_shape_batch_of_histories() -> None:
    # The ranking model's call: many samples, one candidate each, its own history.
    table = random_table(50_000, 128, np.int8, 31)
    generator = torch.Generator().manual_seed(31)
    items = torch.randint(0, table.num_rows, (256, 300), generator=generator)
    items[:, :40] = 0  # left padding, as RankingBatch right-aligns histories
    candidates = torch.from_numpy(
        table.array[torch.randint(2, table.num_rows, (256, 1), generator=generator).numpy()].astype(
            np.float32
        )
    )
    fast = top_k(table, items, candidates, 50)
    reference = reference_top_k(table, items, candidates, 50)
    assert recall_at_k(fast, reference) >= 0.999
    assert_same_top_k(fast, reference, table.gather(items), searchable_mask(items), candidates)
