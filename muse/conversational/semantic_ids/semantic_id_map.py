"""Items ↔ semantic IDs: each item's L codes and its collision token, and their decoder tokens.

An item's semantic ID is its L residual codes plus a final collision token (TIGER): 0 for the
first item (in row order) holding that L-code, 1, 2, … for later items sharing it, so every ID is
unique. The decoder vocabulary lays the tokens out as

    PAD = 0 (also the decoder's start token), EOS = 1,
    level ℓ's code c          → FIRST_CODE_TOKEN + ℓ·K + c     (ℓ = 0 … L − 1, K = codebook_size)
    collision token k         → FIRST_CODE_TOKEN + L·K + k     (k = 0 … max_collision)

The map is saved as a directory (an ``.npz`` of the arrays and a JSON manifest with the format's
name and version), which the retriever's bundle holds. Imports numpy only, so the server loads
it without torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from muse.core.atomic_write import atomic_file, write_text_atomic
from muse.core.errors import DataError

PAD = 0  # padding, and the decoder's start token
EOS = 1  # ends every decoded ID
FIRST_CODE_TOKEN = 2
NO_ROW = -1  # what a lookup answers for an unknown item or a token sequence no item has

SEMANTIC_IDS_FORMAT = "muse.semantic_ids"
SEMANTIC_IDS_VERSION = 1
ARRAYS_FILE = "semantic_ids.npz"
MANIFEST_FILE = "semantic_ids.json"


class SemanticIdMap:
    """Semantic IDs of N items: ``item_ids`` (N,) int64 (distinct), ``codes`` (N, L) int32 in
    [0, codebook_size), ``collision`` (N,) int32 in [0, max_collision].

    ``max_collision`` is the largest collision token the vocabulary reserves (by default the
    largest in use). ``codebooks`` (L, K, W) float32: the quantiser's codewords, when recorded.
    """

    def __init__(
        self,
        item_ids: np.ndarray,
        codes: np.ndarray,
        collision: np.ndarray,
        codebook_size: int,
        max_collision: int | None = None,
        codebooks: np.ndarray | None = None,
    ) -> None:
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        self.codes = np.asarray(codes, dtype=np.int32)
        self.collision = np.asarray(collision, dtype=np.int32)
        self.codebook_size = int(codebook_size)
        largest = int(self.collision.max()) if self.collision.size else 0
        self.max_collision = largest if max_collision is None else int(max_collision)
        self.codebooks = None if codebooks is None else np.asarray(codebooks, dtype=np.float32)
        self._check()
        self._sorted_keys: np.ndarray | None = None
        self._key_rows: np.ndarray | None = None
        self._row_of_id = np.argsort(self.item_ids, kind="stable")
        self._sorted_ids = self.item_ids[self._row_of_id]

    @classmethod
    def from_codes(
        cls,
        item_ids: np.ndarray,
        codes: np.ndarray,
        codebook_size: int,
        codebooks: np.ndarray | None = None,
    ) -> SemanticIdMap:
        """The map of items with ``codes`` (N, L), collision tokens numbered in row order."""
        return cls(item_ids, codes, collision_indices(codes), codebook_size, codebooks=codebooks)

    @property
    def size(self) -> int:
        """N, the number of items."""
        return int(self.item_ids.size)

    @property
    def levels(self) -> int:
        """L, the number of codes before the collision token."""
        return int(self.codes.shape[1])

    @property
    def id_length(self) -> int:
        """L + 1 tokens per item (without EOS)."""
        return self.levels + 1

    @property
    def collision_offset(self) -> int:
        """The token of collision index 0."""
        return FIRST_CODE_TOKEN + self.levels * self.codebook_size

    @property
    def vocab_size(self) -> int:
        """Tokens in the decoder vocabulary: PAD, EOS, L·K code tokens, the collision tokens."""
        return self.collision_offset + self.max_collision + 1

    def level_token_range(self, level: int) -> tuple[int, int]:
        """[first, stop) of level ``level``'s tokens (``level = L`` is the collision token)."""
        if not 0 <= level <= self.levels:
            raise ValueError(f"level must be in 0..{self.levels}, got {level}")
        if level == self.levels:
            return self.collision_offset, self.vocab_size
        first = FIRST_CODE_TOKEN + level * self.codebook_size
        return first, first + self.codebook_size

    def tokens(self) -> np.ndarray:
        """(N, L + 1) int64: every item's code tokens, then its collision token."""
        offsets = FIRST_CODE_TOKEN + np.arange(self.levels, dtype=np.int64) * self.codebook_size
        return np.concatenate(
            [
                self.codes.astype(np.int64) + offsets,
                (self.collision_offset + self.collision)[:, None],
            ],
            axis=1,
        ).astype(np.int64)

    def rows_of_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """(Q, L + 1) token sequences → (Q,) int64 row of the item with that ID, NO_ROW if none
        (a token out of its level's range included)."""
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1, self.id_length)
        offsets = FIRST_CODE_TOKEN + np.arange(self.id_length, dtype=np.int64) * self.codebook_size
        values = tokens - offsets
        ranges = np.array([self.codebook_size] * self.levels + [self.max_collision + 1])
        valid = ((values >= 0) & (values < ranges)).all(axis=1)
        rows = np.full(tokens.shape[0], NO_ROW, dtype=np.int64)
        if not valid.any() or self.size == 0:
            return rows
        sorted_keys, key_rows = self._keys()
        wanted = _row_keys(values[valid].astype(np.int32))
        positions = np.minimum(np.searchsorted(sorted_keys, wanted), self.size - 1)
        found = sorted_keys[positions] == wanted
        rows[np.flatnonzero(valid)] = np.where(found, key_rows[positions], NO_ROW)
        return rows

    def row_of_tokens(self, tokens: np.ndarray | list[int]) -> int:
        """The row of the item whose ID is ``tokens`` (L + 1,), or NO_ROW."""
        sequence = np.asarray(tokens, dtype=np.int64)
        if sequence.shape != (self.id_length,):
            return NO_ROW
        return int(self.rows_of_tokens(sequence[None, :])[0])

    def rows_of_items(self, item_ids: np.ndarray) -> np.ndarray:
        """(Q,) item ids → (Q,) int64 rows; NO_ROW for an id the map lacks."""
        ids = np.asarray(item_ids, dtype=np.int64)
        if self.size == 0:
            return np.full(ids.shape, NO_ROW, dtype=np.int64)
        positions = np.minimum(np.searchsorted(self._sorted_ids, ids), self.size - 1)
        return np.where(self._sorted_ids[positions] == ids, self._row_of_id[positions], NO_ROW)

    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the arrays and the manifest (last, with the arrays' sha256) into ``directory``;
        ``extra`` is merged into the manifest (e.g. the quantiser's config). Returns the manifest."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "item_ids": self.item_ids,
            "codes": self.codes,
            "collision": self.collision,
        }
        if self.codebooks is not None:
            arrays["codebooks"] = self.codebooks
        with atomic_file(directory / ARRAYS_FILE) as staging, open(staging, "wb") as handle:
            # numpy's stubs take **arrays for the allow_pickle keyword.
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        manifest = {
            **(extra or {}),
            "format": SEMANTIC_IDS_FORMAT,
            "version": SEMANTIC_IDS_VERSION,
            "items": self.size,
            "levels": self.levels,
            "codebook_size": self.codebook_size,
            "max_collision": self.max_collision,
            "vocab_size": self.vocab_size,
            "arrays": ARRAYS_FILE,
            "arrays_sha256": _sha256(directory / ARRAYS_FILE),
        }
        write_text_atomic(directory / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
        return manifest

    @classmethod
    def load(cls, directory: str | Path) -> SemanticIdMap:
        """Read a map :meth:`save` wrote; DataError (naming the file) if it is missing, of another
        format or version, corrupt, or inconsistent with its manifest."""
        directory = Path(directory)
        manifest = read_semantic_id_manifest(directory)
        arrays_path = directory / ARRAYS_FILE
        if not arrays_path.is_file():
            raise DataError(arrays_path, "file not found")
        if _sha256(arrays_path) != manifest.get("arrays_sha256"):
            raise DataError(arrays_path, f"sha256 differs from {MANIFEST_FILE}'s: file corrupt")
        try:
            with np.load(arrays_path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            id_map = cls(
                arrays["item_ids"],
                arrays["codes"],
                arrays["collision"],
                int(manifest["codebook_size"]),
                int(manifest["max_collision"]),
                arrays.get("codebooks"),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(arrays_path, f"not a valid semantic ID map: {error}") from error
        if (id_map.size, id_map.levels) != (manifest["items"], manifest["levels"]):
            raise DataError(
                arrays_path,
                f"holds {id_map.size} items × {id_map.levels} levels, but {MANIFEST_FILE} says "
                f"{manifest['items']} × {manifest['levels']}",
            )
        return id_map

    def _keys(self) -> tuple[np.ndarray, np.ndarray]:
        """Every item's (codes, collision) as one sortable key, sorted, and the row of each."""
        if self._sorted_keys is None or self._key_rows is None:
            keys = _row_keys(np.concatenate([self.codes, self.collision[:, None]], axis=1))
            self._key_rows = np.argsort(keys, kind="stable")
            self._sorted_keys = keys[self._key_rows]
        return self._sorted_keys, self._key_rows

    def _check(self) -> None:
        count = self.item_ids.size
        if self.item_ids.ndim != 1:
            raise ValueError(f"item_ids must be 1-D, got shape {self.item_ids.shape}")
        if self.codes.ndim != 2 or self.codes.shape[0] != count or self.codes.shape[1] < 1:
            raise ValueError(f"codes must be ({count}, L ≥ 1), got shape {self.codes.shape}")
        if self.collision.shape != (count,):
            raise ValueError(f"collision must be ({count},), got shape {self.collision.shape}")
        if self.codebook_size < 1:
            raise ValueError(f"codebook_size must be ≥ 1, got {self.codebook_size}")
        if self.codes.size and (self.codes.min() < 0 or self.codes.max() >= self.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.codebook_size})")
        if self.collision.size and self.collision.min() < 0:
            raise ValueError("collision indices must be ≥ 0")
        if self.collision.size and self.collision.max() > self.max_collision:
            raise ValueError(
                f"collision index {int(self.collision.max())} exceeds max_collision "
                f"{self.max_collision}"
            )
        if np.unique(self.item_ids).size != count:
            raise ValueError("item ids must be distinct")
        keys = _row_keys(np.concatenate([self.codes, self.collision[:, None]], axis=1))
        if np.unique(keys).size != count:
            raise ValueError("two items share codes and collision token: IDs must be unique")
        if self.codebooks is not None and (
            self.codebooks.ndim != 3
            or self.codebooks.shape[:2] != (self.levels, self.codebook_size)
        ):
            raise ValueError(
                f"codebooks must be ({self.levels}, {self.codebook_size}, W), got shape "
                f"{self.codebooks.shape}"
            )


def collision_indices(codes: np.ndarray) -> np.ndarray:
    """(N, L) codes → (N,) int32: 0 for the first row holding a code, 1, 2, … for later ones."""
    codes = np.asarray(codes)
    count = codes.shape[0]
    if count == 0:
        return np.zeros(0, dtype=np.int32)
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")  # rows grouped by code, in row order within
    group_start = np.cumsum(counts) - counts
    indices = np.empty(count, dtype=np.int32)
    indices[order] = np.arange(count) - group_start[inverse[order]]
    return indices


def read_semantic_id_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a saved map, its format name and version checked (DataError otherwise)."""
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise DataError(path, "file not found: not a semantic ID map directory")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(path, f"not valid JSON: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != SEMANTIC_IDS_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise DataError(path, f"format is {found!r}, expected {SEMANTIC_IDS_FORMAT!r}")
    if manifest.get("version") != SEMANTIC_IDS_VERSION:
        raise DataError(
            path,
            f"format version {manifest.get('version')!r}, this muse reads version "
            f"{SEMANTIC_IDS_VERSION}",
        )
    missing = [
        key
        for key in ("items", "levels", "codebook_size", "max_collision", "arrays_sha256")
        if key not in manifest
    ]
    if missing:
        raise DataError(path, f"manifest lacks {', '.join(missing)}")
    return manifest


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """(N, C) int32 rows → (N,) opaque keys that compare (and sort) whole rows at once."""
    rows = np.ascontiguousarray(rows, dtype=np.int32)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))[:, 0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
