"""`muse i2i evaluate`: test Recall@k of a trained item encoder, by link kind, beside the oracle."""

from __future__ import annotations

import argparse
from pathlib import Path


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="an item-to-item training checkpoint (RUN/checkpoints/best.pt)",
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        help="pair dataset whose test pairs are scored (default: the run's data.dataset)",
    )
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    parser.add_argument("--batch-size", type=int, default=256, help="items per forward pass")
    parser.add_argument(
        "--device", default="cpu", help="torch device to embed on (default: %(default)s)"
    )


def format_report(report: object) -> str:
    """The recall table: one row per link kind, Recall@k columns, the oracle's beside."""
    from muse.item2item.training.item_pair_report import ItemPairReport

    assert isinstance(report, ItemPairReport)
    ks = sorted(next(iter(report.recall.values())))
    header = f"{'links':<8}" + "".join(f"{'R@' + str(k):>9}" for k in ks)
    lines = [f"{report.model} on {report.dataset} ({report.queries:,} test queries)", header]
    for kind, by_k in report.recall.items():
        lines.append(f"{kind:<8}" + "".join(f"{by_k[k]:>9.4f}" for k in ks))
    if report.oracle is not None:
        lines.append("oracle (the generator's ground-truth item vectors):")
        for kind, by_k in report.oracle.items():
            lines.append(f"{kind:<8}" + "".join(f"{by_k[k]:>9.4f}" for k in ks))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from muse.core.atomic_write import write_text_atomic
    from muse.core.errors import ConfigError
    from muse.item2item.training.checkpoint_evaluation import evaluate_checkpoint

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    report = evaluate_checkpoint(
        args.checkpoint, args.dataset, args.batch_size, torch.device(args.device)
    )
    print(format_report(report))
    if args.out:
        write_text_atomic(args.out, json.dumps(report.as_dict(), indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0
