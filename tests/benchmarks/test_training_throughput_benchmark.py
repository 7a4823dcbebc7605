"""benchmarks/training_throughput.py on a tiny random dataset: every stage timed, neighbours run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.script_loader import load_script


def _row(report: str, first_cell: str) -> list[str]:
    line = next(line for line in report.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_tiny_run_times_every_stage_and_the_neighbour_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_script("training_throughput")
    report_path = tmp_path / "training_throughput.md"
    bench.main(
        [
            "--users", "200", "--history", "100", "--batch-size", "64", "--steps", "2",
            "--warmup", "1", "--threads", "1", "--neighbours", "1", "--reference-steps", "1",
            "--report", str(report_path),
        ]
    )  # fmt: skip
    report = report_path.read_text()
    assert "## Training loop" in capsys.readouterr().out
    # Each stage of the breakdown took time: the GSU is timed apart from the gathering.
    for stage in bench.STAGES:
        assert float(_row(report, stage)[1]) > 0, stage
    alone = _row(report, "1")  # the first loop row: one thread, the machine alone
    assert alone[:2] == ["1", "0"] and alone[-1] == "—"
    shared = next(
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in report.splitlines()
        if line.startswith("| 1 | 1 |")
    )
    assert float(shared[2].strip("*").replace(",", "")) > 0
    assert shared[-1].endswith("×") and float(shared[-1][:-1]) > 0
    assert "- with one busy-loop neighbour (1 thread(s)):" in report
    assert "| peer: plain reference GSU, 1 | 0 |" in report
