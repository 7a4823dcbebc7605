"""The query rewriter: concat baseline, oracle targets, the LLM path (greedy, fine-tunable)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from features.dialogues import Turn
from muse.conversational.models.query_rewriter import (
    END_OF_QUERY,
    ConcatRewriter,
    LlmRewriter,
    OracleRewriter,
    build_query_rewriter,
    picture_in_force,
)
from muse.conversational.models.query_rewriter_config import QueryRewriterConfig, RewriterKind
from muse.conversational.training.rewriter_fitting import fit_rewriter, save_rewriter
from muse.item2item.models.backbone_config import BackboneConfig, BackboneKind
from muse.item2item.training.item_inputs import word_tokenizer

DIALOGUE = (
    Turn("user", "I want a bag", rewrite="a bag"),
    Turn("assistant", "How about the Kadu leather bag?", image_item_id=7),
    Turn(
        "user",
        "like this one but red",
        image_item_id=3,
        rewrite="a red bag like this",
        rewrite_image_item_id=3,
    ),
    Turn("assistant", "How about the Bofa cotton bag?"),
    Turn("user", "not cotton , wool", rewrite="a red wool bag like this", rewrite_image_item_id=3),
)
WORDS = [t.text for t in DIALOGUE] + [t.rewrite or "" for t in DIALOGUE]


def tiny_lm_config() -> QueryRewriterConfig:
    backbone = BackboneConfig(
        kind=BackboneKind.RANDOM_LLAMA,
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    return QueryRewriterConfig(kind=RewriterKind.LLM, llm=backbone, max_new_tokens=12)


def tiny_tokenizer():  # type: ignore[no-untyped-def]
    instruction = QueryRewriterConfig().instruction
    return word_tokenizer(WORDS, 128, (instruction, END_OF_QUERY, "user assistant query :"))


def test_picture_in_force_is_the_latest_user_picture() -> None:
    assert picture_in_force(DIALOGUE) == (3, None)  # the assistant's picture 7 is not the user's
    assert picture_in_force(DIALOGUE[:2]) == (None, None)


def test_concat_joins_the_last_turns_oldest_first() -> None:
    rewriter = ConcatRewriter(QueryRewriterConfig(last_turns=3))
    (query,) = rewriter.rewrite([DIALOGUE])
    assert query.text == (
        "user: like this one but red | assistant: How about the Bofa cotton bag? | "
        "user: not cotton , wool"
    )
    assert query.image_item_id == 3
    users_only = ConcatRewriter(QueryRewriterConfig(last_turns=2, include_assistant=False))
    assert (
        users_only.rewrite([DIALOGUE])[0].text
        == "user: like this one but red | user: not cotton , wool"
    )


def test_oracle_reads_the_last_user_turns_target() -> None:
    (query,) = OracleRewriter().rewrite([DIALOGUE])
    assert query == ("a red wool bag like this", 3, None)
    with pytest.raises(ValueError, match="rewrite target"):
        OracleRewriter().rewrite([(Turn("user", "a bag"),)])


def test_a_dialogue_must_end_with_the_users_turn() -> None:
    with pytest.raises(ValueError, match="end with a user turn"):
        ConcatRewriter(QueryRewriterConfig()).rewrite([DIALOGUE[:2]])


def test_the_llm_decodes_greedily_whatever_its_generation_defaults() -> None:
    torch.manual_seed(0)
    config = tiny_lm_config()
    rewriter = build_query_rewriter(config, tiny_tokenizer())
    assert isinstance(rewriter, LlmRewriter)
    first = rewriter.rewrite([DIALOGUE, DIALOGUE[:3]])
    # Defaults that would turn sampling on must not change anything: do_sample=False is explicit.
    rewriter.model.generation_config.do_sample = True
    rewriter.model.generation_config.temperature = 5.0
    again = rewriter.rewrite([DIALOGUE, DIALOGUE[:3]])
    assert first == again
    assert all(len(q.text.split()) <= config.max_new_tokens + 30 for q in first)
    assert first[0].image_item_id == 3


def test_fine_tuning_teaches_the_llm_its_rewrite_targets(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = tiny_lm_config()
    tokenizer = tiny_tokenizer()
    rewriter = build_query_rewriter(config, tokenizer)
    assert isinstance(rewriter, LlmRewriter)
    prefixes = [DIALOGUE[:1], DIALOGUE[:3], DIALOGUE]
    targets = [t.rewrite or "" for t in (DIALOGUE[0], DIALOGUE[2], DIALOGUE[4])]
    losses = fit_rewriter(rewriter, prefixes, targets, steps=150, batch_size=3, learning_rate=3e-3)
    assert losses[-1] < 0.1 * losses[0]
    assert [q.text for q in rewriter.rewrite(prefixes)] == targets
    # The saved weights load back through the config's checkpoint.
    save_rewriter(rewriter, tmp_path / "rewriter.pt")
    from dataclasses import replace

    reloaded = build_query_rewriter(replace(config, checkpoint=tmp_path / "rewriter.pt"), tokenizer)
    assert [q.text for q in reloaded.rewrite(prefixes)] == targets
