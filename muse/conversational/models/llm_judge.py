"""An LLM judge for test-time reranking: log p("yes") − log p("no") after a matching question.

One forward pass per (query, item text) pair, no generation: the next-token distribution at the
prompt's end is read directly, so the judge is deterministic and its cost is B·K prompt passes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from muse.conversational.models.reranker_config import RerankerConfig


class LlmJudge:
    """Scores (query, item text) pairs with a causal LM; higher means a better match."""

    def __init__(
        self,
        config: RerankerConfig,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        device: torch.device | None = None,
        batch_size: int = 32,
    ) -> None:
        self.config = config
        self.device = device or torch.device("cpu")
        self.model = model.eval().to(self.device)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.yes_id = _first_token(tokenizer, config.judge_yes, "reranker.judge_yes")
        self.no_id = _first_token(tokenizer, config.judge_no, "reranker.judge_no")
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (tokenizer.eos_token_id or 0))

    def prompt(self, query: str, item: str) -> str:
        question = self.config.judge_prompt.format(query=query, item=item)
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "user", "content": question}]
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            return str(text)
        return question

    @torch.no_grad()
    def score(self, queries: Sequence[str], items: Sequence[Sequence[str]]) -> np.ndarray:
        """(B, K) float32 log-odds of "yes" for each query's K item texts."""
        if len(queries) != len(items):
            raise ValueError(f"{len(queries)} queries but {len(items)} candidate lists")
        width = max((len(row) for row in items), default=0)
        scores = np.zeros((len(queries), width), dtype=np.float32)
        pairs = [(b, k) for b, row in enumerate(items) for k in range(len(row))]
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            encoded = [
                self.tokenizer(self.prompt(queries[b], items[b][k]), add_special_tokens=False)[
                    "input_ids"
                ]
                for b, k in chunk
            ]
            longest = max(len(ids) for ids in encoded)
            input_ids = torch.full((len(chunk), longest), self.pad_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), longest), dtype=torch.long)
            for row, ids in enumerate(encoded):
                input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention[row, : len(ids)] = 1
            logits = self.model(
                input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device)
            ).logits
            last = attention.sum(dim=1).to(self.device) - 1
            final = torch.log_softmax(logits[torch.arange(len(chunk)), last].float(), dim=-1)
            odds = (final[:, self.yes_id] - final[:, self.no_id]).cpu().numpy()
            for (b, k), value in zip(chunk, odds.tolist(), strict=True):
                scores[b, k] = value
        return scores


def _first_token(tokenizer: PreTrainedTokenizerBase, word: str, field: str) -> int:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"{field} {word!r} is no token for this tokenizer")
    return int(ids[0])
