"""`muse data synth`: generate the synthetic lifelong benchmark in the Taobao-MM raw schema.

Never imports torch: the generator and the exact metrics are numpy-only.
"""

from __future__ import annotations

import argparse

from muse.core.config_loader import add_override_argument

DEFAULT_CONFIG = "configs/data/synth_default.toml"


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"synthetic-data TOML (default: {DEFAULT_CONFIG})"
    )
    parser.add_argument("--out", required=True, help="output directory (replaced atomically)")
    add_override_argument(parser, "num_users=2000")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from features.synthetic import generate_synthetic
    from features.synthetic_config import SynthConfig
    from muse.core.config_loader import load_config

    config = load_config(SynthConfig, args.config, args.overrides)
    summary = generate_synthetic(config, args.out, progress=not args.no_progress)
    print(
        f"synthetic dataset → {summary.out_dir}\n"
        f"  users {summary.num_users:,}  items {summary.num_items:,}  "
        f"history length {config.history.length:,}  events {summary.num_events:,}\n"
        f"  samples: train {summary.num_train_samples:,} ({summary.train_positive_rate:.1%} clicks)  "
        f"test {summary.num_test_samples:,} ({summary.test_positive_rate:.1%} clicks)\n"
        f"  oracle on test: AUC {summary.oracle_auc:.4f}  GAUC {summary.oracle_gauc:.4f}\n"
        f"  oracle GAUC if the long-term count saw only the last 50 behaviours "
        f"{summary.last_50_oracle_gauc:.4f}, only same-category + last 50 "
        f"{summary.same_category_oracle_gauc:.4f}\n"
        f"  generated in {summary.elapsed_seconds:.1f} s: {summary.samples_per_second:,.0f} samples/s, "
        f"{summary.events_per_second:,.0f} events/s"
    )
    return 0
