"""benchmarks/scoring_graph.py --quick end to end: both graphs exported, timed, compared, reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.script_loader import load_script


def test_quick_run_writes_report_and_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_script("scoring_graph")
    assert bench.main(["--quick", "--no-progress", "--output-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "request graph, onnxruntime" in printed and "row graph, onnxruntime" in printed
    report = (tmp_path / "scoring_graph.md").read_text()
    assert "| L=1,000 |" in report and "## Target (issue 11)" in report
    # The two forms of the second stage agree (the figure the report quotes).
    difference = float(report.split("Largest logit difference between the two forms: ")[1][:7])
    assert difference < 1e-4
    assert (tmp_path / "scoring_graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
