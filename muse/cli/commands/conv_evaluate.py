"""`muse conv evaluate`: a trained conversational run on its test dialogues, with the scaling curve.

Prints every method at the last user turn (MRR, nDCG@1, nDCG@10, Recall@10) and the test-time
scaling curve (beams → MRR and nDCG@1 of the retriever alone and with TTR, against latency).
"""

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
        "--beams",
        default="1,5,10,20,50",
        help="comma-separated beam counts of the scaling curve (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-queries",
        type=int,
        default=50,
        help="test queries timed one at a time per beam count (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def parse_beams(text: str) -> tuple[int, ...]:
    from muse.core.errors import ConfigError

    try:
        beams = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--beams: expected comma-separated integers, got {text!r}") from None
    if not beams or min(beams) < 1:
        raise ConfigError(f"--beams: every beam count must be ≥ 1, got {text!r}")
    return beams


def format_figures(report: object, points: list) -> str:  # type: ignore[type-arg]
    """The methods table, then the scaling curve."""
    from muse.conversational.training.conversation_report import METRICS, ConversationalReport

    assert isinstance(report, ConversationalReport)
    lines = [
        f"{report.model}: {report.dialogues:,} test dialogues, {report.examples:,} user turns; "
        f"{report.beams} beams, α {report.alpha:.2f}",
        f"{'last turn':<16}" + "".join(f"{name:>11}" for name in METRICS),
    ]
    for method, figures in report.methods.items():
        lines.append(
            f"{method:<16}" + "".join(f"{figures.last_turn[name]:>11.4f}" for name in METRICS)
        )
    lines.append(
        "scaling (last turn): beams, α, MRR alone → with TTR, nDCG@1 alone → with TTR, p50 ms"
    )
    for point in points:
        lines.append(
            f"  B={point.beams:<3} α {point.alpha:.2f}  MRR {point.generative['mrr']:.4f} → "
            f"{point.generative_ttr['mrr']:.4f}  nDCG@1 {point.generative['ndcg@1']:.4f} → "
            f"{point.generative_ttr['ndcg@1']:.4f}  {point.p50_ms:8.1f} ms"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from muse.conversational.training.checkpoint_evaluation import evaluate_trained, load_trained
    from muse.core.atomic_write import write_text_atomic
    from muse.core.errors import ConfigError

    beams = parse_beams(args.beams)
    if args.latency_queries < 0:
        raise ConfigError(f"--latency-queries must be ≥ 0, got {args.latency_queries}")
    trained = load_trained(args.checkpoint, torch.device(args.device))
    report, points = evaluate_trained(trained, beams, args.latency_queries, not args.no_progress)
    print(format_figures(report, points))
    if args.out:
        payload = {"report": report.as_dict(), "scaling": [p.as_dict() for p in points]}
        write_text_atomic(args.out, json.dumps(payload, indent=2))
    return 0
