"""BM25 over item text (title, topics, content): the conversational evaluation's lexical baseline.

Uses ``bm25s`` (numpy, no stemming, no stop words: catalogue words are short attribute names).
Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import bm25s
import numpy as np

from muse.core.retrieval_metrics import NO_ITEM

# bm25s sets its own logger to DEBUG, so every index build would print under a root handler.
logging.getLogger("bm25s").setLevel(logging.WARNING)


class Bm25Retriever:
    """Ranks catalogue rows by BM25 of a query's words against each item's text."""

    def __init__(self, item_texts: Sequence[str]) -> None:
        if not item_texts:
            raise ValueError("BM25 needs at least one item text")
        self.size = len(item_texts)
        self.index = bm25s.BM25()
        corpus = bm25s.tokenize(list(item_texts), stopwords=None, show_progress=False)
        self.index.index(corpus, show_progress=False)

    def rank(self, queries: Sequence[str], k: int) -> np.ndarray:
        """(Q, k) int64 catalogue rows, best first; NO_ITEM past the items any query word hits."""
        if not queries:
            return np.zeros((0, k), dtype=np.int64)
        width = min(k, self.size)
        tokens = bm25s.tokenize(list(queries), stopwords=None, show_progress=False)
        rows, scores = self.index.retrieve(tokens, k=width, show_progress=False, n_threads=1)
        rows = np.where(scores > 0, rows, NO_ITEM).astype(np.int64)
        if width < k:
            rows = np.pad(rows, ((0, 0), (0, k - width)), constant_values=NO_ITEM)
        return rows
