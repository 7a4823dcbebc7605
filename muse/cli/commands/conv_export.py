"""`muse conv export`: a trained conversational run → the bundle the Converse service loads."""

from __future__ import annotations

import argparse
from pathlib import Path


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="a conversational training checkpoint (RUN/checkpoints/best.pt)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="bundle directory (e.g. BUNDLE_ROOT/conversational)"
    )
    parser.add_argument("--name", help="bundle name (default: the --out directory's name)")
    parser.add_argument(
        "--alpha",
        type=float,
        help="TTR weight α (default: tuned on the validation dialogues, or the config's)",
    )


def run(args: argparse.Namespace) -> int:
    from muse.conversational.export.run_export import export_checkpoint
    from muse.core.errors import ConfigError

    if args.alpha is not None and not 0.0 <= args.alpha <= 1.0:
        raise ConfigError(f"--alpha must be in [0, 1], got {args.alpha}")
    manifest = export_checkpoint(args.checkpoint, args.out, args.name or args.out.name, args.alpha)
    recipe = manifest["conversational"]
    print(
        f"conversational bundle {manifest['version']} → {args.out} "
        f"({recipe['beams']} beams, α {recipe['alpha']:.2f}; checked against the run's models)"
    )
    return 0
