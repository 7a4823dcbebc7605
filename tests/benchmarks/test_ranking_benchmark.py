"""benchmarks/ranking.py: the --quick smoke run end to end, and the arithmetic of the holds."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.benchmarks.script_loader import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "ranking.py"


def _load_script() -> ModuleType:
    return load_script("ranking")


def test_quick_run_writes_report_chart_and_per_run_files(tmp_path: Path) -> None:
    report = tmp_path / "report" / "ranking.md"
    command = [
        sys.executable,
        str(SCRIPT),
        "--quick",
        "--models",
        "muse,din_last50",
        "--seeds",
        "2",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--report",
        str(report),
        "--no-progress",
    ]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = report.read_text()
    assert "| **MUSE (SA-TA + SimTier)** (`muse`) | 2 |" in text
    assert "| DIN (last 50) (`din_last50`) | 2 |" in text
    assert "| oracle (true click probability) |" in text
    assert "closes ≥ 70% of the GAUC gap" in text
    chart = report.with_name("ranking_gauc.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for model in ("muse", "din_last50"):
        for seed in (1, 2):
            run = tmp_path / "runs" / "runs" / model / f"seed{seed}"
            metrics = json.loads((run / "metrics.json").read_text())
            assert 0.0 <= metrics["gauc"] <= 1.0 and metrics["epochs"] >= 1
            assert (run / "config.toml").is_file()
    summary = json.loads((tmp_path / "runs" / "summary.json").read_text())
    assert set(summary["models"]) == {"muse", "din_last50"}
    # A second invocation reuses the dataset and every finished run.
    again = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "4 of 4 runs already finished" in again.stdout
    assert "reusing the synthetic dataset" in again.stdout


def test_holds_arithmetic() -> None:
    ranking = _load_script()
    result = ranking.ModelResult
    results = {
        "muse": result(
            "muse", [1, 2, 3], [0.9] * 3, [0.90, 0.91, 0.92], [0.2] * 3, [2] * 3, [1] * 3, [1.0] * 3
        ),
        "sim_soft": result(
            "sim_soft",
            [1, 2, 3],
            [0.8] * 3,
            [0.88, 0.89, 0.90],
            [0.2] * 3,
            [2] * 3,
            [1] * 3,
            [1.0] * 3,
        ),
        "sim_hard": result(
            "sim_hard",
            [1, 2, 3],
            [0.8] * 3,
            [0.80, 0.85, 0.90],
            [0.2] * 3,
            [2] * 3,
            [1] * 3,
            [1.0] * 3,
        ),
        "din_last50": result(
            "din_last50",
            [1, 2, 3],
            [0.6] * 3,
            [0.59, 0.60, 0.61],
            [0.3] * 3,
            [2] * 3,
            [1] * 3,
            [1.0] * 3,
        ),
    }
    # 0.91 − 0.89 = 0.02 against 2·√(0.01² + 0.01²) ≈ 0.028: not beyond 2 std.
    assert ranking.beyond_two_std(results, "muse", "sim_soft").holds is False
    # 0.85 − 0.60 = 0.25 against 2·√(0.05² + 0.01²) ≈ 0.102: beyond 2 std.
    assert ranking.beyond_two_std(results, "sim_hard", "din_last50").holds is True
    assert ranking.beyond_two_std(results, "muse", "twin").holds is None
    # (0.91 − 0.60) / (0.95 − 0.60) ≈ 88.6% ≥ 70%; against an oracle at 1.1 it is 62%.
    closed = ranking.gap_closed(results, 0.95)
    assert closed.holds is True and "88.6%" in closed.detail
    assert ranking.gap_closed(results, 1.1).holds is False
    assert math.isnan(result.std([0.5]))
    assert ranking.parse_seeds("3") == [1, 2, 3] and ranking.parse_seeds("7,9") == [7, 9]
