"""`muse bench gsu`: benchmark the GSU top-K cosine search against faiss, torch and numpy."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys


def build_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="benchmark TOML (GsuBenchmarkConfig keys); default: the issue's grid"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. repeats=30 or lengths=[1000,100000] (repeatable)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny grid and table: a smoke run in seconds"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--output-dir", help="where gsu.md and gsu.png go (default: docs/results)")
    parser.add_argument("--no-write", action="store_true", help="do not write the report files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from muse.core.config_loader import apply_overrides, config_from_dict, load_config
    from muse.core.errors import ConfigError
    from muse.search.benchmark import (
        QUICK_CONFIG,
        GsuBenchmarkConfig,
        report_json,
        results_table,
        run_benchmark,
        target_lines,
        utilisation_lines,
        write_report,
    )

    try:
        if args.config:
            config = load_config(GsuBenchmarkConfig, args.config, args.overrides)
        else:
            base = QUICK_CONFIG if args.quick else GsuBenchmarkConfig()
            raw = apply_overrides(dataclasses.asdict(base), args.overrides, source="--set")
            config = config_from_dict(GsuBenchmarkConfig, raw, "--set")
    except ConfigError as error:
        print(f"muse bench gsu: {error}", file=sys.stderr)
        return 2
    if args.output_dir:
        config = dataclasses.replace(config, output_dir=args.output_dir)
    report = run_benchmark(config, progress=not args.no_progress)
    if args.json:
        print(report_json(report))
    else:
        print("\n".join(results_table(report)))
        print("\n".join(target_lines(report) + utilisation_lines(report)))
        for path, peak in report.peak_extra_memory_mb.items():
            if peak is not None:
                print(f"peak extra memory of the largest search ({path}): {peak:.1f} MB")
    if not args.no_write:
        # Run as `muse bench gsu ...` or as `benchmarks/gsu.py ...`: name it the first way.
        given = sys.argv[3:] if sys.argv[1:3] == ["bench", "gsu"] else sys.argv[1:]
        command = "muse bench gsu " + " ".join(shlex.quote(a) for a in given)
        report_path = write_report(report, command.strip())
        print(f"wrote {report_path}", file=sys.stderr)
    return 0
