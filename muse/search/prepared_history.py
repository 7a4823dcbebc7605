"""One user's history made ready for repeated GSU searches (what the per-user cache holds).

For the native CPU backend the history is packed into int8 codes in blocks of 8 rows × 4 dims with
a per-row scale (see ``native/gsu_kernels.cpp``). Rows from an int8 table are packed exactly, once
per distinct item: lifelong histories repeat items (a synthetic 100K history holds about 28K
distinct ones), so each is scored once and stands for all its positions, which the search expands
at the end. Rows given as floats are quantised, their normalised fp32 rows are kept for exact
re-scoring, and the largest quantisation error bounds the approximate scores. For the torch backend the history is
the normalised fp32 matrix itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from muse.core.ids import FIRST_ID_INDEX
from muse.search.device import SearchBackend, search_threads, select_backend
from muse.search.embedding_table import EmbeddingTable, normalize_rows, searchable_mask
from muse.search.native_library import load_native_library

BLOCK_ROWS = 8
GROUP_DIMS = 4


@dataclass(frozen=True)
class PreparedHistory:
    """A gathered, normalised history of L rows of width D.

    backend: the backend that prepared it (searches run on the same one).
    searchable: (L,) bool, True where a behaviour may be returned.
    rows: (L, D) float32 normalised rows, or None when ``codes`` hold the rows exactly.
    codes: native only, (L_pad / 8, D_pad / 4, 8, 4) int8 packed rows (L_pad, D_pad: multiples
        of 8 and 4).
    scale: native only, (L_pad,) float32: row ≈ codes · scale.
    penalty: native only, (L_pad,) float32: 0 for searchable rows, -1e30 otherwise.
    offset: native only, (L_pad,) int32: the candidates' code offset (64; 128 in the AVX512-VNNI
        build) · the sum of the row's codes (the kernel's unsigned-candidate correction).
    row_error: largest ‖row − codes·scale‖ (0 when exact).
    weight: native only, (L_pad,) int32 positions each packed row stands for, or None when each
        stands for one.
    row_offsets, row_positions: native only, (R + 1,) and (P,) int64: packed row r holds the items
        at history positions ``row_positions[row_offsets[r]:row_offsets[r + 1]]`` (ascending);
        None when packed rows are history positions.
    """

    backend: SearchBackend
    length: int
    dim: int
    searchable: torch.Tensor
    rows: torch.Tensor | None
    codes: torch.Tensor | None
    scale: torch.Tensor | None
    penalty: torch.Tensor | None
    offset: torch.Tensor | None
    row_error: float
    weight: torch.Tensor | None = None
    row_offsets: torch.Tensor | None = None
    row_positions: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by this history's tensors (what the cache budgets)."""
        tensors = (
            self.searchable,
            self.rows,
            self.codes,
            self.scale,
            self.penalty,
            self.offset,
            self.weight,
            self.row_offsets,
            self.row_positions,
        )
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    @property
    def dim_pad(self) -> int:
        return _padded_dim(self.dim)

    @property
    def device(self) -> torch.device:
        return self.searchable.device


def _padded_length(length: int) -> int:
    return -(-length // BLOCK_ROWS) * BLOCK_ROWS


def _padded_dim(dim: int) -> int:
    return -(-dim // GROUP_DIMS) * GROUP_DIMS


def _empty_packed(
    length: int, dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    length_pad = _padded_length(length)
    dim_pad = _padded_dim(dim)
    codes = torch.empty(
        (length_pad // BLOCK_ROWS, dim_pad // GROUP_DIMS, BLOCK_ROWS, GROUP_DIMS), dtype=torch.int8
    )
    scale = torch.empty(length_pad, dtype=torch.float32)
    penalty = torch.empty(length_pad, dtype=torch.float32)
    offset = torch.empty(length_pad, dtype=torch.int32)
    return codes, scale, penalty, offset


@dataclass(frozen=True)
class DistinctItems:
    """The searchable items of one history, each once: items (R,) int64 ascending; item r sits
    at positions[offsets[r]:offsets[r + 1]] (ascending); repeats: whether any item repeats."""

    items: np.ndarray
    offsets: np.ndarray
    positions: np.ndarray
    repeats: bool

    @classmethod
    def of(cls, history_items: np.ndarray) -> DistinctItems:
        """history_items: (L,) int64 item indices; padding and OOV (< FIRST_ID_INDEX) are left out."""
        positions = np.flatnonzero(history_items >= FIRST_ID_INDEX)
        values = history_items[positions]
        # A stable sort keeps each item's positions ascending (equal cosines keep the earliest).
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        starts = (
            np.flatnonzero(np.diff(ordered, prepend=np.int64(-1)) != 0) if ordered.size else ordered
        )
        offsets = np.append(starts, ordered.size).astype(np.int64)
        return cls(
            items=np.ascontiguousarray(ordered[starts], dtype=np.int64),
            offsets=offsets,
            positions=np.ascontiguousarray(positions[order], dtype=np.int64),
            repeats=bool(starts.size < ordered.size),
        )


def prepare_from_table(
    table: EmbeddingTable,
    history_items: torch.Tensor,
    backend: SearchBackend | None = None,
    device: torch.device | str | None = None,
) -> PreparedHistory:
    """Gather and prepare one history. history_items: (L,) int64 item indices (0/1 never returned)."""
    if history_items.dim() != 1:
        raise ValueError(f"history_items must be (L,), got {tuple(history_items.shape)}")
    backend = backend or select_backend(device)
    items = history_items.detach().to("cpu", torch.int64).contiguous()
    if items.numel() and (int(items.min()) < 0 or int(items.max()) >= table.num_rows):
        raise IndexError(f"history item index out of range [0, {table.num_rows})")
    if backend is SearchBackend.NATIVE_CPU and table.array.dtype == np.int8:
        library = load_native_library()
        assert library is not None
        array = np.ascontiguousarray(table.array)
        distinct = DistinctItems.of(items.numpy())
        codes, scale, penalty, offset = _empty_packed(distinct.items.size, table.dim)
        status = library.gsu_pack_table_int8(
            array.ctypes.data,
            table.num_rows,
            table.dim,
            distinct.items.ctypes.data,
            distinct.items.size,
            FIRST_ID_INDEX,
            codes.data_ptr(),
            scale.data_ptr(),
            penalty.data_ptr(),
            offset.data_ptr(),
            scale.numel(),
            codes.shape[1] * GROUP_DIMS,
            search_threads(),
        )
        if status != 0:
            raise IndexError(f"history item index out of range [0, {table.num_rows})")
        weight = None
        if distinct.repeats:
            weight = torch.zeros(scale.numel(), dtype=torch.int32)
            weight[: distinct.items.size] = torch.from_numpy(np.diff(distinct.offsets)).int()
        return PreparedHistory(
            backend=backend,
            length=items.numel(),
            dim=table.dim,
            searchable=searchable_mask(items),
            rows=None,
            codes=codes,
            scale=scale,
            penalty=penalty,
            offset=offset,
            row_error=0.0,
            weight=weight,
            row_offsets=torch.from_numpy(distinct.offsets),
            row_positions=torch.from_numpy(distinct.positions),
        )
    return prepare_from_embeddings(
        table.gather(items), searchable_mask(items), backend=backend, device=device
    )


def prepare_from_embeddings(
    history_embeddings: torch.Tensor,
    searchable: torch.Tensor,
    backend: SearchBackend | None = None,
    device: torch.device | str | None = None,
) -> PreparedHistory:
    """Prepare one gathered history. history_embeddings: (L, D) float (normalised here); searchable: (L,) bool."""
    if history_embeddings.dim() != 2 or searchable.shape != history_embeddings.shape[:1]:
        raise ValueError(
            f"expected history (L, D) and searchable (L,), got {tuple(history_embeddings.shape)} "
            f"and {tuple(searchable.shape)}"
        )
    device = device if device is not None else history_embeddings.device
    backend = backend or select_backend(device)
    if backend is SearchBackend.TORCH:
        rows = normalize_rows(history_embeddings.to(device, torch.float32)).contiguous()
        return PreparedHistory(
            backend=backend,
            length=rows.shape[0],
            dim=rows.shape[1],
            searchable=searchable.to(device, torch.bool).contiguous(),
            rows=rows,
            codes=None,
            scale=None,
            penalty=None,
            offset=None,
            row_error=0.0,
        )
    library = load_native_library()
    assert library is not None
    rows = normalize_rows(history_embeddings.detach().to("cpu", torch.float32)).contiguous()
    mask = searchable.detach().to("cpu", torch.bool).contiguous()
    length, dim = rows.shape
    codes, scale, penalty, offset = _empty_packed(length, dim)
    row_error = library.gsu_pack_rows_float32(
        rows.data_ptr(),
        mask.data_ptr(),
        length,
        dim,
        codes.data_ptr(),
        scale.data_ptr(),
        penalty.data_ptr(),
        offset.data_ptr(),
        scale.numel(),
        codes.shape[1] * GROUP_DIMS,
        search_threads(),
    )
    return PreparedHistory(
        backend=backend,
        length=length,
        dim=dim,
        searchable=mask,
        rows=rows,
        codes=codes,
        scale=scale,
        penalty=penalty,
        offset=offset,
        row_error=float(row_error),
    )
