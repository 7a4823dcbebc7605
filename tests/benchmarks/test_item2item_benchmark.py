"""benchmarks/item2item.py: the --quick smoke run end to end, resuming, and the hold arithmetic."""

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
SCRIPT = ROOT / "benchmarks" / "item2item.py"


def _load_script() -> ModuleType:
    return load_script("item2item")


def test_quick_run_writes_report_chart_and_per_run_files(tmp_path: Path) -> None:
    report = tmp_path / "report" / "item2item.md"
    command = [
        sys.executable,
        str(SCRIPT),
        "--quick",
        "--variants",
        "notellm2,text_only",
        "--seeds",
        "2",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--report",
        str(report),
        "--no-progress",
    ]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    text = report.read_text()
    assert "## Image links" in text and "generator oracle" in text
    assert "text-only LLM (NoteLLM) on image links, Recall@10" in text
    assert (report.parent / "item2item_recall.png").stat().st_size > 10_000
    for variant in ("notellm2", "text_only"):
        for seed in (1, 2):
            metrics = json.loads(
                (tmp_path / "runs" / "runs" / variant / f"seed{seed}" / "metrics.json").read_text()
            )
            assert 0.0 <= metrics["test"]["image"]["10"] <= 1.0
            assert metrics["model"] == variant
    # A second run trains nothing: every run is finished with the same config.
    again = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    assert again.returncode == 0 and "4 of 4 runs already finished" in again.stdout


def test_beyond_two_std_uses_the_spread_of_the_difference() -> None:
    script = _load_script()

    def row(name: str, values: list[float]) -> object:
        recall = {"image": {"10": values}}
        return script.VariantResult(name, [1, 2, 3], recall, [], [], [])

    results = {
        "notellm2": row("notellm2", [0.50, 0.52, 0.54]),
        "text_only": row("text_only", [0.40, 0.42, 0.44]),
        "basic_mlrm": row("basic_mlrm", [0.47, 0.50, 0.53]),
    }
    clear = script.beyond_two_std(results, "notellm2", "text_only", "image", "10")
    # Difference 0.10; std 0.02 each → 2·√(0.02² + 0.02²) = 0.0566 < 0.10.
    assert clear.holds is True and "+0.100" in clear.detail
    close = script.beyond_two_std(results, "notellm2", "basic_mlrm", "image", "10")
    # Difference 0.02; 2·√(0.02² + 0.03²) = 0.0721 > 0.02.
    assert close.holds is False
    assert script.beyond_two_std(results, "notellm2", "minilm", "image", "10").holds is None
    assert math.isnan(script.std([0.5]))
