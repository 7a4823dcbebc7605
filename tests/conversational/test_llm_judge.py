"""The LLM judge: one forward pass per (query, item) pair, log-odds of "yes" at the prompt's end."""

from __future__ import annotations

import numpy as np
import torch

from muse.conversational.models.causal_lm import build_causal_lm
from muse.conversational.models.llm_judge import LlmJudge
from muse.conversational.models.reranker_config import DEFAULT_JUDGE_PROMPT, RerankerConfig
from muse.item2item.models.backbone_config import BackboneConfig, BackboneKind
from muse.item2item.training.item_inputs import word_tokenizer


def test_judge_scores_are_the_yes_no_log_odds_of_each_pair_in_any_batching() -> None:
    torch.manual_seed(0)
    backbone = BackboneConfig(kind=BackboneKind.RANDOM_LLAMA, vocab_size=96)
    model = build_causal_lm(backbone)
    texts = ["red wool bag", "blue cotton shirt", "a red bag please", "green lamp"]
    tokenizer = word_tokenizer(texts, 96, (DEFAULT_JUDGE_PROMPT, "yes no"))
    config = RerankerConfig(judge=backbone)
    judge = LlmJudge(config, model, tokenizer, batch_size=2)
    queries = ["a red bag please", "green lamp"]
    items = [["red wool bag", "blue cotton shirt", "green lamp"], ["green lamp"]]
    scores = judge.score(queries, items)
    assert scores.shape == (2, 3)
    assert scores[1, 1:].tolist() == [0.0, 0.0]  # no candidates there
    # One pair alone, computed by hand: the same value as inside padded batches.
    prompt = config.judge_prompt.format(query=queries[0], item=items[0][1])
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        last = torch.log_softmax(model(input_ids=ids).logits[0, -1], dim=-1)
    expected = last[judge.yes_id] - last[judge.no_id]
    np.testing.assert_allclose(scores[0, 1], float(expected), atol=1e-4)
    assert np.array_equal(judge.score(queries, items), scores)
