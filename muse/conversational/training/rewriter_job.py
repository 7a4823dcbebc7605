"""Fine-tune the LLM rewriter on the synthetic dialogues' rewrite targets (``muse conv rewriter``).

Every user turn of the training dialogues is one example (the dialogue so far → its rewrite
target). Before and after, the rewriter writes the validation dialogues' last-turn queries;
the report gives their exact-match rate and word F1 against the targets, and the time per
rewrite. The weights go to ``<out>/rewriter.pt`` (``rewriter.checkpoint`` reads them), with the
resolved config and the report beside them. The LM must bring its own tokenizer (kind
"smollm2" or "pretrained"): a word tokenizer would be rebuilt differently by the task.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import torch

from features.dialogues import read_dialogues, user_turn_prefixes
from features.item_catalogue import read_items
from muse.conversational.models.causal_lm import build_causal_lm, causal_lm_tokenizer
from muse.conversational.models.query_rewriter import LlmRewriter
from muse.conversational.models.query_rewriter_config import QueryRewriterConfig, RewriterKind
from muse.conversational.training.rewriter_fitting import fit_rewriter, save_rewriter
from muse.core.atomic_write import write_text_atomic
from muse.core.config_loader import config_to_dict, dump_toml
from muse.core.errors import ConfigError

REWRITER_FILE = "rewriter.pt"


class RewriteQuality(NamedTuple):
    """exact: share of queries equal to their target (case and spacing aside); word_f1: mean
    F1 of their words against the target's; ms_per_rewrite: wall time per query, one at a time."""

    exact: float
    word_f1: float
    ms_per_rewrite: float
    examples: list[dict[str, str]]


def _words(text: str) -> list[str]:
    return text.lower().replace(",", " ").replace(".", " ").split()


def word_f1(written: str, target: str) -> float:
    """F1 of the written query's words against the target's (multiset overlap)."""
    ours, theirs = collections.Counter(_words(written)), collections.Counter(_words(target))
    overlap = sum((ours & theirs).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(ours.values()), overlap / sum(theirs.values())
    return 2 * precision * recall / (precision + recall)


def rewrite_quality(
    rewriter: LlmRewriter, prefixes: list[Any], targets: list[str], shown: int = 3
) -> RewriteQuality:
    """How well ``rewriter`` writes ``targets`` for the dialogue ``prefixes``."""
    written = []
    started = time.perf_counter()
    for prefix in prefixes:
        written.append(rewriter.rewrite([prefix])[0].text)
    seconds = time.perf_counter() - started
    pairs = list(zip(written, targets, strict=True))
    return RewriteQuality(
        exact=sum(_words(w) == _words(t) for w, t in pairs) / max(len(pairs), 1),
        word_f1=sum(word_f1(w, t) for w, t in pairs) / max(len(pairs), 1),
        ms_per_rewrite=seconds / max(len(pairs), 1) * 1e3,
        examples=[{"written": w, "target": t} for w, t in pairs[:shown]],
    )


def fine_tune_rewriter_job(
    config: QueryRewriterConfig,
    catalogue: Path,
    dialogues: Path,
    out: Path,
    steps: int,
    batch_size: int,
    learning_rate: float,
    evaluation_dialogues: int,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune, save and report; returns the report (also written to ``out``/report.json)."""
    if config.kind is not RewriterKind.LLM:
        raise ConfigError(f"rewriter.kind must be 'llm' to fine-tune, got {config.kind.value!r}")
    tokenizer = causal_lm_tokenizer(config.llm)
    if tokenizer is None:
        raise ConfigError(
            "rewriter.llm: fine-tune an LM that brings its own tokenizer (kind 'smollm2' or "
            "'pretrained'); a random one's word tokenizer would not match the task's"
        )
    torch.manual_seed(seed)
    items = read_items(catalogue / "items.parquet").item_ids
    train = read_dialogues(dialogues / "train.jsonl", items)
    validation = read_dialogues(dialogues / "validation.jsonl", items)[:evaluation_dialogues]
    prefixes, targets = [], []
    for dialogue in train:
        for prefix in user_turn_prefixes(dialogue):
            rewrite = prefix.turns[-1].rewrite
            if rewrite:
                prefixes.append(prefix.turns)
                targets.append(rewrite)
    if not prefixes:
        raise ConfigError(f"{dialogues / 'train.jsonl'}: no user turn carries a rewrite target")
    held = [d.turns for d in validation if d.turns[-1].rewrite]
    held_targets = [d.turns[-1].rewrite or "" for d in validation if d.turns[-1].rewrite]
    rewriter = LlmRewriter(replace(config, checkpoint=None), build_causal_lm(config.llm), tokenizer)
    before = rewrite_quality(rewriter, held, held_targets)
    started = time.perf_counter()
    losses = fit_rewriter(
        rewriter, prefixes, targets, steps, batch_size, learning_rate, seed, progress
    )
    fitting_seconds = time.perf_counter() - started
    after = rewrite_quality(rewriter, held, held_targets)
    out.mkdir(parents=True, exist_ok=True)
    save_rewriter(rewriter, out / REWRITER_FILE)
    resolved = replace(config, checkpoint=out / REWRITER_FILE)
    write_text_atomic(out / "config.toml", dump_toml(config_to_dict(resolved)))
    report = {
        "train_examples": len(prefixes),
        "validation_queries": len(held),
        "steps": steps,
        "batch_size": batch_size,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "fitting_seconds": fitting_seconds,
        "before": before._asdict(),
        "after": after._asdict(),
        "checkpoint": str(out / REWRITER_FILE),
    }
    write_text_atomic(out / "report.json", json.dumps(report, indent=2))
    return report
