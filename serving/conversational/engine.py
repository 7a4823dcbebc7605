"""The transport-free conversational engine: sessions, routing, rewrite, retrieve, rerank.

Request path of ``converse``: validate → route the caller to a bundle (the experiment assignment
of ``user_id``, which may also set the beams and α, or a bundle pinned by the context) → the
dialogue so far (the session's, or the one the request carries) plus this turn → on a model
thread: rewrite, picture features, trie-constrained beam search, TTR → store the session with
the assistant's reply naming the top item. The models run in torch (beam search with the trie
walk has no ONNX export); torch releases the GIL, so model threads run side by side.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from features.dialogues import Turn
from features.item_catalogue import ItemCatalogue, read_items
from muse.conversational.export.conversational_bundle_reader import (
    ConversationalBundle,
    load_conversational_bundle,
)
from muse.conversational.models.prefix_trie import PrefixTrie
from muse.conversational.models.query_rewriter import QueryRewriter, build_query_rewriter
from muse.conversational.models.rewritten_query import RewrittenQuery
from muse.conversational.models.test_time_reranking import rerank
from muse.conversational.query_inputs import PictureError, QueryInputs
from muse.conversational.retrieval_pipeline import ConversationalRetrieval
from muse.core.errors import DataError
from serving.conversational.conversational_config import ConversationalConfig, TorchDevice
from serving.conversational.requests import (
    MODEL_CONTEXT_KEY,
    ConverseAnswer,
    ConverseQuery,
    RecommendedItems,
    validate_converse_query,
)
from serving.conversational.session_store import SessionStore
from serving.errors import DeadlineExpired, InvalidArgument, ModelNotFound, NotReady
from serving.experiments.assignment import Assigner
from serving.experiments.validation import load_validated
from serving.metrics import ServingMetrics
from serving.ranking.requests import Assignment

logger = logging.getLogger("muse.serving")
ASSISTANT_REPLY = "How about the {title}?"  # the synthetic dialogues' first assistant phrasing


class PictureCache:
    """Vision features of catalogue pictures, computed on first use; LRU over ``capacity`` items."""

    def __init__(
        self, catalogue: ItemCatalogue, inputs_of: QueryInputs | None, capacity: int
    ) -> None:
        self.catalogue = catalogue
        self.inputs: QueryInputs | None = inputs_of
        self.capacity = capacity
        self._held: collections.OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def __call__(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, P, C) patches and (M, C) pooled of catalogue ``rows`` (M,)."""
        inputs = self.inputs
        assert inputs is not None
        with self._lock:
            missing = [row for row in dict.fromkeys(rows.tolist()) if row not in self._held]
        if missing:
            size = inputs.vision.config.image_size
            pixels = []
            for row in missing:
                image = self.catalogue.image(row)
                if image.size != (size, size):
                    image = image.resize((size, size), Image.Resampling.BILINEAR)
                array = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
                pixels.append(torch.from_numpy(np.ascontiguousarray(array)).float() / 255.0)
            device = next(inputs.vision.parameters()).device
            with torch.no_grad():
                normalised = (torch.stack(pixels) - inputs.mean) / inputs.std
                computed = inputs.vision(normalised.to(device))
            with self._lock:
                for j, row in enumerate(missing):
                    self._held[row] = (
                        computed.patches[j].float().cpu(),
                        computed.pooled[j].float().cpu(),
                    )
                while len(self._held) > self.capacity:
                    self._held.popitem(last=False)
        with self._lock:
            found = []
            for row in rows.tolist():
                held = self._held.get(row)
                if held is None:  # evicted by a concurrent request: recompute alone
                    return self(rows)
                self._held.move_to_end(row)
                found.append(held)
        return torch.stack([f[0] for f in found]), torch.stack([f[1] for f in found])


class LoadedModel(NamedTuple):
    """One bundle ready to answer."""

    bundle: ConversationalBundle
    retrieval: ConversationalRetrieval
    rewriter: QueryRewriter
    item_row: dict[int, int]


class ConversationalEngine:
    """Answers Converse from loaded conversational bundles; knows nothing about gRPC."""

    def __init__(self, config: ConversationalConfig, metrics: ServingMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.ready = False
        self.models: dict[str, LoadedModel] = {}
        self.sessions = SessionStore(
            config.max_sessions, config.session_ttl_seconds, config.max_session_turns
        )
        self._assigner: Assigner | None = None
        self._threads = ThreadPoolExecutor(config.workers, thread_name_prefix="converse")
        self.catalogue: ItemCatalogue | None = None

    def device(self) -> torch.device:
        wanted = self.config.device
        if wanted is TorchDevice.CUDA or (wanted is TorchDevice.AUTO and torch.cuda.is_available()):
            return torch.device("cuda")
        return torch.device("cpu")

    def load(self) -> None:
        """Load every bundle the config needs and the catalogue; blocking."""
        config = self.config
        torch.set_num_threads(config.torch_threads)
        names: tuple[str, ...] = (config.default_bundle,)
        if config.experiments is not None:
            self._assigner = Assigner(load_validated(config.experiments, config.bundle_root))
            names = self._assigner.bundles()
        self.catalogue = read_items(Path(config.catalogue) / "items.parquet")
        device = self.device()
        for name in names:
            self.models[name] = self._load_model(config.bundle_root / name, device)
            logger.info(
                "loaded conversational bundle",
                extra={
                    "bundle": name,
                    "version": self.models[name].bundle.version,
                    "device": str(device),
                },
            )

    def _load_model(self, path: Path, device: torch.device) -> LoadedModel:
        catalogue = self.catalogue
        assert catalogue is not None
        bundle = load_conversational_bundle(path, device)
        catalogue_row = {int(i): row for row, i in enumerate(catalogue.item_ids.tolist())}
        unknown = [int(i) for i in bundle.item_ids.tolist() if int(i) not in catalogue_row]
        if unknown:
            raise DataError(
                path,
                f"{len(unknown)} of the bundle's items are not in the catalogue "
                f"{self.config.catalogue} (e.g. {unknown[0]}): serve the catalogue it was trained on",
            )
        item_row = {int(i): row for row, i in enumerate(bundle.item_ids.tolist())}
        recipe = bundle.recipe
        from muse.item2item.models.prompt import ItemPrompt

        prompt = ItemPrompt(
            recipe.encoder.prompt, bundle.tokenizer, recipe.encoder.sentence.max_tokens
        )
        # Pictures are looked up by catalogue row; the bundle's rows map onto the catalogue's.
        cache = PictureCache(catalogue, None, self.config.picture_cache_items)
        inputs = QueryInputs(
            bundle.tokenizer,
            prompt,
            bundle.vision,
            cache,
            catalogue_row.__getitem__,
            recipe.image_mean,
            recipe.image_std,
        )
        cache.inputs = inputs
        tokens = bundle.semantic_ids.tokens()[bundle.semantic_ids.rows_of_items(bundle.item_ids)]
        trie = PrefixTrie.from_sequences(np.asarray(tokens, dtype=np.int64))
        retrieval = ConversationalRetrieval(
            bundle.retriever, bundle.encoder, inputs, trie, bundle.item_embeddings, device
        )
        rewriter = build_query_rewriter(recipe.rewriter, bundle.tokenizer, device)
        return LoadedModel(bundle, retrieval, rewriter, item_row)

    def start(self) -> None:
        self.ready = True

    async def close(self) -> None:
        self.ready = False
        self._threads.shutdown(wait=True)

    async def converse(self, query: ConverseQuery, deadline: float | None) -> ConverseAnswer:
        """The items that fit the dialogue so far; raises a :mod:`serving.errors` error."""
        if not self.ready:
            raise NotReady("server is not ready (starting or shutting down)")
        config = self.config
        validate_converse_query(query, config.max_k, config.max_text_chars)
        name, assignments, beams, alpha = self._route(query)
        model = self.models[name]
        beams = max(beams, query.k)
        if beams > config.max_beams:
            raise InvalidArgument("k", f"needs {beams} beams; the maximum is {config.max_beams}")
        catalogue = self.catalogue
        assert catalogue is not None
        if query.image_item_id and query.image_item_id not in model.item_row:
            raise InvalidArgument(
                "image_item_id", f"item {query.image_item_id} is not in the catalogue"
            )
        earlier = (
            query.dialogue if query.dialogue is not None else self.sessions.turns(query.session_id)
        )
        turn = Turn(
            role="user",
            text=query.text,
            image_item_id=query.image_item_id or None,
            image=query.image or None,
            rewrite=None,
            rewrite_image_item_id=None,
        )
        turns = (*earlier, turn)
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExpired("deadline passed before the models ran")
        loop = asyncio.get_running_loop()
        rewritten, items = await loop.run_in_executor(
            self._threads, self._answer, model, turns, beams, alpha, query.k
        )
        session_turns = len(turns)
        if query.dialogue is None:
            reply = Turn(
                role="assistant",
                text=ASSISTANT_REPLY.format(title=items.titles[0]) if items.titles else "",
                image_item_id=int(items.item_ids[0]) if items.item_ids.size else None,
                image=None,
                rewrite=None,
                rewrite_image_item_id=None,
            )
            kept = (*turns, reply) if reply.text else turns
            self.sessions.store(query.session_id, kept)
            session_turns = min(len(kept), config.max_session_turns)
        return ConverseAnswer(
            items=items,
            rewritten_query=rewritten.text,
            query_image_item_id=rewritten.image_item_id or 0,
            model_version=model.bundle.version,
            assignments=assignments,
            beams=beams,
            alpha=alpha,
            session_turns=session_turns,
        )

    def _answer(
        self, model: LoadedModel, turns: tuple[Turn, ...], beams: int, alpha: float, k: int
    ) -> tuple[RewrittenQuery, RecommendedItems]:
        """Rewrite, retrieve and rerank one turn (on a model thread)."""
        rewritten = model.rewriter.rewrite([turns])[0]
        try:
            candidates, _ = model.retrieval.candidates([rewritten], beams)
        except PictureError as error:
            raise InvalidArgument("image", str(error)) from None
        ranked = rerank(candidates.rows, candidates.log_probs, candidates.relevance, alpha)
        order = ranked.rows[0]
        keep = order[order >= 0][:k]
        position = {int(row): j for j, row in enumerate(candidates.rows[0].tolist())}
        columns = [position[int(row)] for row in keep.tolist()]
        bundle = model.bundle
        items = RecommendedItems(
            item_ids=bundle.item_ids[keep].astype(np.int64),
            scores=ranked.scores[0][: keep.size].astype(np.float32),
            log_probs=candidates.log_probs[0][columns].astype(np.float32),
            cosines=candidates.relevance[0][columns].astype(np.float32),
            titles=[bundle.item_titles[row] for row in keep.tolist()],
        )
        return rewritten, items

    def _route(self, query: ConverseQuery) -> tuple[str, tuple[Assignment, ...], int, float]:
        pinned = query.context.get(MODEL_CONTEXT_KEY)
        if pinned is not None:
            if pinned not in self.models:
                raise ModelNotFound(
                    f"context[{MODEL_CONTEXT_KEY!r}]: no loaded conversational bundle {pinned!r} "
                    f"(loaded: {', '.join(sorted(self.models))})"
                )
            recipe = self.models[pinned].bundle.recipe
            return pinned, (), recipe.beams, recipe.alpha
        if self._assigner is None:
            recipe = self.models[self.config.default_bundle].bundle.recipe
            return self.config.default_bundle, (), recipe.beams, recipe.alpha
        routing = self._assigner.route(query.user_id)
        recipe = self.models[routing.bundle].bundle.recipe
        assignments = tuple(
            Assignment(a.layer, a.experiment or "", a.variant) for a in routing.assignments
        )
        beams = routing.overrides.beams or recipe.beams
        alpha = (
            routing.overrides.ttr_alpha if routing.overrides.ttr_alpha is not None else recipe.alpha
        )
        return routing.bundle, assignments, beams, alpha
