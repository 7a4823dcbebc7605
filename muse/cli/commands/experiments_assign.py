"""`muse experiments assign`: print the experiment assignments and routing of users."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def build_parser(parser: argparse.ArgumentParser) -> None:
    """Options of `muse experiments assign`."""
    parser.add_argument("--config", type=Path, required=True, help="experiment config TOML")
    parser.add_argument(
        "--user", type=int, action="append", required=True, help="raw user id (int64); repeatable"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per user")


def run(args: argparse.Namespace) -> int:
    """Print, per user, the bundle and overrides it is served with and its assignment in each layer."""
    from serving.experiments import Assigner, load_validated

    assigner = Assigner(load_validated(args.config))
    for user in args.user:
        routing = assigner.route(user)
        overrides = {key: getattr(routing.overrides, key) for key in routing.overrides.set_keys()}
        if args.json:
            record = {
                "user": user,
                "bundle": routing.bundle,
                "overrides": overrides,
                "assignments": [
                    {
                        "layer": a.layer,
                        "experiment": a.experiment,
                        "variant": a.variant,
                        "bucket": a.bucket,
                        "bundle": a.bundle,
                    }
                    for a in routing.assignments
                ],
            }
            print(json.dumps(record))
            continue
        print(f"user {user}: bundle {routing.bundle} overrides {overrides or '{}'}")
        for a in routing.assignments:
            print(f"  layer {a.layer} bucket {a.bucket}: {a.label}")
    return 0
