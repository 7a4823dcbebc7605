"""`muse conv rewriter`: fine-tune the LLM query rewriter on synthetic rewrite targets.

Prints the validation queries' exact-match rate and word F1 before and after, and where the
weights went; point a conversational config's ``rewriter.checkpoint`` at them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from muse.core.config_loader import add_override_argument


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalogue", type=Path, required=True, help="catalogue directory")
    parser.add_argument(
        "--dialogues", type=Path, required=True, help="dialogues directory (train/validation.jsonl)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--config", type=Path, help="TOML of the [rewriter] table (default: the dataclass defaults)"
    )
    add_override_argument(parser, "llm.num_layers=8")
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument(
        "--evaluation-dialogues", type=int, default=50, help="validation dialogues scored"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from muse.conversational.models.query_rewriter_config import QueryRewriterConfig, RewriterKind
    from muse.conversational.training.rewriter_job import fine_tune_rewriter_job
    from muse.core.config_loader import apply_overrides, config_from_dict, read_toml
    from muse.core.errors import ConfigError

    for name in ("steps", "batch_size", "evaluation_dialogues"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be ≥ 1")
    raw = read_toml(args.config) if args.config else {"kind": RewriterKind.LLM.value}
    source = str(args.config or "--set")
    config = config_from_dict(
        QueryRewriterConfig, apply_overrides(raw, args.overrides, source), source
    )
    report = fine_tune_rewriter_job(
        config,
        args.catalogue,
        args.dialogues,
        args.out,
        args.steps,
        args.batch_size,
        args.learning_rate,
        args.evaluation_dialogues,
        args.seed,
        not args.no_progress,
    )
    before, after = report["before"], report["after"]
    print(
        f"rewriter fine-tuned on {report['train_examples']:,} rewrite targets, {args.steps} steps "
        f"in {report['fitting_seconds']:.0f} s (loss {report['first_loss']:.3f} → {report['last_loss']:.3f})\n"
        f"  {report['validation_queries']} validation queries: exact match {before['exact']:.1%} → "
        f"{after['exact']:.1%}, word F1 {before['word_f1']:.3f} → {after['word_f1']:.3f}, "
        f"{after['ms_per_rewrite']:.0f} ms per rewrite\n"
        f"  weights → {report['checkpoint']} (set rewriter.checkpoint to use them)"
    )
    return 0
