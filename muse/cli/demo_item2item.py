"""The demo's item-to-item half: catalogue → NoteLLM-2 and its text-only baseline → index bundle.

Generates the synthetic multimodal catalogue (reused when its config matches), trains NoteLLM-2
and the text-only LLM baseline from the same config, embeds the catalogue with NoteLLM-2, and
writes the similar-item index bundle and the encoder bundle (new items) where the demo's server
loads them; the server half (`muse.cli.demo_serving`) then calls SimilarItems over gRPC.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, NamedTuple

from muse.cli.main import main as cli

NOTELLM2_RUN, TEXT_ONLY_RUN = "notellm2", "text_only"
# The text-only LLM (NoteLLM) baseline: the same config, no image anywhere.
TEXT_ONLY_OVERRIDES = ('model.prompt.kind="text_only"', "model.late_fusion=false")
SIMILAR_ITEMS_BUNDLE = "similar_items"
ENCODER_BUNDLE = "item_encoder"


class ItemToItemResult(NamedTuple):
    """Where the demo left the catalogue and bundles, and each encoder's test recall."""

    data_dir: Path
    index_bundle: Path
    encoder_bundle: Path
    embeddings: Path  # NoteLLM-2's item embeddings (parquet), which the semantic IDs quantise
    recall: dict[str, dict[str, dict[str, float]]]  # run → link kind → k → recall
    oracle: dict[str, dict[str, float]] | None


def prepare_catalogue(config_path: Path, data_dir: Path, reuse: bool, progress: bool) -> None:
    """Generate the catalogue of ``config_path`` into ``data_dir`` unless it is there already."""
    from features.multimodal_catalogue import MANIFEST_FILE, generate_multimodal_catalogue
    from features.multimodal_catalogue_config import MultimodalCatalogueConfig
    from muse.core.config_loader import config_to_dict, load_config

    config = load_config(MultimodalCatalogueConfig, config_path)
    manifest = data_dir / MANIFEST_FILE
    if reuse and manifest.is_file():
        saved = json.loads(manifest.read_text()).get("config")
        if saved == json.loads(json.dumps(config_to_dict(config))):
            print(f"reusing the multimodal catalogue in {data_dir} (same config)")
            return
    summary = generate_multimodal_catalogue(config, data_dir, progress=progress)
    print(
        f"{summary.num_items:,} items with rendered images, "
        f"{sum(summary.train_pairs.values()):,} train / {sum(summary.test_pairs.values()):,} "
        f"test pairs in {summary.elapsed_seconds:.1f} s"
    )


def train_and_index(
    catalogue_config: Path,
    data_dir: Path,
    encoder_config: Path,
    overrides: tuple[str, ...],
    runs_dir: Path,
    bundle_root: Path,
    reuse_data: bool,
    progress: bool,
) -> ItemToItemResult:
    """Catalogue, both trainings, then the index and encoder bundles from NoteLLM-2's run."""
    prepare_catalogue(catalogue_config, data_dir, reuse_data, progress)
    recall: dict[str, dict[str, dict[str, float]]] = {}
    oracle = None
    for name, extra in ((NOTELLM2_RUN, ()), (TEXT_ONLY_RUN, TEXT_ONLY_OVERRIDES)):
        run_dir = runs_dir / name
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"\n--- {name} ({encoder_config}) ---", flush=True)
        settings = [f'data.dataset="{data_dir}"', f'name="{name}"', *overrides, *extra]
        args = ["i2i", "train", "--config", str(encoder_config), "--out", str(run_dir)]
        args += [part for setting in settings for part in ("--set", setting)]
        _check(cli([*args, *([] if progress else ["--no-progress"])]), "muse i2i train")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        recall[name] = metrics["test"]
        oracle = metrics.get("oracle") or oracle
    checkpoint = runs_dir / NOTELLM2_RUN / "checkpoints" / "best.pt"
    embeddings = runs_dir / NOTELLM2_RUN / "item_embeddings.parquet"
    encoder_bundle = bundle_root / ENCODER_BUNDLE
    index_bundle = bundle_root / SIMILAR_ITEMS_BUNDLE
    print("", flush=True)
    embed = ["i2i", "embed", "--checkpoint", str(checkpoint), "--dataset", str(data_dir)]
    _check(cli([*embed, "--out", str(embeddings)]), "muse i2i embed")
    _check(
        cli(["i2i", "export", "--checkpoint", str(checkpoint), "--out", str(encoder_bundle)]),
        "muse i2i export",
    )
    index = [
        "i2i",
        "index",
        "--embeddings",
        str(embeddings),
        "--items",
        str(data_dir / "items.parquet"),
    ]
    index += ["--encoder", str(encoder_bundle), "--out", str(index_bundle)]
    _check(cli(index), "muse i2i index")
    return ItemToItemResult(data_dir, index_bundle, encoder_bundle, embeddings, recall, oracle)


def _check(code: int, command: str) -> None:
    if code != 0:
        raise RuntimeError(f"{command} failed with exit code {code} (its error is printed above)")


def format_recall(result: ItemToItemResult, ks: tuple[str, ...] = ("1", "10", "100")) -> list[str]:
    """Lines of the demo summary: Recall@k by link kind, NoteLLM-2 beside the text-only LLM."""
    header = f"{'encoder':<12}{'links':<8}" + "".join(f"{'R@' + k:>8}" for k in ks)
    lines = [header]
    rows: list[tuple[str, dict[str, dict[str, float]]]] = list(result.recall.items())
    if result.oracle is not None:
        rows.append(("oracle", result.oracle))
    for name, table in rows:
        for link in ("image", "text", "both", "all"):
            if link in table:
                cells = "".join(f"{table[link][k]:>8.3f}" for k in ks)
                lines.append(f"{name:<12}{link:<8}{cells}")
    return lines


def similar_items_overrides(bundle_root: Path) -> list[str]:
    """Serving-config overrides that host SimilarItems over the demo's index bundle."""
    return [
        f'similar_items.bundle_root="{bundle_root}"',
        f'similar_items.default_bundle="{SIMILAR_ITEMS_BUNDLE}"',
    ]


def call_similar_items(address: str, data_dir: Path, k: int = 5) -> dict[str, Any]:
    """SimilarItems over gRPC for one test query item (by id) and for its content as a new item."""
    import grpc
    import numpy as np

    from features.item_catalogue import read_item_pair_dataset
    from serving.proto_gen.muse.serving.v1 import similar_items_pb2, similar_items_pb2_grpc

    data = read_item_pair_dataset(data_dir)
    items = data.items
    row = int(data.test.row_a[0])
    query_id = int(items.item_ids[row])
    with grpc.insecure_channel(address) as channel:
        stub = similar_items_pb2_grpc.SimilarItemsServiceStub(channel)
        by_id = stub.SimilarItems(
            similar_items_pb2.SimilarItemsRequest(item_id=query_id, k=k), timeout=30
        )
        new_item = similar_items_pb2.NewItem(
            image=items.image_bytes(row),
            title=items.titles[row],
            content=items.contents[row],
            topics=list(items.topics[row]),
            category=items.categories[row],
        )
        by_content = stub.SimilarItems(
            similar_items_pb2.SimilarItemsRequest(item=new_item, k=k), timeout=30
        )
    rows = items.rows_of(np.asarray(by_id.item_ids, dtype=np.int64))
    partners = set(data.test.item_id_b[data.test.item_id_a == query_id].tolist())
    return {
        "query": {"item_id": query_id, "title": items.titles[row]},
        "neighbours": [
            {
                "item_id": int(item_id),
                "score": float(score),
                "title": items.titles[int(found)],
                "co_engaged": int(item_id) in partners,
            }
            for item_id, score, found in zip(by_id.item_ids, by_id.scores, rows, strict=True)
        ],
        "new_item_top": [int(item_id) for item_id in by_content.item_ids],
        "new_item_scores": [float(score) for score in by_content.scores],
        "index_version": by_id.index_version,
    }
