"""Fast exact GSU search: top-K cosine of candidates against lifelong histories.

Same signatures and results as :mod:`muse.search.reference` (ties may break either way), shared
by the ranking model (``top_k`` every training step) and the scoring server (``top_k_prepared``
on cached histories, see :mod:`muse.search.history_cache`).

Paths on the native CPU backend:
- few candidates (C ≤ ``EXACT_PATH_MAX_CANDIDATES``): every row is scored exactly in fp32 straight
  from the table with a fused running top-K; memory-bound, no packing.
- more candidates: the history is packed to int8, candidates are quantised to 7 bits (8 in the
  AVX512-VNNI build), and a fused kernel looks only at rows whose bounded approximate score can
  reach the running K-th best exact score; those are scored exactly in fp32 on the spot and kept
  in a size-K heap.
The torch backend (CUDA, or CPU without the kernels) streams L in chunks with a running topk.
Memory stays bounded in every path: no C×L score matrix is materialised.
"""

from __future__ import annotations

import numpy as np
import torch

from muse.core.ids import FIRST_ID_INDEX
from muse.search import native_library as native
from muse.search.device import SearchBackend, search_threads, select_backend
from muse.search.embedding_table import EmbeddingTable, normalize_rows, searchable_mask
from muse.search.prepared_history import PreparedHistory, prepare_from_table
from muse.search.search_result import EXCLUDED_SCORE, SearchResult

# Up to this many candidates per history, scoring every row exactly beats packing it.
EXACT_PATH_MAX_CANDIDATES = 4
# Packed history blocks (8 rows, 1 KB at d=128) scanned per candidate tile before moving on: the
# chunk stays in L1 while every candidate passes over it; a multiple of the kernel's 3-block tile.
CHUNK_BLOCKS = 15
# The torch backend's score chunk: at most this many fp32 scores in flight.
TORCH_CHUNK_SCORES = 8 * 1024 * 1024

_TABLE_KINDS = {
    np.dtype(np.int8): native.EXACT_TABLE_INT8,
    np.dtype(np.float16): native.EXACT_TABLE_FLOAT16,
    np.dtype(np.float32): native.EXACT_TABLE_FLOAT32,
}


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")


def _empty_outputs(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.empty(shape, dtype=torch.int64),
        torch.empty(shape, dtype=torch.float32),
        torch.empty(shape, dtype=torch.bool),
    )


@torch.no_grad()
def top_k(
    table: EmbeddingTable,
    history_items: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    backend: SearchBackend | None = None,
) -> SearchResult:
    """Exact top-K cosine from item indices.

    history_items: (B, L) int64 item indices (0 padding, 1 OOV: never returned).
    candidates: (B, C, D) float candidate embeddings (normalised here).
    Returns SearchResult with (B, C, K) tensors on the candidates' device.
    """
    _check_k(k)
    _check_batch_shapes(history_items.shape, candidates.shape, table.dim)
    _check_item_range(history_items, table.num_rows)
    device = candidates.device
    backend = backend or select_backend(device)
    queries = normalize_rows(candidates.detach().float())
    if backend is SearchBackend.TORCH:
        history = table.gather_normalized(history_items.detach().cpu()).to(device)
        return _torch_search(history, searchable_mask(history_items).to(device), queries, k)
    queries = queries.cpu().contiguous()
    items = history_items.detach().to("cpu", torch.int64).contiguous()
    batch, length = items.shape
    num_candidates = queries.shape[1]
    kind = _TABLE_KINDS.get(table.array.dtype)
    if num_candidates <= EXACT_PATH_MAX_CANDIDATES and kind is not None:
        array = np.ascontiguousarray(table.array)
        positions, cosines, mask = _empty_outputs((batch, num_candidates, k))
        status = native.load_native_library().gsu_search_exact(  # type: ignore[union-attr]
            kind,
            array.ctypes.data,
            table.num_rows,
            items.data_ptr(),
            None,
            FIRST_ID_INDEX,
            batch,
            length,
            table.dim,
            queries.data_ptr(),
            num_candidates,
            k,
            search_threads(),
            positions.data_ptr(),
            cosines.data_ptr(),
            mask.data_ptr(),
        )
        if status != 0:
            raise IndexError(f"history item index out of range [0, {table.num_rows})")
        return _to_device(SearchResult(positions, cosines, mask), device)
    parts = [
        _native_search_prepared(prepare_from_table(table, items[b], backend), candidates[b], k)
        for b in range(batch)
    ]
    return _to_device(_stack(parts, (batch, num_candidates, k)), device)


@torch.no_grad()
def top_k_prepared(history: PreparedHistory, candidates: torch.Tensor, k: int) -> SearchResult:
    """Exact top-K cosine of C candidates against one prepared (e.g. cached) history.

    candidates: (C, D) float (normalised here).
    Returns SearchResult with (1, C, K) tensors.
    """
    _check_k(k)
    if candidates.dim() != 2 or candidates.shape[1] != history.dim:
        raise ValueError(f"candidates must be (C, {history.dim}), got {tuple(candidates.shape)}")
    if history.backend is SearchBackend.TORCH:
        assert history.rows is not None
        queries = normalize_rows(candidates.detach().to(history.device, torch.float32))
        return _torch_search(history.rows[None], history.searchable[None], queries[None], k)
    result = _native_search_prepared(history, candidates, k)
    return SearchResult(result.positions[None], result.cosines[None], result.mask[None])


def _native_search_prepared(
    history: PreparedHistory, candidates: torch.Tensor, k: int
) -> SearchResult:
    """candidates: (C, D) raw float candidates (normalised in the kernel). Returns (C, K) tensors."""
    library = native.load_native_library()
    assert library is not None and history.codes is not None
    assert history.scale is not None and history.penalty is not None
    assert history.offset is not None
    raw = np.ascontiguousarray(candidates.detach().cpu().numpy(), dtype=np.float32)
    num_candidates, dim = raw.shape
    dim_pad = history.dim_pad
    # numpy scratch: allocating it costs a fraction of torch.empty's per-call overhead.
    queries = np.empty((num_candidates, dim), dtype=np.float32)
    query_codes = np.empty((num_candidates, dim_pad), dtype=np.uint8)
    value_scale = np.empty(num_candidates, dtype=np.float32)
    beta = np.empty(num_candidates, dtype=np.float32)
    library.gsu_prepare_queries(
        raw.ctypes.data,
        num_candidates,
        dim,
        dim_pad,
        history.row_error,
        queries.ctypes.data,
        query_codes.ctypes.data,
        value_scale.ctypes.data,
        beta.ctypes.data,
    )
    positions = np.empty((num_candidates, k), dtype=np.int64)
    cosines = np.empty((num_candidates, k), dtype=np.float32)
    mask = np.empty((num_candidates, k), dtype=np.bool_)
    library.gsu_search_packed(
        history.codes.data_ptr(),
        history.scale.data_ptr(),
        history.penalty.data_ptr(),
        history.offset.data_ptr(),
        history.scale.numel(),
        dim,
        dim_pad,
        history.rows.data_ptr() if history.rows is not None else None,
        query_codes.ctypes.data,
        value_scale.ctypes.data,
        beta.ctypes.data,
        queries.ctypes.data,
        num_candidates,
        k,
        search_threads(),
        CHUNK_BLOCKS,
        _pointer(history.weight),
        _pointer(history.row_offsets),
        _pointer(history.row_positions),
        positions.ctypes.data,
        cosines.ctypes.data,
        mask.ctypes.data,
    )
    return SearchResult(
        torch.from_numpy(positions), torch.from_numpy(cosines), torch.from_numpy(mask)
    )


def _pointer(tensor: torch.Tensor | None) -> int | None:
    return tensor.data_ptr() if tensor is not None else None


def _torch_search(
    history: torch.Tensor, searchable: torch.Tensor, queries: torch.Tensor, k: int
) -> SearchResult:
    """Chunked exact fp32 search. history (B, L, D) and queries (B, C, D) normalised."""
    batch, length, _ = history.shape
    num_candidates = queries.shape[1]
    device = queries.device
    chunk = max(1, min(max(length, 1), TORCH_CHUNK_SCORES // max(1, batch * num_candidates)))
    best_values = torch.empty((batch, num_candidates, 0), device=device)
    best_positions = torch.empty((batch, num_candidates, 0), dtype=torch.int64, device=device)
    for start in range(0, length, chunk):
        end = min(length, start + chunk)
        scores = torch.einsum("bcd,bld->bcl", queries, history[:, start:end])
        scores = scores.masked_fill(~searchable[:, None, start:end], EXCLUDED_SCORE)
        positions = torch.arange(start, end, device=device).expand(batch, num_candidates, -1)
        values = torch.cat([best_values, scores], dim=-1)
        merged_positions = torch.cat([best_positions, positions], dim=-1)
        kept = min(k, values.shape[-1])
        best_values, order = torch.topk(values, kept, dim=-1, largest=True, sorted=True)
        best_positions = torch.gather(merged_positions, -1, order)
    mask = best_values > EXCLUDED_SCORE
    pad = k - best_values.shape[-1]
    if pad:
        shape = (batch, num_candidates, pad)
        best_values = torch.cat([best_values, best_values.new_full(shape, EXCLUDED_SCORE)], -1)
        best_positions = torch.cat([best_positions, best_positions.new_full(shape, -1)], -1)
        mask = torch.cat([mask, mask.new_zeros(shape)], -1)
    return SearchResult(
        positions=best_positions.masked_fill(~mask, -1),
        cosines=best_values.masked_fill(~mask, 0.0),
        mask=mask,
    )


def _check_batch_shapes(history_shape: torch.Size, candidate_shape: torch.Size, dim: int) -> None:
    if len(history_shape) != 2 or len(candidate_shape) != 3:
        raise ValueError(
            f"expected history (B, L) and candidates (B, C, D), got {tuple(history_shape)}, {tuple(candidate_shape)}"
        )
    if candidate_shape[0] != history_shape[0] or candidate_shape[2] != dim:
        raise ValueError(
            f"candidates {tuple(candidate_shape)} do not match history batch {history_shape[0]} and width {dim}"
        )


def _check_item_range(history_items: torch.Tensor, num_rows: int) -> None:
    if history_items.numel():
        low, high = torch.aminmax(history_items)
        if int(low) < 0 or int(high) >= num_rows:
            raise IndexError(f"history item index out of range [0, {num_rows})")


def _stack(parts: list[SearchResult], shape: tuple[int, int, int]) -> SearchResult:
    if not parts:
        positions, cosines, mask = _empty_outputs(shape)
        return SearchResult(positions, cosines, mask)
    return SearchResult(
        torch.stack([p.positions for p in parts]),
        torch.stack([p.cosines for p in parts]),
        torch.stack([p.mask for p in parts]),
    )


def _to_device(result: SearchResult, device: torch.device) -> SearchResult:
    if device.type == "cpu":
        return result
    return SearchResult(*(t.to(device) for t in result))
