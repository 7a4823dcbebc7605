"""`muse i2i export --checkpoint RUN/checkpoints/best.pt --out runs/bundles/<name>`: the encoder
bundle (ONNX + tokenizer + prompt and image recipe) SimilarItems embeds new items with."""

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
        "--out",
        type=Path,
        required=True,
        help="bundle directory to write (replaced atomically); put it beside the index bundles",
    )
    parser.add_argument(
        "--name", default=None, help="bundle name (default: the --out directory name)"
    )


def run(args: argparse.Namespace) -> int:
    import time

    from muse.item2item.export.encoder_bundle_writer import export_encoder_checkpoint

    started = time.perf_counter()
    manifest = export_encoder_checkpoint(args.checkpoint, args.out, args.name)
    check = manifest["export_check"]
    recipe = manifest["encoder"]
    print(
        f"wrote {args.out} ({manifest['version']}): {recipe['encoder_kind']} encoder, prompt "
        f"{recipe['prompt']['kind']}, {recipe['output_dim']}-d; ONNX matches torch to "
        f"{check['max_abs_difference']:.2g} (max abs) on {check['items']} items, "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0
