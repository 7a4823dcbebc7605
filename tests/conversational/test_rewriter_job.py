"""`muse conv rewriter`: fine-tuning an on-disk LM on the synthetic rewrite targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from features.dialogues import read_dialogues
from features.item_catalogue import read_items
from muse.cli.main import main
from muse.conversational.models.query_rewriter import END_OF_QUERY
from muse.conversational.models.query_rewriter_config import DEFAULT_INSTRUCTION
from muse.conversational.training.rewriter_job import word_f1
from muse.item2item.training.item_inputs import word_tokenizer


def test_word_f1_counts_shared_words() -> None:
    assert word_f1("a red bag", "a red bag") == 1.0
    assert word_f1("a red bag", "a blue hat") == pytest.approx(1 / 3)
    assert word_f1("", "a bag") == 0.0


def test_the_command_fine_tunes_an_lm_on_disk_and_improves_its_rewrites(
    conversation_data: dict[str, Path], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    items = read_items(conversation_data["catalogue"] / "items.parquet").item_ids
    texts = []
    for dialogue in read_dialogues(conversation_data["dialogues"] / "train.jsonl", items):
        for turn in dialogue.turns:
            texts += [turn.text, turn.rewrite or ""]
    tokenizer = word_tokenizer(texts, 400, (DEFAULT_INSTRUCTION, "user assistant query :"))
    tokenizer.add_special_tokens({"eos_token": END_OF_QUERY})
    folder = tmp_path / "tiny_lm"
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    out = tmp_path / "rewriter"
    code = main(
        [
            "conv",
            "rewriter",
            "--catalogue",
            str(conversation_data["catalogue"]),
            "--dialogues",
            str(conversation_data["dialogues"]),
            "--out",
            str(out),
            "--set",
            'llm.kind="pretrained"',
            "--set",
            f'llm.path="{folder}"',
            "--set",
            "max_new_tokens=16",
            "--steps",
            "120",
            "--batch-size",
            "16",
            "--learning-rate",
            "3e-3",
            "--evaluation-dialogues",
            "10",
            "--no-progress",
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["last_loss"] < 0.5 * report["first_loss"]
    assert report["after"]["word_f1"] > report["before"]["word_f1"] + 0.2
    assert (out / "rewriter.pt").is_file() and (out / "config.toml").is_file()


def test_a_random_lm_is_refused(conversation_data: dict[str, Path], tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(
        [
            "conv",
            "rewriter",
            "--catalogue",
            str(conversation_data["catalogue"]),
            "--dialogues",
            str(conversation_data["dialogues"]),
            "--out",
            str(tmp_path / "r"),
            "--set",
            'llm.kind="random_llama"',
        ]
    )
    assert code == 2
    assert "brings its own tokenizer" in capsys.readouterr().err
