"""Conversational retrieval training as the generic loop drives it (a ``TrainingTask``).

A training row is one user turn of a training dialogue: the dialogue so far, rewritten by the
configured rewriter, with the dialogue's target item. The retriever learns to write the target's
semantic ID (teacher-forced cross-entropy), the NoteLLM-2 encoder to embed the query next to the
target (in-batch NT-Xent). Validation reranks the retriever's beams (TTR) on the validation
dialogues' last turns, tuning α when the config leaves it unset, and early stopping maximises
that MRR. The test report scores every method at the last turn, over every turn, and per turn.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from features.dialogues import Dialogue, read_dialogues
from features.item_catalogue import ItemCatalogue, read_items
from muse.conversational.bm25_retriever import Bm25Retriever
from muse.conversational.conversation_batch import ConversationBatch
from muse.conversational.models.causal_lm import build_causal_lm, causal_lm_tokenizer
from muse.conversational.models.llm_judge import LlmJudge
from muse.conversational.models.prefix_trie import PrefixTrie
from muse.conversational.models.query_rewriter import END_OF_QUERY, build_query_rewriter
from muse.conversational.models.reranker_config import RerankerKind
from muse.conversational.models.test_time_reranking import tune_alpha
from muse.conversational.query_inputs import QueryInputs
from muse.conversational.retrieval_pipeline import (
    Candidates,
    ConversationalRetrieval,
    reranked,
)
from muse.conversational.semantic_ids.semantic_id_map import EOS, SemanticIdMap
from muse.conversational.training.conversation_report import (
    BM25,
    DENSE,
    GENERATIVE,
    GENERATIVE_TTR,
    ConversationalReport,
    method_figures,
    ranking_figures,
)
from muse.conversational.training.conversational_model import (
    ConversationalModel,
    conversational_model_of,
)
from muse.conversational.training.dialogue_examples import DialogueExamples, dialogue_examples
from muse.conversational.training.train_config import ConversationalTrainConfig
from muse.core.config_loader import config_to_dict
from muse.core.errors import DataError
from muse.item2item.batch import item_batch_to
from muse.item2item.models.backbone_config import BackboneKind
from muse.item2item.models.prompt import ItemPrompt, load_tokenizer
from muse.item2item.training.item_embeddings import embed_rows
from muse.item2item.training.item_inputs import ItemInputs, word_tokenizer
from muse.training.distributed import DistributedContext
from muse.training.training_task import Evaluation

SPLITS = ("train", "validation", "test")
DENSE_LIST = 100  # the baselines rank this many items per query


def dialogue_file(directory: Path, split: str) -> Path:
    return directory / f"{split}.jsonl"


def item_text(catalogue: ItemCatalogue, row: int) -> str:
    """An item's words as BM25 and the tokenizer see them: title, topics, content."""
    return " ".join(
        (catalogue.titles[row], " ".join(catalogue.topics[row]), catalogue.contents[row])
    )


def catalogue_id_tokens(ids: SemanticIdMap, catalogue: ItemCatalogue, source: Path) -> np.ndarray:
    """(N, L + 1) int64 ID tokens of the catalogue's items, in catalogue row order."""
    rows = ids.rows_of_items(catalogue.item_ids)
    missing = catalogue.item_ids[rows < 0]
    if missing.size:
        shown = ", ".join(str(i) for i in missing[:5].tolist())
        raise DataError(
            source,
            f"{missing.size} catalogue item(s) have no semantic ID (e.g. {shown}): build the IDs "
            "from this catalogue's embeddings (muse conv ids)",
        )
    return np.asarray(ids.tokens()[rows], dtype=np.int64)


def build_conversation_tokenizer(
    config: ConversationalTrainConfig,
    catalogue: ItemCatalogue,
    dialogues: list[Dialogue],
) -> PreTrainedTokenizerBase:
    """The task's one tokenizer: the encoder backbone's own when it is pretrained, else a word
    tokenizer over the catalogue's and the training dialogues' words."""
    backbone = config.encoder.backbone
    if backbone.kind in (BackboneKind.PRETRAINED, BackboneKind.SMOLLM2):
        folder = backbone.model_dir
        assert folder is not None
        if backbone.kind is BackboneKind.SMOLLM2:
            from muse.item2item.models.packaged_llm import converted_dir

            converted_dir(backbone)
        return load_tokenizer(folder)
    prompt = config.encoder.prompt
    reserved = (
        prompt.image_prefix,
        prompt.image_instruction,
        prompt.text_prefix,
        prompt.text_instruction,
        prompt.compression_token,
        END_OF_QUERY,
        "user assistant query",
    )
    texts = [item_text(catalogue, row) for row in range(len(catalogue))]
    for dialogue in dialogues:
        for turn in dialogue.turns:
            texts.append(turn.text)
            if turn.rewrite:
                texts.append(turn.rewrite)
    return word_tokenizer(texts, backbone.vocab_size, reserved)


class ConversationalAssets:
    """What every use of a trained conversational config needs besides the models: catalogue,
    dialogues, semantic IDs and their trie, the tokenizer, the prompt and the item inputs."""

    def __init__(self, config: ConversationalTrainConfig) -> None:
        self.config = config
        data = config.data
        self.catalogue = read_items(Path(data.catalogue) / "items.parquet")
        self.row_of_item = {int(i): row for row, i in enumerate(self.catalogue.item_ids.tolist())}
        self.dialogues = {
            split: read_dialogues(
                dialogue_file(Path(data.dialogues), split), self.catalogue.item_ids
            )
            for split in SPLITS
        }
        ids_dir = Path(data.semantic_ids)
        self.ids = SemanticIdMap.load(ids_dir)
        self.id_tokens = catalogue_id_tokens(self.ids, self.catalogue, ids_dir)
        self.trie = PrefixTrie.from_sequences(self.id_tokens)
        self.tokenizer = build_conversation_tokenizer(
            config, self.catalogue, self.dialogues["train"]
        )
        self.prompt = ItemPrompt(
            config.encoder.prompt, self.tokenizer, config.encoder.sentence.max_tokens
        )
        self.item_inputs = ItemInputs(
            self.catalogue, self.prompt, config.encoder, data.image_mean, data.image_std
        )
        self.bm25 = Bm25Retriever(
            [item_text(self.catalogue, row) for row in range(len(self.catalogue))]
        )
        self.query_inputs: QueryInputs | None = None
        self._judge: LlmJudge | None = None

    def build_model(self) -> ConversationalModel:
        """A new model (random weights) whose vision encoder the query inputs now use."""
        config = self.config
        model = ConversationalModel(config, len(self.tokenizer), self.ids.vocab_size)
        self.attach(model)
        return model

    def attach(self, model: ConversationalModel) -> None:
        """Cache ``model``'s vision features of catalogue pictures and build the query inputs."""
        data = self.config.data
        self.item_inputs.cache_vision_features(
            model.vision, self.config.training.evaluation_batch_size
        )
        self.query_inputs = QueryInputs(
            self.tokenizer,
            self.prompt,
            model.vision,
            self.item_inputs.vision_features,
            self.row_of_item.__getitem__,
            data.image_mean,
            data.image_std,
        )

    def examples(
        self, split: str, every_turn: bool, progress: bool, limit: int = 0
    ) -> DialogueExamples:
        """The ``split``'s dialogues (the first ``limit``, 0 for all) as rewritten examples."""
        rewriter = build_query_rewriter(self.config.rewriter, self.tokenizer)
        dialogues = self.dialogues[split]
        if limit:
            dialogues = dialogues[:limit]
        return dialogue_examples(
            dialogues, rewriter, self.row_of_item, every_turn, progress, f"rewriting {split}"
        )

    def retrieval(self, model: nn.Module, device: torch.device) -> ConversationalRetrieval:
        """The trained models as the retrieval pipeline, with the catalogue embedded now."""
        inner = conversational_model_of(model)
        rows = np.arange(len(self.catalogue), dtype=np.int64)
        embeddings = embed_rows(
            inner.encoder,
            self.item_inputs,
            rows,
            self.config.training.evaluation_batch_size,
            device,
        )
        return ConversationalRetrieval(
            inner.retriever,
            inner.encoder,
            self.query_inputs_of(),
            self.trie,
            embeddings,
            device,
            judge=self.judge(device),
            item_texts=list(self.catalogue.titles),
        )

    def judge(self, device: torch.device) -> LlmJudge | None:
        """The LLM judge of reranker kind "llm_judge" (built once), else None."""
        reranker = self.config.reranker
        if reranker.kind is not RerankerKind.LLM_JUDGE:
            return None
        if self._judge is None:
            model = build_causal_lm(reranker.judge)
            tokenizer = causal_lm_tokenizer(reranker.judge) or self.tokenizer
            self._judge = LlmJudge(reranker, model, tokenizer, device)
        return self._judge

    def query_inputs_of(self) -> QueryInputs:
        if self.query_inputs is None:
            raise RuntimeError("build or attach a model first: query inputs use its vision encoder")
        return self.query_inputs


class ConversationalTask:
    """Retriever + encoder training on rewritten dialogue turns; TTR validation; test report."""

    def __init__(self, config: ConversationalTrainConfig, progress: bool = True) -> None:
        self.config = config
        self.assets = ConversationalAssets(config)
        training = config.training
        self.train_examples = self.assets.examples("train", config.data.every_turn, progress)
        self.validation_examples = self.assets.examples(
            "validation", False, progress, training.validation_dialogues
        )
        self.test_examples = self.assets.examples("test", True, progress)

    # ---- the TrainingTask protocol -------------------------------------------------------------

    def run_config(self) -> dict[str, Any]:
        return config_to_dict(self.config)

    def build_model(self) -> nn.Module:
        return self.assets.build_model()

    def num_train_rows(self) -> int:
        return len(self.train_examples)

    def train_batch(self, rows: np.ndarray) -> ConversationBatch:
        """The ConversationBatch of training examples ``rows`` (B,)."""
        examples = self.train_examples.subset(np.asarray(rows, dtype=np.int64))
        assets = self.assets
        inputs = assets.query_inputs_of()
        features = inputs.features(examples.queries)
        eos = np.full((len(examples), 1), EOS, dtype=np.int64)
        labels = np.concatenate([assets.id_tokens[examples.target_rows], eos], axis=1)
        return ConversationBatch(
            queries=inputs.retriever_batch(examples.queries, features),
            query_items=inputs.encoder_batch(examples.queries, features),
            targets=assets.item_inputs.items(examples.target_rows),
            labels=torch.from_numpy(labels),
        )

    def loss(
        self, model: nn.Module, batch: ConversationBatch, device: torch.device
    ) -> torch.Tensor:
        batch = ConversationBatch(
            queries=type(batch.queries)(*(part.to(device) for part in batch.queries)),
            query_items=item_batch_to(batch.query_items, device),
            targets=item_batch_to(batch.targets, device),
            labels=batch.labels.to(device),
        )
        total: torch.Tensor = model(batch).total
        return total

    def validate(self, model: nn.Module, context: DistributedContext, progress: bool) -> Evaluation:
        """MRR of TTR over the validation dialogues' last turns (α tuned unless configured)."""
        examples = self.validation_examples
        with _evaluating(model):
            retrieval = self.assets.retrieval(model, context.device)
            candidates, _ = self._candidates(retrieval, examples, self.config.reranker.beams)
            alpha = self._alpha(candidates, examples)
            ttr = reranked(candidates, alpha).rows
            dense = retrieval.dense_ranking(candidates.query_embeddings, DENSE_LIST)
        logs = {
            "mrr_generative": ranking_figures(candidates.rows, examples.target_rows)["mrr"],
            "mrr_ttr": ranking_figures(ttr, examples.target_rows)["mrr"],
            "mrr_dense": ranking_figures(dense, examples.target_rows)["mrr"],
            "alpha": alpha,
        }
        return Evaluation(score=logs["mrr_ttr"], logs=logs)

    def test(
        self, model: nn.Module, context: DistributedContext, progress: bool
    ) -> ConversationalReport:
        """Every method on the test dialogues (every user turn), α from the validation ones."""
        beams = self.config.reranker.beams
        with _evaluating(model):
            retrieval = self.assets.retrieval(model, context.device)
            validation = self.validation_examples
            alpha = self._alpha(self._candidates(retrieval, validation, beams)[0], validation)
            return evaluate_examples(
                retrieval,
                self.assets.bm25,
                self.test_examples,
                beams,
                alpha,
                self.config.training.evaluation_batch_size,
                self.config.name,
                len(self.assets.dialogues["test"]),
            )

    # ---- shared by validation and the test ---------------------------------------------------

    def _candidates(
        self, retrieval: ConversationalRetrieval, examples: DialogueExamples, beams: int
    ) -> tuple[Candidates, float]:
        return candidates_of(retrieval, examples, beams, self.config.training.evaluation_batch_size)

    def _alpha(self, candidates: Candidates, examples: DialogueExamples) -> float:
        reranker = self.config.reranker
        if reranker.fixed_alpha is not None:
            return reranker.fixed_alpha
        return tune_alpha(
            candidates.rows,
            candidates.log_probs,
            candidates.relevance,
            examples.target_rows,
            reranker.alpha_grid,
        ).alpha


def candidates_of(
    retrieval: ConversationalRetrieval, examples: DialogueExamples, beams: int, batch_size: int
) -> tuple[Candidates, float]:
    """Every example's candidates in batches, and the wall seconds per query it took."""
    parts = []
    started = time.perf_counter()
    for start in range(0, len(examples), batch_size):
        chunk = examples.queries[start : start + batch_size]
        parts.append(retrieval.candidates(chunk, beams)[0])
    seconds = (time.perf_counter() - started) / max(len(examples), 1)
    if not parts:
        empty = np.zeros((0, beams))
        return Candidates(
            empty.astype(np.int64), empty.astype(np.float32), np.zeros((0, 1)), empty
        ), 0.0
    joined = Candidates(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in Candidates._fields)
    )
    return joined, seconds


def evaluate_examples(
    retrieval: ConversationalRetrieval,
    bm25: Bm25Retriever,
    examples: DialogueExamples,
    beams: int,
    alpha: float,
    batch_size: int,
    model_name: str,
    dialogues: int,
) -> ConversationalReport:
    """The four methods' figures on ``examples``: the retriever's beams, the beams after TTR, the
    dense ranking of the whole catalogue and BM25."""
    candidates, generate_seconds = candidates_of(retrieval, examples, beams, batch_size)
    started = time.perf_counter()
    ttr = reranked(candidates, alpha).rows
    rerank_seconds = (time.perf_counter() - started) / max(len(examples), 1)
    started = time.perf_counter()
    dense = retrieval.dense_ranking(candidates.query_embeddings, DENSE_LIST)
    dense_seconds = (time.perf_counter() - started) / max(len(examples), 1)
    started = time.perf_counter()
    lexical = bm25.rank([q.text for q in examples.queries], DENSE_LIST)
    bm25_seconds = (time.perf_counter() - started) / max(len(examples), 1)
    ranked = {GENERATIVE: candidates.rows, GENERATIVE_TTR: ttr, DENSE: dense, BM25: lexical}
    return ConversationalReport(
        model=model_name,
        dialogues=dialogues,
        examples=len(examples),
        beams=beams,
        alpha=alpha,
        methods={
            name: method_figures(rows, examples.target_rows, examples.turn, examples.last)
            for name, rows in ranked.items()
        },
        seconds_per_query={
            "encode_and_generate": generate_seconds,
            "rerank": rerank_seconds,
            "dense_search": dense_seconds,
            "bm25": bm25_seconds,
        },
    )


class _evaluating:
    """Eval mode for the block, the previous mode restored after."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.was_training = model.training

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)
