"""`muse client`: score one request against a running `muse serve` and print the scores.

muse client --address HOST:PORT --user U --candidates 1,2,3
muse client --address HOST:PORT --dataset data/synth_dataset   # a test user and its impressions
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integer ids, got {text!r}"
        ) from error


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default="127.0.0.1:50051", help="server address HOST:PORT")
    parser.add_argument(
        "--user", type=int, help="raw user id (default with --dataset: its first test user)"
    )
    parser.add_argument(
        "--candidates",
        type=_ids,
        help="comma-separated raw item ids (default with --dataset: the user's test impressions)",
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        help="a prepared dataset (muse data prepare --out) to take the user and candidates from",
    )
    parser.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="request context entry, e.g. --context model=din_last50 (repeatable)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")


def run(args: argparse.Namespace) -> int:
    """Print the model version, the experiment assignments and one ``item<TAB>score`` per line."""
    import sys

    import grpc

    from muse.core.errors import ConfigError
    from serving.ranking.client import RankingClient

    user, candidates = args.user, args.candidates
    if user is None or candidates is None:
        if args.dataset is None:
            raise ConfigError("--user and --candidates: give both, or --dataset to take them from")
        from features.dataset import Dataset
        from muse.cli.sample_requests import sample_request

        user, shown = sample_request(Dataset(args.dataset), user)
        if candidates is None:
            candidates = shown
        print(
            f"request: user {user}, {len(candidates)} candidates"
            + (f" (its test impressions in {args.dataset})" if args.candidates is None else "")
        )
    context = dict(entry.split("=", 1) for entry in args.context if "=" in entry)
    with RankingClient(args.address) as client:
        try:
            result = client.score(user, candidates, context, timeout=args.timeout)
        except grpc.RpcError as error:
            print(
                f"muse client: {args.address}: {error.code().name}: {error.details()}",
                file=sys.stderr,
            )
            return 1
    print(f"model_version: {result.model_version}")
    for layer, experiment, variant in result.assignments:
        print(f"assignment: layer={layer} experiment={experiment or '-'} variant={variant}")
    for item_id, score in zip(candidates, result.scores, strict=True):
        print(f"{item_id}\t{score:.6f}")
    return 0
