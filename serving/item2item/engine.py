"""The transport-free similar-items engine: routing to an index bundle, validation, search.

Request path of ``similar``: validate → route the caller to an index bundle (the experiment
assignment of ``user_id``, or a bundle pinned by the request context) → look the query item up
→ search the index on a search thread (faiss releases the GIL, so searches run side by side).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import faiss
import numpy as np

from muse.item2item.index.index_bundle import read_index_bundle
from muse.item2item.index.similar_item_index import NO_ITEM, SimilarItemIndex
from serving.errors import DeadlineExpired, ItemNotFound, ModelNotFound, NotReady
from serving.experiments.assignment import Assigner
from serving.experiments.validation import load_validated
from serving.item2item.requests import (
    INDEX_CONTEXT_KEY,
    SimilarAnswer,
    SimilarQuery,
    validate_similar_query,
)
from serving.item2item.similar_items_config import SimilarItemsConfig
from serving.metrics import ServingMetrics
from serving.ranking.requests import Assignment

logger = logging.getLogger("muse.serving")


class SimilarItemsEngine:
    """Answers SimilarItems from loaded index bundles; knows nothing about gRPC."""

    def __init__(self, config: SimilarItemsConfig, metrics: ServingMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.ready = False
        self.indexes: dict[str, SimilarItemIndex] = {}
        self.versions: dict[str, str] = {}
        self._assigner: Assigner | None = None
        self._threads = ThreadPoolExecutor(config.search_threads, thread_name_prefix="similar")

    def load(self) -> None:
        """Load every index bundle the config needs (checksums verified). Blocking."""
        config = self.config
        names: tuple[str, ...] = (config.default_bundle,)
        if config.experiments is not None:
            self._assigner = Assigner(load_validated(config.experiments, config.bundle_root))
            names = self._assigner.bundles()
        faiss.omp_set_num_threads(config.faiss_threads)
        for name in names:
            index, manifest = read_index_bundle(config.bundle_root / name)
            self.indexes[name] = index
            self.versions[name] = str(manifest["version"])
        for name, index in self.indexes.items():
            logger.info(
                "loaded index bundle",
                extra={"bundle": name, "version": self.versions[name], "items": index.size},
            )

    def start(self) -> None:
        """Take requests; call after :meth:`load`."""
        self.ready = True

    async def close(self) -> None:
        """Stop taking requests and finish the searches under way."""
        self.ready = False
        self._threads.shutdown(wait=True)

    async def similar(self, query: SimilarQuery, deadline: float | None) -> SimilarAnswer:
        """The k most similar items; raises a :mod:`serving.errors` error for bad requests."""
        if not self.ready:
            raise NotReady("server is not ready (starting or shutting down)")
        validate_similar_query(query, self.config.max_k)
        name, assignments = self._route(query)
        index = self.indexes[name]
        version = self.versions[name]
        row = int(index.rows_of(np.array([query.item_id]))[0])
        if row < 0:
            raise ItemNotFound(f"item_id: item {query.item_id} is not in index {version}")
        category = None
        if query.category:
            category = index.category_code(query.category)
            if category is None:  # no item has that category: nothing qualifies
                return SimilarAnswer(
                    np.zeros(0, np.int64), np.zeros(0, np.float32), version, assignments
                )
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExpired("deadline passed before the search started")
        found = await asyncio.get_running_loop().run_in_executor(
            self._threads,
            lambda: index.search(index.vectors[row : row + 1], query.k, category, np.array([row])),
        )
        kept = found.ids[0] != NO_ITEM
        return SimilarAnswer(found.ids[0][kept], found.scores[0][kept], version, assignments)

    def _route(self, query: SimilarQuery) -> tuple[str, tuple[Assignment, ...]]:
        pinned = query.context.get(INDEX_CONTEXT_KEY)
        if pinned is not None:
            if pinned not in self.indexes:
                raise ModelNotFound(
                    f"context[{INDEX_CONTEXT_KEY!r}]: no loaded index bundle {pinned!r} "
                    f"(loaded: {', '.join(sorted(self.indexes))})"
                )
            return pinned, ()
        if self._assigner is None:
            return self.config.default_bundle, ()
        routing = self._assigner.route(query.user_id)
        assignments = tuple(
            Assignment(a.layer, a.experiment or "", a.variant) for a in routing.assignments
        )
        return routing.bundle, assignments
