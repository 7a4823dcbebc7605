"""`muse evaluate`: exact AUC, GAUC and logloss of a checkpoint over a whole split."""

from __future__ import annotations

import argparse


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="a checkpoint, e.g. <run>/checkpoints/best.pt"
    )
    parser.add_argument(
        "--dataset", help="dataset directory (default: the one the model was trained on)"
    )
    parser.add_argument("--split", default="test", choices=("train", "test"), help="split to score")
    parser.add_argument(
        "--out", help="where metrics.json goes (default: the checkpoint's run directory)"
    )
    parser.add_argument("--batch-size", type=int, help="evaluation batch size")
    parser.add_argument(
        "--predictions",
        help="also write every sample's user_id, item_id, label, probability to this parquet file",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from muse.ranking.training.checkpoint_evaluation import evaluate

    metrics = evaluate(
        args.checkpoint,
        dataset=args.dataset,
        out=args.out,
        split=args.split,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        predictions=args.predictions,
    )
    print(
        f"{args.split}: AUC {metrics.auc:.4f} GAUC {metrics.gauc:.4f} logloss {metrics.logloss:.4f} "
        f"over {metrics.num_samples} samples"
    )
    return 0
