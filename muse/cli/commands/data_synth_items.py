"""`muse data synth-items`: generate the synthetic multimodal catalogue for item-to-item retrieval.

Never imports torch: the generator renders images with numpy and PIL.
"""

from __future__ import annotations

import argparse

from muse.core.config_loader import add_override_argument

DEFAULT_CONFIG = "configs/data/items_default.toml"


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"multimodal catalogue TOML (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument("--out", required=True, help="output directory (replaced atomically)")
    add_override_argument(parser, "num_items=500")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from features.multimodal_catalogue import RECALL_K, generate_multimodal_catalogue
    from features.multimodal_catalogue_config import MultimodalCatalogueConfig
    from muse.core.config_loader import load_config

    config = load_config(MultimodalCatalogueConfig, args.config, args.overrides)
    summary = generate_multimodal_catalogue(config, args.out, progress=not args.no_progress)

    def counts(pairs: dict[str, int]) -> str:
        return "  ".join(f"{kind} {count:,}" for kind, count in pairs.items())

    lines = [
        f"synthetic multimodal catalogue → {summary.out_dir}",
        f"  items {summary.num_items:,} ({summary.num_test_items:,} held out for test pairs), "
        f"images {config.image.size}×{config.image.size} PNG",
        f"  train pairs: {counts(summary.train_pairs)}",
        f"  test pairs:  {counts(summary.test_pairs)}",
        f"  oracle Recall@{RECALL_K} on test pairs by link kind (image / text / both):",
    ]
    for view, recall in summary.oracle_recall.items():
        figures = " / ".join(f"{recall.get(kind, float('nan')):.3f}" for kind in summary.test_pairs)
        lines.append(f"    {view + ' attributes':<18} {figures}")
    lines.append(f"  generated in {summary.elapsed_seconds:.1f} s")
    print("\n".join(lines))
    return 0
