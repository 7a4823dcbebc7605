"""benchmarks/ranking_item_embeddings.py: the --quick run end to end over a tiny catalogue, with
an embedding file argument and two oracle views, then a rerun that reuses everything."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from features.multimodal_catalogue import generate_multimodal_catalogue
from features.multimodal_catalogue_config import ImageConfig, MultimodalCatalogueConfig, PairConfig
from features.synthetic_catalogue_items import write_oracle_view
from tests.benchmarks.script_loader import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "ranking_item_embeddings.py"


def _load_script() -> ModuleType:
    return load_script("ranking_item_embeddings")


def test_quick_run_writes_the_side_by_side_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the default configs are relative to the repository
    catalogue = tmp_path / "items"
    generate_multimodal_catalogue(
        MultimodalCatalogueConfig(
            num_items=600, image=ImageConfig(size=16), pairs=PairConfig(300, 100)
        ),
        catalogue,
        progress=False,
    )
    # Stands in for `muse i2i embed` output: the same parquet format.
    image_file = write_oracle_view(catalogue, "image", tmp_path / "image_view.parquet")
    report = tmp_path / "report" / "ranking_item_embeddings.md"
    argv = [
        "--quick",
        "--catalogue",
        str(catalogue),
        "--embeddings",
        f"image_file={image_file}",
        "--oracle-views",
        "all,text",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--report",
        str(report),
        "--no-progress",
    ]
    benchmark = _load_script()
    assert benchmark.main(argv) == 0
    text = report.read_text()
    assert "| ground truth (catalogue oracle) (`oracle_all`) |" in text
    assert "| oracle text view (a perfect text-only embedding) (`oracle_text`) |" in text
    assert "| image_file (`image_file`) |" in text
    assert "| oracle (true click probability) |" in text
    assert "ceiling: click model seeing only what the oracle text view singles out" in text
    assert "ranking_item_embeddings.py --quick" in text  # the command
    assert '[model.search]\nkind = "multimodal_cosine"' in text  # the config
    assert f'catalogue = "{catalogue}"' in text
    png = report.with_name("ranking_item_embeddings.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("oracle_all", "oracle_text", "image_file"):
        run = tmp_path / "runs" / "runs" / name / "seed1"
        metrics = json.loads((run / "metrics.json").read_text())
        assert 0.0 <= metrics["gauc"] <= 1.0
        config = (run / "config.toml").read_text()
        assert f"data/datasets/{name}" in config
    summary = json.loads((tmp_path / "runs" / "summary.json").read_text())
    assert summary["sets"]["oracle_text"]["dim"] == 40
    assert summary["sets"]["oracle_all"]["dim"] == 60
    assert summary["data"]["view_oracle_gauc"]["text"] < summary["data"]["oracle_gauc"]
    capsys.readouterr()
    # A rerun reuses the data, the datasets and every finished run.
    assert benchmark.main(argv) == 0
    out = capsys.readouterr().out
    assert "reusing the synthetic ranking data" in out
    assert "3 of 3 runs already finished" in out


def test_i2i_commands() -> None:
    benchmark = _load_script()
    train, embed, overrides = benchmark.i2i_commands(
        "text_only",
        Path("configs/item2item/notellm2_bench.toml"),
        Path("data/items"),
        Path("runs/x/i2i/text_only"),
        Path("runs/x/embeddings/text_only.parquet"),
        ["training.max_epochs=1"],
    )
    assert train[train.index("--config") + 1] == "configs/item2item/notellm2_bench.toml"
    assert 'model.prompt.kind="text_only"' in overrides
    assert 'data.dataset="data/items"' in overrides and overrides[-1] == "training.max_epochs=1"
    assert embed[3:5] == ["i2i", "embed"]
    assert embed[embed.index("--checkpoint") + 1] == "runs/x/i2i/text_only/checkpoints/best.pt"
    assert embed[embed.index("--out") + 1] == "runs/x/embeddings/text_only.parquet"
