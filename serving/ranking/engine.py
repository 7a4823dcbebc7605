"""The transport-free ranking engine: routing, validation, micro-batched scoring, appends.

Request path of ``score``: validate → route the user to a variant (experiment assignment, or a
bundle pinned by the request context) → queue for the scoring threads. The scoring threads run
micro-batches (see :mod:`serving.micro_batcher`); per request it reads the user's history from
the behaviour store, fetches the gathered, normalised history embeddings through the per-user
cache, runs the GSU search once for all candidates, and builds the graph inputs; then one
onnxruntime call scores every request of the batch that uses the same bundle and K.

Work for a request whose caller has gone (deadline passed, RPC cancelled) is skipped at each
stage and counted in ``muse_requests_skipped``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from muse.core.errors import DataError
from muse.export.bundle_format import sha256_of
from muse.ranking.models.behaviour_selection import BehaviourSelection
from muse.ranking.models.ranking_config import SearchKind
from muse.search import EmbeddingTable
from muse.search.history_cache import HistoryCache, HistoryCacheConfig
from muse.search.prepared_history import PreparedHistory, prepare_from_table
from serving.behaviour_store import BehaviourEvent, BehaviourStore
from serving.behaviour_store import UserHistory as StoredHistory
from serving.errors import DeadlineExpired, ModelNotFound, NotReady, VariantUnavailable
from serving.experiments.assignment import Assigner
from serving.experiments.assignment import Assignment as ExperimentAssignment
from serving.experiments.experiment_config import VariantOverrides
from serving.experiments.validation import load_validated
from serving.exposure_log import ExposureLog
from serving.local_behaviour_store import LocalBehaviourStore
from serving.metrics import ServingMetrics
from serving.micro_batcher import MicroBatcher, PendingJob
from serving.model_bundle import ModelBundle
from serving.ranking.metrics import RankingMetrics
from serving.ranking.request_features import (
    Candidates,
    UserHistory,
    build_request_features,
    build_request_inputs,
    graph_feeds,
)
from serving.ranking.requests import (
    MODEL_CONTEXT_KEY,
    AppendAnswer,
    AppendQuery,
    Assignment,
    ScoreAnswer,
    ScoreQuery,
    validate_append_query,
    validate_score_query,
)
from serving.serving_config import ServingConfig

logger = logging.getLogger("muse.serving")


class ScoreJob(NamedTuple):
    """A validated, routed score request waiting for a scoring thread."""

    query: ScoreQuery
    bundle: ModelBundle
    top_k: int
    max_history_length: int
    assignments: tuple[ExperimentAssignment, ...]
    variant: str


class RankingEngine:
    """Scores requests and appends behaviours; knows nothing about gRPC."""

    def __init__(self, config: ServingConfig, metrics: ServingMetrics) -> None:
        """``metrics``: the server's; the engine registers its own metrics in its registry."""
        self.config = config
        self.metrics = RankingMetrics(metrics.registry)
        self.ready = False
        self.bundles: dict[str, ModelBundle] = {}
        self._tables: dict[str, EmbeddingTable] = {}
        # Each bundle's first stage: the model's own selection module, built from its recipe.
        self._selections: dict[str, BehaviourSelection] = {}
        self._assigner: Assigner | None = None
        self._store: BehaviourStore | None = None
        self._exposures: ExposureLog | None = None
        self._cache = HistoryCache(HistoryCacheConfig(max_bytes=config.history_cache_bytes))
        self._scoring_threads = ThreadPoolExecutor(
            config.batching.workers, thread_name_prefix="scoring"
        )
        self._append_threads = ThreadPoolExecutor(2, thread_name_prefix="append")
        self._batcher: MicroBatcher[ScoreJob] = MicroBatcher(
            self._run_batch,
            self._scoring_threads,
            max_batch_weight=config.batching.max_batch_candidates,
            workers=config.batching.workers,
            on_skip=lambda reason: self.metrics.requests_skipped.labels(reason).inc(),
            on_batch=self.metrics.batch_requests.observe,
        )

    # ---- lifecycle -------------------------------------------------------------------------

    def load(self) -> None:
        """Load every bundle, the behaviour store and the experiment config; warm up. Blocking.

        The experiment config, the bundle directories and the store's dataset are checked first,
        and nothing is logged until everything has loaded, so bad input fails with one error;
        :meth:`close` releases what a failed load opened.
        """
        config = self.config
        torch.set_num_threads(config.torch_threads)
        names: tuple[str, ...] = (config.default_bundle,)
        if config.experiments is not None:
            # Also checks that every bundle it names is a directory under the bundle root.
            experiments = load_validated(config.experiments, config.bundle_root)
            self._assigner = Assigner(experiments)
            names = self._assigner.bundles()
        else:
            if not (Path(config.bundle_root) / config.default_bundle).is_dir():
                raise DataError(
                    config.bundle_root,
                    f"no model bundle {config.default_bundle!r} there (the serving config's "
                    "default_bundle; there is no experiments config)",
                )
        self._store = LocalBehaviourStore(config.store)
        for name in names:
            bundle = ModelBundle.load(
                config.bundle_root / name, config.onnx_threads, config.verify_item_table
            )
            self.bundles[name] = bundle
            table = bundle.item_table
            if table.path not in self._tables:
                self._tables[table.path] = EmbeddingTable(
                    np.load(table.path, mmap_mode="r"), table.scale
                )
            self._selections[name] = BehaviourSelection(
                bundle.recipe.selection, self._tables[table.path], 0, table.shape[1]
            )
        self._check_vocabularies_match_store()
        for bundle in self.bundles.values():
            self._warm_up(bundle)
        if config.experiments is not None:
            self._exposures = ExposureLog(config.exposure_log)
        for name, bundle in self.bundles.items():
            self.metrics.models_loaded.labels(name, bundle.version).set(1)
            logger.info("loaded model bundle", extra={"bundle": name, "version": bundle.version})

    def start(self) -> None:
        """Start scoring on the running event loop; call after :meth:`load`."""
        self._batcher.start()
        self.ready = True

    async def close(self) -> None:
        """Stop taking work, finish what is queued, release the store and exposure log."""
        self.ready = False
        await self._batcher.close()
        self._scoring_threads.shutdown(wait=True)
        self._append_threads.shutdown(wait=True)
        if self._exposures is not None:
            self._exposures.close()
        if self._store is not None:
            self._store.close()

    # ---- requests ----------------------------------------------------------------------------

    async def score(self, query: ScoreQuery, deadline: float | None) -> ScoreAnswer:
        """Scores in request order; raises a :mod:`serving.errors` error for bad requests."""
        self._ensure_ready()
        validate_score_query(query, self.config.limits.max_candidates)
        job = self._route(query)
        answer: ScoreAnswer = await self._batcher.submit(
            job, weight=int(query.candidate_item_ids.size), deadline=deadline
        )
        if self._exposures is not None and job.assignments:
            self._exposures.record(query.user_id, job.assignments)
        return answer

    async def append(self, query: AppendQuery) -> AppendAnswer:
        """Make the behaviours durable, then answer with the user's new history version."""
        self._ensure_ready()
        validate_append_query(query)
        assert self._store is not None
        events = [
            BehaviourEvent(int(item), int(timestamp), int(category) if given else None)
            for item, timestamp, category, given in zip(
                query.item_ids,
                query.timestamps,
                query.category_ids,
                query.category_given,
                strict=True,
            )
        ]
        loop = asyncio.get_running_loop()
        version = await loop.run_in_executor(
            self._append_threads, self._store.append, query.user_id, events
        )
        self.metrics.behaviours_appended.inc(len(events))
        return AppendAnswer(accepted=len(events), history_version=int(version))

    def _ensure_ready(self) -> None:
        if not self.ready:
            raise NotReady("server is not ready (starting or shutting down)")

    def _route(self, query: ScoreQuery) -> ScoreJob:
        pinned = query.context.get(MODEL_CONTEXT_KEY)
        overrides = VariantOverrides()
        assignments: tuple[ExperimentAssignment, ...] = ()
        if pinned is not None:
            if pinned not in self.bundles:
                raise ModelNotFound(
                    f"context[{MODEL_CONTEXT_KEY!r}]: no loaded model bundle {pinned!r} "
                    f"(loaded: {', '.join(sorted(self.bundles))})"
                )
            name, variant = pinned, f"pinned:{pinned}"
        elif self._assigner is None:
            name, variant = self.config.default_bundle, "default"
        else:
            routing = self._assigner.route(query.user_id)
            name, overrides, assignments = routing.bundle, routing.overrides, routing.assignments
            variant = ",".join(assignment.label for assignment in assignments) or "default"
        bundle = self.bundles.get(name)
        if bundle is None:
            raise VariantUnavailable(
                f"variant {variant!r} names bundle {name!r}, which is not loaded"
            )
        return ScoreJob(
            query=query,
            bundle=bundle,
            top_k=overrides.gsu_top_k or bundle.recipe.selection.top_k,
            max_history_length=min(
                overrides.max_history_length or self.config.max_history_length,
                self.config.max_history_length,
            ),
            assignments=assignments,
            variant=variant,
        )

    # ---- scoring threads -----------------------------------------------------------------------

    def _run_batch(self, pending: Sequence[PendingJob[ScoreJob]]) -> list[object]:
        """Score a micro-batch (on a scoring thread); one answer or exception per job."""
        outcomes: list[object] = [None] * len(pending)
        groups: dict[tuple[str, int], list[tuple[int, dict[str, np.ndarray]]]] = {}
        for index, item in enumerate(pending):
            if self._skip_if_abandoned(item, outcomes, index):
                continue
            try:
                features = self._features(item.job)
            except Exception as error:
                outcomes[index] = error
                continue
            key = (item.job.bundle.name, features["selected_mask"].shape[1])
            groups.setdefault(key, []).append((index, features))
        for members in groups.values():
            live = [
                (index, features)
                for index, features in members
                if not self._skip_if_abandoned(pending[index], outcomes, index)
            ]
            if not live:
                continue
            bundle = pending[live[0][0]].job.bundle
            try:
                logits = bundle.run(
                    graph_feeds([features for _, features in live], bundle.takes_requests)
                )
            except Exception as error:
                for index, _ in live:
                    outcomes[index] = error
                continue
            probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
            start = 0
            for index, features in live:
                count = features["target_item"].shape[0]
                job = pending[index].job
                outcomes[index] = ScoreAnswer(
                    scores=probabilities[start : start + count].astype(np.float32),
                    model_version=bundle.version,
                    assignments=tuple(
                        Assignment(a.layer, a.experiment or "", a.variant) for a in job.assignments
                    ),
                    variant=job.variant,
                )
                start += count
                self.metrics.requests_scored.inc()
        return outcomes

    def _skip_if_abandoned(
        self, item: PendingJob[ScoreJob], outcomes: list[object], index: int
    ) -> bool:
        if not item.abandoned():
            return False
        self.metrics.requests_skipped.labels("cancelled" if item.cancelled else "deadline").inc()
        outcomes[index] = DeadlineExpired("deadline passed before the work finished")
        return True

    def _features(
        self, job: ScoreJob, stored: StoredHistory | None = None
    ) -> dict[str, np.ndarray]:
        """Graph inputs of one request, in the form its bundle's graph takes; ``stored`` defaults
        to the store's history of the user."""
        assert self._store is not None
        query, bundle = job.query, job.bundle
        if stored is None:
            stored = self._store.history(query.user_id)
        items = np.asarray(stored.items[-job.max_history_length :], dtype=np.int64)
        categories = np.asarray(stored.categories[-job.max_history_length :], dtype=np.int64)
        table = self._tables[bundle.item_table.path]
        prepared = None
        if bundle.recipe.selection.search.kind is SearchKind.MULTIMODAL_COSINE and items.size:
            prepared = self._prepared_history(table, bundle, job, stored.version, items)
        candidate_items = bundle.item_indices(query.candidate_item_ids)
        candidates = Candidates(
            items=candidate_items,
            categories=bundle.item_categories(candidate_items),
            attributes=bundle.item_attributes(candidate_items),
        )
        build = build_request_inputs if bundle.takes_requests else build_request_features
        return build(
            self._selections[bundle.name],
            UserHistory(items, categories, prepared),
            candidates,
            bundle.profile_of(query.user_id),
            job.top_k,
        )

    def _prepared_history(
        self,
        table: EmbeddingTable,
        bundle: ModelBundle,
        job: ScoreJob,
        version: int,
        items: np.ndarray,
    ) -> PreparedHistory:
        """The user's history gathered and prepared for search, through the per-user cache."""
        # Bundles on one table share entries; a shorter history cap is a different history.
        user_key = (bundle.item_table.path, job.query.user_id, job.max_history_length)
        prepared, hit = self._cache.get_or_prepare(
            user_key, version, lambda: prepare_from_table(table, torch.from_numpy(items))
        )
        (self.metrics.cache_hits if hit else self.metrics.cache_misses).inc()
        return prepared

    def _warm_up(self, bundle: ModelBundle) -> None:
        """Run one cold-user request through the whole path so the first real one is not slow."""
        probe = ScoreQuery(
            user_id=0, candidate_item_ids=bundle.item_vocabulary.raw_ids[:2].copy(), context={}
        )
        job = ScoreJob(
            probe,
            bundle,
            bundle.recipe.selection.top_k,
            self.config.max_history_length,
            (),
            "warmup",
        )
        empty = StoredHistory(np.empty(0, np.int32), np.empty(0, np.int32), 0)
        bundle.run(graph_feeds([self._features(job, empty)], bundle.takes_requests))

    def _check_vocabularies_match_store(self) -> None:
        """Bundles score store indices, so both must come from the same item/category vocabularies."""
        dataset = Path(self.config.store.dataset)
        for name in ("item", "category"):
            path = dataset / "vocab" / f"{name}.parquet"
            store_digest = sha256_of(path)
            for bundle in self.bundles.values():
                if bundle.manifest["files"].get(f"vocab/{name}.parquet") != store_digest:
                    raise DataError(
                        path,
                        f"differs from the {name} vocabulary bundle {bundle.name!r} was exported with; "
                        "export the bundle from the behaviour store's dataset",
                    )
