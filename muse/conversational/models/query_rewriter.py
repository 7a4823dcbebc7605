"""Dialogue → one standalone query (arXiv 2508.18132's first step), three ways behind one interface.

"concat" joins the latest turns (the baseline); "oracle" reads the synthetic dialogue's rewrite
targets (the upper bound); "llm" prompts a causal LM (SmolLM2-135M-Instruct by default) and
decodes greedily with ``do_sample=False`` given explicitly, so a model's generation defaults can
never turn sampling on. Every kind carries the picture in force along with the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from features.dialogues import Turn
from muse.conversational.models.causal_lm import build_causal_lm, causal_lm_tokenizer
from muse.conversational.models.query_rewriter_config import QueryRewriterConfig, RewriterKind
from muse.conversational.models.rewritten_query import RewrittenQuery

TURN_SEPARATOR = " | "
# Ends a query written by an LM whose tokenizer has no end-of-sequence token (a word tokenizer).
END_OF_QUERY = "endofquery"


class QueryRewriter(Protocol):
    """Rewrites dialogues (each its turns so far, ending with the user's) into queries."""

    def rewrite(self, dialogues: Sequence[Sequence[Turn]]) -> list[RewrittenQuery]: ...


def picture_in_force(turns: Sequence[Turn]) -> tuple[int | None, bytes | None]:
    """(image_item_id, image bytes) of the latest user turn that gave a picture, else (None, None)."""
    for turn in reversed(turns):
        if turn.role == "user" and (turn.image_item_id is not None or turn.image is not None):
            return turn.image_item_id, turn.image
    return None, None


def conversation_text(turns: Sequence[Turn], include_assistant: bool = True) -> str:
    """``role: text`` of each turn, oldest first, joined by `` | ``."""
    kept = [turn for turn in turns if include_assistant or turn.role == "user"]
    return TURN_SEPARATOR.join(f"{turn.role}: {turn.text}" for turn in kept if turn.text)


class ConcatRewriter:
    """The baseline: the last ``last_turns`` turns joined; no model."""

    def __init__(self, config: QueryRewriterConfig) -> None:
        self.config = config

    def rewrite(self, dialogues: Sequence[Sequence[Turn]]) -> list[RewrittenQuery]:
        queries = []
        for turns in dialogues:
            _check_ends_with_user(turns)
            kept = [t for t in turns if self.config.include_assistant or t.role == "user"]
            text = conversation_text(kept[-self.config.last_turns :])
            queries.append(RewrittenQuery(text, *picture_in_force(turns)))
        return queries


class OracleRewriter:
    """The synthetic dialogue's own rewrite target of its last user turn."""

    def rewrite(self, dialogues: Sequence[Sequence[Turn]]) -> list[RewrittenQuery]:
        queries = []
        for turns in dialogues:
            _check_ends_with_user(turns)
            last = turns[-1]
            if last.rewrite is None:
                raise ValueError(
                    "rewriter.kind = 'oracle' needs each user turn's rewrite target, and this "
                    "dialogue has none (only synthetic dialogues carry them)"
                )
            queries.append(RewrittenQuery(last.rewrite, last.rewrite_image_item_id, None))
        return queries


class LlmRewriter:
    """A causal LM prompted with the conversation; greedy decoding, one batch at a time."""

    def __init__(
        self,
        config: QueryRewriterConfig,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        device: torch.device | None = None,
    ) -> None:
        self.config = config
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device or torch.device("cpu")
        self.model.to(self.device)
        self.end_id = end_of_query_id(tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else self.end_id)
        self.generation = GenerationConfig(
            do_sample=False,  # explicit: greedy whatever the model's own defaults say
            num_beams=1,
            max_new_tokens=config.max_new_tokens,
            eos_token_id=self.end_id,
            pad_token_id=self.pad_id,
        )

    def prompt(self, turns: Sequence[Turn]) -> str:
        """The text the LM continues: its chat template when it has one, else a plain prompt."""
        conversation = conversation_text(turns).replace(TURN_SEPARATOR, "\n")
        if getattr(self.tokenizer, "chat_template", None):
            messages = [
                {"role": "system", "content": self.config.instruction},
                {"role": "user", "content": conversation},
            ]
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            return str(text)
        return f"{self.config.instruction}\n{conversation}\nquery :"

    def target(self, query: str) -> str:
        """What the LM should write for rewrite target ``query`` (fine-tuning), end marker included."""
        end = self.tokenizer.eos_token if self.tokenizer.eos_token else END_OF_QUERY
        return f" {query} {end}" if end == END_OF_QUERY else f"{query}{end}"

    @torch.no_grad()
    def rewrite(self, dialogues: Sequence[Sequence[Turn]]) -> list[RewrittenQuery]:
        for turns in dialogues:
            _check_ends_with_user(turns)
        if not dialogues:
            return []
        prompts = [self.prompt(turns) for turns in dialogues]
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        width = max(len(ids) for ids in encoded)
        # Left padding: every prompt ends at the same position, where generation starts.
        input_ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, ids in enumerate(encoded):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        output = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=attention.to(self.device),
            generation_config=self.generation,
        )
        queries = []
        for row, turns in enumerate(dialogues):
            new = output[row, width:].tolist()
            if self.end_id in new:
                new = new[: new.index(self.end_id)]
            text = str(self.tokenizer.decode(new, skip_special_tokens=True)).strip()
            text = text.splitlines()[0].strip() if text else ""
            if not text:  # an LM that wrote nothing falls back to the user's own words
                text = conversation_text(turns, include_assistant=False)
            queries.append(RewrittenQuery(text, *picture_in_force(turns)))
        return queries


def end_of_query_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token that ends a written query: the tokenizer's EOS, else the END_OF_QUERY word."""
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    ids = tokenizer(END_OF_QUERY, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or ids[0] == tokenizer.unk_token_id:
        raise ValueError(
            f"the rewriter's tokenizer has no EOS token and no single token for {END_OF_QUERY!r}: "
            "reserve it in the word tokenizer"
        )
    return int(ids[0])


def build_query_rewriter(
    config: QueryRewriterConfig,
    word_tokenizer: PreTrainedTokenizerBase | None = None,
    device: torch.device | None = None,
) -> QueryRewriter:
    """The rewriter of ``config``; a random-weight LM uses ``word_tokenizer`` (tests, smoke runs)."""
    if config.kind is RewriterKind.CONCAT:
        return ConcatRewriter(config)
    if config.kind is RewriterKind.ORACLE:
        return OracleRewriter()
    model = build_causal_lm(config.llm)
    tokenizer = causal_lm_tokenizer(config.llm) or word_tokenizer
    if tokenizer is None:
        raise ValueError("a random-weight rewriter LM needs a word tokenizer")
    if config.checkpoint is not None:
        state = torch.load(config.checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("model", state))
    return LlmRewriter(config, model, tokenizer, device)


def _check_ends_with_user(turns: Sequence[Turn]) -> None:
    if not turns or turns[-1].role != "user":
        raise ValueError("a dialogue to rewrite must end with a user turn")
