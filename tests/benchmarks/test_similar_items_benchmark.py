"""benchmarks/similar_items.py at tiny scale end to end (real server process), and its report section."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmarks.script_loader import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "similar_items.py"


def _load_script() -> ModuleType:
    return load_script("similar_items")


def test_tiny_run_writes_section_chart_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load_script()
    report = tmp_path / "results" / "item2item_serving.md"
    report.parent.mkdir()
    # Someone else's section in the same file survives the benchmark writing its own.
    report.write_text("# Item-to-item serving\n\n## Encoding new items\n\nkept\n")
    workdir = tmp_path / "work"
    argv = ["--items", "5000", "--requests", "200", "--warmup", "20", "--queries", "200"]
    argv += ["--exact-queries", "50", "--out", str(report), "--workdir", str(workdir)]
    assert bench.main([*argv, "--no-progress"]) == 0

    text = report.read_text()
    assert text.startswith("# Item-to-item serving\n\n## Encoding new items\n\nkept\n")
    assert text.count(bench.SECTION_BEGIN) == 1 and text.count(bench.SECTION_END) == 1
    assert "## SimilarItems by id" in text and '"items": 5000' in text
    chart = report.with_name("item2item_serving_similar_items.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"![SimilarItems latency]({chart.name})" in text

    outcome = json.loads((workdir / "similar_items.json").read_text())
    assert 0.0 <= outcome["recall"] <= 1.0 and outcome["recall"] >= 0.9
    assert outcome["recall_queries"] == 200
    assert [row["concurrency"] for row in outcome["served"]] == [8, 1]
    for row in outcome["served"]:
        assert row["ok"] == 200 and row["errors"] == 0
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["rps"] > 0 and row["server_cpu_seconds"] >= 0
    for row in outcome["in_process"]:
        assert row["queries"] == 50 and 0 < row["p50_ms"] <= row["p99_ms"]
    assert outcome["build"]["build_wall"] > 0 and outcome["build"]["bundle_bytes"] > 0
    assert outcome["index_config"]["kind"] == "hnsw"

    printed = capsys.readouterr().out
    for target in ("p99 ≤ 10 ms at concurrency 8", "recall@100 ≥ 0.95"):
        assert any(
            line.startswith(("PASS: ", "FAIL: ")) and target in line
            for line in printed.splitlines()
        ), printed[-2000:]


def test_section_replaced_between_markers_or_appended() -> None:
    bench = _load_script()
    begin, end = bench.SECTION_BEGIN, bench.SECTION_END
    section = f"{begin}\n## SimilarItems by id\nnew\n{end}"
    assert bench.replace_section(None, section) == f"# Item-to-item serving\n\n{section}\n"
    appended = bench.replace_section("# T\n\nother\n", section)
    assert appended == f"# T\n\nother\n\n{section}\n"
    old = f"# T\n\n{begin}\nold\n{end}\n\n## Encoding new items\n"
    assert bench.replace_section(old, section) == f"# T\n\n{section}\n\n## Encoding new items\n"
