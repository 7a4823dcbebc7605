"""`muse data synth-dialogues`: generate synthetic dialogues over a synthetic multimodal catalogue.

Never imports torch: the generator is numpy-only.
"""

from __future__ import annotations

import argparse

from muse.core.config_loader import add_override_argument

DEFAULT_CONFIG = "configs/data/dialogues_default.toml"


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalogue",
        required=True,
        help="a `muse data synth-items` output directory (items and item_attributes parquet)",
    )
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"dialogues TOML (default: {DEFAULT_CONFIG})"
    )
    parser.add_argument("--out", required=True, help="output directory (replaced atomically)")
    add_override_argument(parser, "train_dialogues=1000")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from features.synthetic_dialogues import generate_dialogues
    from features.synthetic_dialogues_config import SyntheticDialoguesConfig
    from muse.core.config_loader import load_config

    config = load_config(SyntheticDialoguesConfig, args.config, args.overrides)
    summary = generate_dialogues(config, args.catalogue, args.out, progress=not args.no_progress)
    counts = "  ".join(f"{split} {count:,}" for split, count in summary.dialogues.items())
    shares = "  ".join(f"{kind} {share:.1%}" for kind, share in summary.turn_kind_shares.items())
    test = summary.ambiguity["test"]
    print(
        f"synthetic dialogues → {summary.out_dir}\n"
        f"  over {summary.num_items:,} catalogue items; dialogues: {counts}\n"
        f"  user turns per dialogue {summary.mean_user_turns:.2f} "
        f"({config.min_user_turns}–{config.max_user_turns}); kinds: {shares}\n"
        f"  picture variants {summary.picture_variants:,}, rejections negative "
        f"{summary.negative_rejections:,} / reminders {summary.reminder_rejections:,}, "
        f"turns that fell back to words {summary.kind_fallbacks:,}\n"
        f"  test: items matching the final constraints {test['mean_matches']:.2f} on average "
        f"(max {test['max_matches']:.0f}, unique {test['unique_share']:.1%}), "
        f"oracle MRR ceiling {test['oracle_mrr']:.4f}\n"
        f"  generated in {summary.elapsed_seconds:.1f} s"
    )
    return 0
