"""The transport-free similar-items engine: routing to an index bundle, validation, search.

Request path of ``similar``: validate → route the caller to an index bundle (the experiment
assignment of ``user_id``, or a bundle pinned by the request context) → look the query item up,
or embed a new item with the index's encoder bundle on an encoding thread (onnxruntime releases
the GIL) → search the index on a search thread (faiss releases the GIL, so searches run side by
side). A new item is not excluded from its results: a catalogue item sent as content finds itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faiss
import numpy as np

from muse.core.errors import ConfigError, DataError
from muse.export.bundle_format import MANIFEST_FILE
from muse.item2item.export.encoder_bundle_layout import INDEX_ENCODER_ENTRY
from muse.item2item.index.index_bundle import read_index_bundle
from muse.item2item.index.similar_item_index import NO_ITEM, SimilarItemIndex
from serving.errors import (
    DeadlineExpired,
    ItemNotFound,
    ModelNotFound,
    NotReady,
    VariantUnavailable,
)
from serving.experiments.assignment import Assigner
from serving.experiments.validation import load_validated
from serving.item2item.new_item_encoder import NewItemEncoder
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
        # Index bundle name → the encoder of its new items (absent: catalogue items only).
        self.encoders: dict[str, NewItemEncoder] = {}
        self._assigner: Assigner | None = None
        self._threads = ThreadPoolExecutor(config.search_threads, thread_name_prefix="similar")
        self._encode_threads = ThreadPoolExecutor(
            config.encoder_threads, thread_name_prefix="encode"
        )

    def load(self) -> None:
        """Load every index bundle the config needs and the encoder bundles they name (checksums
        verified). Blocking."""
        config = self.config
        names: tuple[str, ...] = (config.default_bundle,)
        if config.experiments is not None:
            self._assigner = Assigner(load_validated(config.experiments, config.bundle_root))
            names = self._assigner.bundles()
        unknown = sorted(set(config.encoders) - set(names))
        if unknown:
            raise ConfigError(
                f"similar_items.encoders names index bundle(s) {', '.join(unknown)} that are not "
                f"loaded (loaded: {', '.join(names)})"
            )
        faiss.omp_set_num_threads(config.faiss_threads)
        loaded: dict[str, NewItemEncoder] = {}
        for name in names:
            index, manifest = read_index_bundle(config.bundle_root / name)
            self.indexes[name] = index
            self.versions[name] = str(manifest["version"])
            encoder = self._load_encoder(name, index, manifest, loaded)
            if encoder is not None:
                self.encoders[name] = encoder
        for name, index in self.indexes.items():
            encoder = self.encoders.get(name)
            logger.info(
                "loaded index bundle",
                extra={
                    "bundle": name,
                    "version": self.versions[name],
                    "items": index.size,
                    "encoder": encoder.version if encoder is not None else None,
                    "encoder_providers": encoder.providers if encoder is not None else None,
                },
            )

    def _load_encoder(
        self,
        name: str,
        index: SimilarItemIndex,
        manifest: dict[str, Any],
        loaded: dict[str, NewItemEncoder],
    ) -> NewItemEncoder | None:
        """The encoder bundle of index bundle ``name`` (from the config, else its manifest), or
        None; bundles shared by several indexes load once. DataError when it does not fit."""
        config = self.config
        named = manifest.get(INDEX_ENCODER_ENTRY) or {}
        encoder_name = config.encoders.get(name) or named.get("name")
        if not encoder_name:
            return None
        if encoder_name not in loaded:
            loaded[encoder_name] = NewItemEncoder.load(
                config.bundle_root / encoder_name,
                config.encoder_onnx_threads,
                config.encoder_providers,
            )
        encoder = loaded[encoder_name]
        source = config.bundle_root / name / MANIFEST_FILE
        if encoder.output_dim != index.dim:
            raise DataError(
                source,
                f"the index holds vectors of width {index.dim}, but its encoder bundle "
                f"{encoder.path} embeds to width {encoder.output_dim}",
            )
        expected = named.get("version")
        if named.get("name") == encoder_name and expected and expected != encoder.version:
            raise DataError(
                source,
                f"the index was built from encoder {expected}, but {encoder.path} is "
                f"{encoder.version}",
            )
        return encoder

    def start(self) -> None:
        """Take requests; call after :meth:`load`."""
        self.ready = True

    async def close(self) -> None:
        """Stop taking requests and finish the searches under way."""
        self.ready = False
        self._encode_threads.shutdown(wait=True)
        self._threads.shutdown(wait=True)

    async def similar(self, query: SimilarQuery, deadline: float | None) -> SimilarAnswer:
        """The k most similar items; raises a :mod:`serving.errors` error for bad requests."""
        if not self.ready:
            raise NotReady("server is not ready (starting or shutting down)")
        validate_similar_query(query, self.config.max_k)
        name, assignments = self._route(query)
        index = self.indexes[name]
        version = self.versions[name]
        new_item = query.item
        encoder = None
        row = -1
        if new_item is None:
            row = int(index.rows_of(np.array([query.item_id]))[0])
            if row < 0:
                raise ItemNotFound(f"item_id: item {query.item_id} is not in index {version}")
        else:
            encoder = self.encoders.get(name)
            if encoder is None:
                raise VariantUnavailable(
                    f"item: index {version} has no encoder bundle, so it answers catalogue "
                    "items (item_id) only"
                )
            encoder.check(new_item)  # a missing field is named before any work is done
        category = None
        if query.category:
            category = index.category_code(query.category)
            if category is None:  # no item has that category: nothing qualifies
                return SimilarAnswer(
                    np.zeros(0, np.int64), np.zeros(0, np.float32), version, assignments
                )
        loop = asyncio.get_running_loop()
        if encoder is not None and new_item is not None:
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExpired("deadline passed before the encoding started")
            vector = await loop.run_in_executor(self._encode_threads, encoder.encode, [new_item])
            exclude = None
        else:
            vector, exclude = index.vectors[row : row + 1], np.array([row])
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExpired("deadline passed before the search started")
        found = await loop.run_in_executor(
            self._threads, lambda: index.search(vector, query.k, category, exclude)
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
