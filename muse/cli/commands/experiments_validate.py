"""`muse experiments validate`: check an A/B experiment config (and, optionally, a ramp).

Like a linter: exit 0 when the config is valid; 1 with every problem listed, one per line, when
it is not; 2 with one line when there is nothing to check (no such file, not TOML).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser(parser: argparse.ArgumentParser) -> None:
    """Options of `muse experiments validate`."""
    parser.add_argument("--config", type=Path, required=True, help="experiment config TOML")
    parser.add_argument(
        "--bundles",
        type=Path,
        default=None,
        help="bundle root directory; every bundle the config names must be a directory under it",
    )
    parser.add_argument(
        "--previous",
        type=Path,
        default=None,
        help="the config this one replaces: report enrolled users the change would move",
    )


def run(args: argparse.Namespace) -> int:
    """Print every problem (one per line, to stderr) and return 1, or print a summary and return 0.

    A config file that is missing or not TOML raises ConfigError (one line, exit 2).
    """
    from serving.experiments import (
        ExperimentConfigError,
        enrolment_moves,
        load_experiments,
        validate,
    )

    try:
        config = load_experiments(args.config)
        errors = validate(config, args.bundles)
        if args.previous is not None:
            errors.extend(enrolment_moves(load_experiments(args.previous), config))
    except ExperimentConfigError as error:
        errors = error.errors
    if errors:
        files = tuple(str(path) for path in (args.config, args.previous) if path is not None)
        for message in errors:
            # Load errors already start with the file name; semantic ones do not.
            prefixed = message if message.startswith(files) else f"{args.config}: {message}"
            print(prefixed, file=sys.stderr)
        print(f"{args.config}: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    experiments = sum(len(layer.experiments) for layer in config.layers.values())
    variants = sum(
        len(e.variants) for layer in config.layers.values() for e in layer.experiments.values()
    )
    bundles = (
        f"bundles checked under {args.bundles}"
        if args.bundles
        else "bundles not checked (no --bundles)"
    )
    print(
        f"{args.config}: ok: {len(config.layers)} layer(s), {experiments} experiment(s), "
        f"{variants} variant(s); {bundles}"
    )
    return 0
