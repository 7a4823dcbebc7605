"""`muse export --checkpoint RUN/checkpoints/best.pt --out runs/bundles/<name>`: write a model bundle."""

from __future__ import annotations

import argparse
from pathlib import Path


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="training checkpoint (.pt)")
    parser.add_argument(
        "--out", type=Path, required=True, help="bundle directory to write (replaced atomically)"
    )
    parser.add_argument(
        "--dataset", type=Path, default=None, help="dataset directory (default: the one trained on)"
    )
    parser.add_argument(
        "--name", default=None, help="bundle name (default: the --out directory name)"
    )


def run(args: argparse.Namespace) -> int:
    from muse.core.task_kind import TaskKind
    from muse.export.bundle_format import read_manifest
    from muse.ranking.export.checkpoint_export import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, args.dataset, args.name)
    manifest = read_manifest(out, TaskKind.RANKING)
    print(f"wrote {out} ({manifest['version']}, {len(manifest['files'])} files)")
    return 0
