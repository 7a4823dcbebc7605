"""benchmarks/item_encoding.py at tiny scale end to end, and its report section."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.benchmarks.script_loader import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "item_encoding.py"


def _load_script() -> ModuleType:
    return load_script("item_encoding")


def test_tiny_run_writes_section_and_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load_script()
    report = tmp_path / "results" / "item_encoding.md"
    report.parent.mkdir()
    report.write_text("# Item-to-item serving\n\n## SimilarItems by id\n\nkept\n")
    workdir = tmp_path / "work"
    argv = ["--config", str(ROOT / "configs/item2item/notellm2_tiny.toml"), "--items", "120"]
    argv += ["--image-size", "20", "--requests", "6", "--batches", "2", "--parity-items", "8"]
    threads = torch.get_num_threads()
    try:
        assert (
            bench.main([*argv, "--out", str(report), "--workdir", str(workdir), "--no-progress"])
            == 0
        )
    finally:
        torch.set_num_threads(threads)
    text = report.read_text()
    assert text.startswith("# Item-to-item serving\n\n## SimilarItems by id\n\nkept\n")
    assert text.count(bench.SECTION_BEGIN) == 1 and "## Encoding new items" in text
    outcome = json.loads((workdir / "item_encoding.json").read_text())
    assert outcome["parity_max_abs"] <= 1e-4 and outcome["export"]["check_max_abs"] <= 1e-4
    rows = {(row["path"], row["batch"]): row for row in outcome["timings"]}
    assert set(rows) == {(path, batch) for path in bench.PATHS for batch in (1, 32)}
    for (_, batch), row in rows.items():
        assert row["calls"] == (6 if batch == 1 else 2) and row["items"] == row["calls"] * batch
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["items_per_second"] > 0
        assert row["cpu_ms_per_item"] >= 0
    assert [row["batch"] for row in outcome["ratios"]] == [1, 32]
    assert "torch / onnxruntime at batch 32" in capsys.readouterr().out


def test_section_replaced_between_markers_or_appended() -> None:
    bench = _load_script()
    begin, end = bench.SECTION_BEGIN, bench.SECTION_END
    section = f"{begin}\n## Encoding new items\nnew\n{end}"
    assert bench.replace_section(None, section) == f"# Item-to-item serving\n\n{section}\n"
    old = f"# T\n\n## SimilarItems by id\n\n{begin}\nold\n{end}\n"
    assert bench.replace_section(old, section) == f"# T\n\n## SimilarItems by id\n\n{section}\n"
