"""Item multimodal embedding table (int8 or fp16, possibly memory-mapped), L2-normalised on use."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from muse.core.ids import FIRST_ID_INDEX


class EmbeddingTable:
    """Wraps an (N, D) int8/float16 array whose row i is item index i (rows 0, 1: padding, OOV).

    Rows are gathered and L2-normalised on use; the array itself stays on disk when memory-mapped.
    """

    def __init__(self, array: np.ndarray, scale: float = 1.0) -> None:
        if array.ndim != 2 or array.dtype not in (np.int8, np.float16, np.float32):
            raise ValueError(
                f"embedding table must be 2-D int8/float16/float32, got {array.dtype} {array.shape}"
            )
        self.array = array
        self.scale = float(scale)
        self._tensor: torch.Tensor | None = None  # the torch view of ``array``, made once

    def __getstate__(self) -> dict[str, object]:
        # A pickled table (a worker process's copy) carries the array, not a second view of it.
        return {**self.__dict__, "_tensor": None}

    @classmethod
    def from_dataset(cls, dataset) -> EmbeddingTable:  # type: ignore[no-untyped-def]
        """The item embedding table of a :class:`features.dataset.Dataset`."""
        return cls(dataset.item_embeddings, dataset.embedding_scale)

    @property
    def num_rows(self) -> int:
        return int(self.array.shape[0])

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    def gather(self, indices: torch.Tensor) -> torch.Tensor:
        """Raw rows as float32 (scaled, not normalised). indices: (...) int64 → (..., D)."""
        flat = indices.reshape(-1).to("cpu", torch.int64)
        # torch's index_select on a view of the (memory-mapped) array: half the time of numpy's
        # fancy indexing plus a copy; nothing is ever written through the view.
        rows = self._rows().index_select(0, flat).to(torch.float32)
        return rows.reshape(*indices.shape, self.dim).to(indices.device)

    def gather_normalized(self, indices: torch.Tensor) -> torch.Tensor:
        """L2-normalised float32 rows (zero rows stay zero). indices: (...) int64 → (..., D)."""
        return normalize_rows(self.gather(indices))

    def cosines(self, indices: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """Cosine of each row at ``indices`` (B, n) to its sample's query (B, D) → (B, n) float32.

        ``queries`` are L2-normalised; zero rows give 0. Equals ``einsum("bd,bnd->bn", queries,
        gather_normalized(indices))`` (the reference; a test compares) at a third of the cost:
        the normalised (B, n, D) rows are never materialised.
        """
        rows = self.gather(indices)
        dots = torch.bmm(rows, queries.to(rows.dtype).unsqueeze(-1)).squeeze(-1)
        return dots / rows.norm(dim=-1).clamp_min(NORM_EPS)

    def _rows(self) -> torch.Tensor:
        # Made once: catch_warnings changes process-wide state, which scoring threads share.
        if self._tensor is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # read-only memmap: torch warns
                self._tensor = torch.from_numpy(self.array)
        return self._tensor


NORM_EPS = 1e-12


def normalize_rows(rows: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """L2-normalise the last axis; an all-zero row stays zero instead of becoming NaN."""
    return rows / rows.norm(dim=-1, keepdim=True).clamp_min(eps)


def searchable_mask(history_items: torch.Tensor) -> torch.Tensor:
    """True where a history item may be returned by a search: not padding (0) and not OOV (1)."""
    return history_items >= FIRST_ID_INDEX
