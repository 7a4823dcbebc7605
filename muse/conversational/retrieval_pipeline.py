"""The conversational retrieval after the rewriter: picture features → beams → TTR, per batch.

The same object answers evaluation queries and the server's Converse requests, so both measure
one code path. Stages are timed apart (encode: picture features and the query's NoteLLM-2
embedding; generate: the trie-constrained beam search; rerank: scoring the beams).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from muse.conversational.models.generative_retriever import GenerativeRetriever, QueryBatch
from muse.conversational.models.llm_judge import LlmJudge
from muse.conversational.models.prefix_trie import PrefixTrie
from muse.conversational.models.rewritten_query import RewrittenQuery
from muse.conversational.models.test_time_reranking import (
    Reranked,
    cosine_relevance,
    rerank,
)
from muse.conversational.query_inputs import QueryFeatures, QueryInputs
from muse.item2item.batch import item_batch_to
from muse.item2item.models.item_encoder import ItemEncoder


class Candidates(NamedTuple):
    """What the retriever proposed for B queries, before reranking.

    rows: (B, K) int64 catalogue rows, best log-probability first (−1 where fewer than K);
    log_probs: (B, K) float32 log p(ID | query); query_embeddings: (B, D) float32 the queries'
    NoteLLM-2 embeddings (unit norm); relevance: (B, K) float32 their cosines with the rows.
    """

    rows: np.ndarray
    log_probs: np.ndarray
    query_embeddings: np.ndarray
    relevance: np.ndarray


class StageSeconds(NamedTuple):
    """Wall seconds of one batch's stages."""

    encode: float
    generate: float
    rerank: float


class ConversationalRetrieval:
    """Retriever, encoder, trie and the catalogue's NoteLLM-2 embeddings (N, D), in eval mode.

    Relevance is the cosine of NoteLLM-2 embeddings, or, with a ``judge``, its log-odds over the
    candidates' ``item_texts`` (one per catalogue row).
    """

    def __init__(
        self,
        retriever: GenerativeRetriever,
        encoder: ItemEncoder,
        query_inputs: QueryInputs,
        trie: PrefixTrie,
        item_embeddings: np.ndarray,
        device: torch.device | None = None,
        judge: LlmJudge | None = None,
        item_texts: Sequence[str] = (),
    ) -> None:
        if judge is not None and len(item_texts) != len(item_embeddings):
            raise ValueError("an LLM judge needs one item text per catalogue item")
        self.judge = judge
        self.item_texts = list(item_texts)
        self.retriever = retriever
        self.encoder = encoder
        self.query_inputs = query_inputs
        self.trie = trie
        self.item_embeddings = np.ascontiguousarray(item_embeddings, dtype=np.float32)
        self.device = device or torch.device("cpu")

    @torch.no_grad()
    def embed_queries(self, queries: Sequence[RewrittenQuery]) -> np.ndarray:
        """(B, D) float32 unit-norm NoteLLM-2 embeddings of the rewritten queries."""
        features = self.query_inputs.features(queries)
        return self._embed(queries, features)

    def _embed(self, queries: Sequence[RewrittenQuery], features: QueryFeatures) -> np.ndarray:
        batch = self.query_inputs.encoder_batch(queries, features)
        batch = item_batch_to(batch, self.device)
        return self.encoder(batch).multimodal.float().cpu().numpy()

    @torch.no_grad()
    def candidates(
        self, queries: Sequence[RewrittenQuery], beams: int
    ) -> tuple[Candidates, StageSeconds]:
        """The top ``beams`` valid IDs of each query, with the scores TTR combines."""
        started = time.perf_counter()
        features = self.query_inputs.features(queries)
        query_embeddings = self._embed(queries, features)
        encoded = time.perf_counter()
        batch = self.query_inputs.retriever_batch(queries, features)
        generated = self.retriever.generate(_query_batch_to(batch, self.device), self.trie, beams)
        rows = generated.rows.cpu().numpy() if torch.is_tensor(generated.rows) else generated.rows
        log_probs = (
            generated.log_probs.cpu().numpy()
            if torch.is_tensor(generated.log_probs)
            else generated.log_probs
        )
        generated_at = time.perf_counter()
        if self.judge is None:
            relevance = cosine_relevance(rows, query_embeddings, self.item_embeddings)
        else:  # the judge reads each candidate's text; missing beams keep relevance 0
            texts = [[self.item_texts[r] for r in row.tolist() if r >= 0] for row in rows]
            judged = self.judge.score([q.text for q in queries], texts)
            relevance = np.zeros(rows.shape, dtype=np.float32)
            relevance[:, : judged.shape[1]] = judged
        ranked = time.perf_counter()
        return (
            Candidates(
                np.asarray(rows, np.int64),
                np.asarray(log_probs, np.float32),
                query_embeddings,
                relevance,
            ),
            StageSeconds(encoded - started, generated_at - encoded, ranked - generated_at),
        )

    def dense_ranking(self, query_embeddings: np.ndarray, k: int) -> np.ndarray:
        """(B, k) int64 catalogue rows by cosine with each query (exact, the dense baseline)."""
        scores = query_embeddings @ self.item_embeddings.T  # (B, N)
        k = min(k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1).astype(np.int64)


def reranked(candidates: Candidates, alpha: float) -> Reranked:
    """TTR of ``candidates``: α·log p(ID | query) + (1 − α)·cos(enc(query), enc(item))."""
    return rerank(candidates.rows, candidates.log_probs, candidates.relevance, alpha)


def _query_batch_to(batch: QueryBatch, device: torch.device) -> QueryBatch:
    return QueryBatch(*(part.to(device) for part in batch))
