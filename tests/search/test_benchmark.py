"""`python benchmarks/gsu.py --quick` runs end to end and writes its report, chart and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import gsu


def test_quick_benchmark_writes_report_chart_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = [
        "--quick",
        "--json",
        "--no-progress",
        "--output-dir",
        str(tmp_path),
        "--set",
        "lengths=[600, 2000]",
        "--set",
        "candidate_counts=[1, 9]",
        "--set",
        "repeats=2",
        "--set",
        "table_rows=5000",
        "--set",
        "memory_probe_bytes=16777216",
    ]
    assert gsu.main(arguments) == 0
    figures = json.loads(capsys.readouterr().out)
    cells = figures["cells"]
    assert [(c["history"], c["length"], c["candidates"]) for c in cells] == [
        (history, length, count)
        for history in ("random", "synthetic")
        for length in (600, 2000)
        for count in (1, 9)
    ]
    # The generator's lifelong histories repeat popular items; random ones barely do.
    shares = {(c["history"], c["length"]): c["distinct_share"] for c in cells}
    assert shares[("synthetic", 2000)] < 0.9 < shares[("random", 600)]
    for cell in cells:
        assert cell["recall"]["ours"] >= 0.999 and cell["recall"]["faiss"] >= 0.999
        for field in (
            "ours_warm_ms",
            "ours_cold_ms",
            "ours_prepare_ms",
            "faiss_ms",
            "torch_ms",
            "numpy_ms",
        ):
            assert cell[field] > 0
        assert cell["faiss_ratio"] == pytest.approx(cell["faiss_ms"] / cell["ours_warm_ms"])
    rates = figures["machine"]["rates"]
    assert rates["fp32_matmul_gflops"] > 0 and rates["memory_read_gbps"] > 0
    assert rates["int8_mix_gmacs"] > 0
    peaks = figures["peak_extra_memory_mb"]
    assert set(peaks) == {"served", "gathered"} and all(0 <= p < 256 for p in peaks.values())
    report = (tmp_path / "gsu.md").read_text()
    assert "Command: `python benchmarks/gsu.py --quick --json" in report
    assert "| history | L | distinct | C | ours warm |" in report and "| synthetic | 2,000 |" in report
    assert (tmp_path / "gsu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_setting_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    assert gsu.main(["--quick", "--set", "no_such_key=3", "--no-write"]) == 2
    assert "no_such_key" in capsys.readouterr().err
