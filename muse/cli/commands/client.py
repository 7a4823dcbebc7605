"""`muse client --address HOST:PORT --user U --candidates 1,2,3`: score one request and print it."""

from __future__ import annotations

import argparse


def _ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integer ids, got {text!r}"
        ) from error


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default="127.0.0.1:50051", help="server address HOST:PORT")
    parser.add_argument("--user", type=int, required=True, help="raw user id")
    parser.add_argument(
        "--candidates", type=_ids, required=True, help="comma-separated raw item ids"
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
    import sys

    import grpc

    from serving.ranking.client import RankingClient

    context = dict(entry.split("=", 1) for entry in args.context if "=" in entry)
    with RankingClient(args.address) as client:
        try:
            result = client.score(args.user, args.candidates, context, timeout=args.timeout)
        except grpc.RpcError as error:
            print(f"muse client: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    print(f"model_version: {result.model_version}")
    for layer, experiment, variant in result.assignments:
        print(f"assignment: layer={layer} experiment={experiment or '-'} variant={variant}")
    for item_id, score in zip(args.candidates, result.scores, strict=True):
        print(f"{item_id}\t{score:.6f}")
    return 0
