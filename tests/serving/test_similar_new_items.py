"""SimilarItems for an item that is not in the catalogue: the encoder bundle beside the index.

The chain is the CLI's: a tiny catalogue, a tiny trained NoteLLM-2 (`muse train`), its encoder
bundle (`muse i2i export`), the catalogue's torch embeddings (`muse i2i embed`) and an index that
names the encoder (`muse i2i index --encoder`). A catalogue item re-sent as content must then
find itself first with a cosine of about 1, through the RPC.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import NamedTuple

import grpc
import numpy as np
import pytest
import torch

from features.item_catalogue import ItemCatalogue, read_items
from muse.cli.main import main
from muse.core.errors import ConfigError, DataError
from muse.item2item.export.encoder_bundle_layout import TOKENIZER_FILE
from muse.item2item.export.encoder_bundle_writer import write_encoder_bundle
from muse.item2item.export.new_item_inputs import NewItem
from muse.item2item.index.index_bundle import read_index_bundle, write_index_bundle
from muse.item2item.index.index_config import IndexConfig, IndexKind
from muse.item2item.index.similar_item_index import SimilarItemIndex
from muse.item2item.models.notellm2 import NoteLlm2
from muse.item2item.models.prompt import ItemPrompt
from muse.item2item.models.prompt_config import PromptKind
from serving.errors import InvalidArgument, VariantUnavailable
from serving.exposure_log_config import ExposureLogConfig
from serving.item2item import new_item_encoder
from serving.item2item.engine import SimilarItemsEngine
from serving.item2item.requests import SimilarQuery
from serving.item2item.service import similar_items_service
from serving.item2item.similar_items_config import SimilarItemsConfig
from serving.local_behaviour_store_config import LocalBehaviourStoreConfig
from serving.metrics import ServingMetrics
from serving.proto_gen.muse.serving.v1 import similar_items_pb2, similar_items_pb2_grpc
from serving.server import MuseServer
from serving.serving_config import ServingConfig
from tests.item2item import tiny

ROOT = Path(__file__).resolve().parents[2]
TINY_DATA = ["num_items=120", "pairs.train_pairs=200", "pairs.test_pairs=40", "image.size=16"]


class Served(NamedTuple):
    root: Path  # bundle root: "similar_items" (names "encoder"), "encoder", "ids_only"
    catalogue: ItemCatalogue


def _cli(*args: str) -> None:
    assert main(list(args)) == 0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        work = tmp_path_factory.mktemp("new_items")
        data, run, root = work / "items", work / "run", work / "bundles"
        settings = [part for setting in TINY_DATA for part in ("--set", setting)]
        synth = ["data", "synth-items", "--config", str(ROOT / "configs/data/items_default.toml")]
        _cli(*synth, *settings, "--out", str(data), "--no-progress")
        train = ["train", "--config", str(ROOT / "configs/item2item/notellm2_tiny.toml")]
        train += ["--set", f'data.dataset="{data}"', "--set", "training.max_epochs=1"]
        _cli(*train, "--out", str(run), "--no-progress")
        checkpoint = str(run / "checkpoints" / "best.pt")
        _cli("i2i", "export", "--checkpoint", checkpoint, "--out", str(root / "encoder"))
        embeddings = str(work / "embeddings.parquet")
        _cli(
            "i2i", "embed", "--checkpoint", checkpoint, "--dataset", str(data), "--out", embeddings
        )
        index = ["i2i", "index", "--embeddings", embeddings, "--items", str(data / "items.parquet")]
        index += [
            "--config",
            str(ROOT / "configs/item2item/index_hnsw.toml"),
            "--set",
            "kind=exact",
        ]
        _cli(*index, "--encoder", str(root / "encoder"), "--out", str(root / "similar_items"))
        _cli(*index, "--out", str(root / "ids_only"))
    finally:
        torch.set_num_threads(threads)
    return Served(root, read_items(data / "items.parquet"))


def _as_new(catalogue: ItemCatalogue, row: int, **changes: object) -> NewItem:
    item = NewItem(
        title=catalogue.titles[row],
        content=catalogue.contents[row],
        topics=catalogue.topics[row],
        category=catalogue.categories[row],
        image=catalogue.image_bytes(row),
    )
    return item._replace(**changes)  # type: ignore[arg-type]


def _proto(item: NewItem) -> similar_items_pb2.NewItem:
    return similar_items_pb2.NewItem(
        image=item.image,
        title=item.title,
        content=item.content,
        topics=list(item.topics),
        category=item.category,
    )


def _server_config(root: Path, work: Path) -> ServingConfig:
    """A host of the similar-items service alone (the ranking fields are required but unused)."""
    return ServingConfig(
        bundle_root=root,
        store=LocalBehaviourStoreConfig(dataset=work / "unused", directory=work / "unused"),
        port=0,
        metrics_port=0,
        log_level="WARNING",
        exposure_log=ExposureLogConfig(directory=work / "exposures"),
        similar_items=SimilarItemsConfig(bundle_root=root),
    )


def test_a_catalogue_item_sent_as_content_finds_itself_through_the_rpc(
    served: Served, tmp_path: Path
) -> None:
    index, manifest = read_index_bundle(served.root / "similar_items")
    assert manifest["encoder_bundle"]["name"] == "encoder"
    rows = [0, 17, 64, 119]

    async def scenario() -> None:
        server = MuseServer(_server_config(served.root, tmp_path), [similar_items_service])
        await server.start()
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = similar_items_pb2_grpc.SimilarItemsServiceStub(channel)
                for row in rows:
                    item_id = int(served.catalogue.item_ids[row])
                    request = similar_items_pb2.SimilarItemsRequest(
                        item=_proto(_as_new(served.catalogue, row)), k=5
                    )
                    reply = await stub.SimilarItems(request)
                    assert reply.item_ids[0] == item_id
                    assert reply.scores[0] == pytest.approx(1.0, abs=2e-3)
                    assert list(reply.scores) == sorted(reply.scores, reverse=True)
                    # The same neighbours, in order, as the catalogue item's own vector finds
                    # (itself first: a new item is not excluded).
                    vector = index.vectors[index.rows_of(np.array([item_id]))]
                    reference = index.exact_search(vector, 5)
                    assert list(reply.item_ids) == reference.ids[0].tolist()
                    # By id, the item itself is still left out.
                    by_id = await stub.SimilarItems(
                        similar_items_pb2.SimilarItemsRequest(item_id=item_id, k=5)
                    )
                    assert item_id not in by_id.item_ids
                    assert list(by_id.item_ids[:4]) == reference.ids[0].tolist()[1:]
                # Within a category, as by id.
                row = rows[1]
                category = served.catalogue.categories[row]
                reply = await stub.SimilarItems(
                    similar_items_pb2.SimilarItemsRequest(
                        item=_proto(_as_new(served.catalogue, row)), k=3, category=category
                    )
                )
                assert reply.item_ids[0] == served.catalogue.item_ids[row]
                image_less = _as_new(served.catalogue, 0, image=b"")
                corrupt = _as_new(served.catalogue, 0, image=b"\x89PNG\r\n\x1a\n-broken")
                for request, code, field in (
                    (
                        similar_items_pb2.SimilarItemsRequest(item=_proto(image_less), k=5),
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "item.image",
                    ),
                    (
                        similar_items_pb2.SimilarItemsRequest(item=_proto(corrupt), k=5),
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "item.image",
                    ),
                    # Neither item_id nor item: item_id 0, as before the oneof.
                    (
                        similar_items_pb2.SimilarItemsRequest(k=5),
                        grpc.StatusCode.NOT_FOUND,
                        "item 0",
                    ),
                ):
                    with pytest.raises(grpc.aio.AioRpcError) as failure:
                        await stub.SimilarItems(request)
                    assert failure.value.code() == code
                    assert field in (failure.value.details() or "")
        finally:
            await server.stop(grace=1.0)

    asyncio.run(scenario())


def _run(config: SimilarItemsConfig, queries: list[SimilarQuery]) -> list:
    async def scenario() -> list:
        engine = SimilarItemsEngine(config, ServingMetrics())
        await asyncio.to_thread(engine.load)
        engine.start()
        try:
            return await asyncio.gather(
                *(engine.similar(query, None) for query in queries), return_exceptions=True
            )
        finally:
            await engine.close()

    return asyncio.run(scenario())


def test_a_text_only_encoder_ignores_the_image_and_needs_text(tmp_path: Path) -> None:
    # A random text-only encoder and an index of random vectors of its width, joined by the
    # config's encoders table (the index manifest names no encoder).
    root = tmp_path / "bundles"
    config = tiny.config(PromptKind.TEXT_ONLY, late_fusion=False)
    torch.manual_seed(0)
    encoder = NoteLlm2(config).eval()
    prompt = ItemPrompt(config.prompt, tiny.tokenizer())
    write_encoder_bundle(encoder, config, prompt, (0.5,) * 3, (0.5,) * 3, root / "text_encoder")
    vectors = np.random.default_rng(0).normal(size=(50, config.output_dim))
    index = SimilarItemIndex.build(IndexConfig(kind=IndexKind.EXACT), np.arange(50), vectors)
    write_index_bundle(index, root / "similar_items")
    answers = _run(
        SimilarItemsConfig(bundle_root=root, encoders={"similar_items": "text_encoder"}),
        [
            SimilarQuery(0, 5, "", 0, {}, NewItem("red shoes", "new sneakers", image=b"junk")),
            SimilarQuery(0, 5, "", 0, {}, NewItem(image=b"junk", category="hats")),
            SimilarQuery(0, 5, "", 0, {}, NewItem(topics=("#sport",))),
        ],
    )
    found, empty, topics_only = answers
    assert found.item_ids.size == 5 and found.index_version.startswith("similar_items@")
    assert isinstance(empty, InvalidArgument) and empty.field == "item"
    assert "item.title, item.content and item.topics are all empty" in str(empty)
    assert topics_only.item_ids.size == 5


def test_an_index_without_an_encoder_answers_catalogue_items_only(served: Served) -> None:
    item = int(served.catalogue.item_ids[3])
    by_id, new = _run(
        SimilarItemsConfig(bundle_root=served.root, default_bundle="ids_only"),
        [
            SimilarQuery(item, 5, "", 0, {}),
            SimilarQuery(0, 5, "", 0, {}, _as_new(served.catalogue, 3)),
        ],
    )
    assert by_id.item_ids.size == 5
    assert isinstance(new, VariantUnavailable) and str(new).startswith("item: index ids_only@")


def test_the_encoder_bundle_is_verified_when_the_engine_loads(
    served: Served, tmp_path: Path
) -> None:
    root = tmp_path / "bundles"
    shutil.copytree(served.root, root)
    config = SimilarItemsConfig(bundle_root=root)
    tokenizer = root / "encoder" / TOKENIZER_FILE
    tokenizer.write_text(tokenizer.read_text().replace('"[UNK]"', '"[UNk]"', 1))
    with pytest.raises(DataError, match="sha256 differs") as tampered:
        SimilarItemsEngine(config, ServingMetrics()).load()
    assert tampered.value.path == str(tokenizer)
    # An index whose vectors are not the encoder's width is refused, naming the index manifest.
    shutil.copytree(served.root / "encoder", root / "encoder", dirs_exist_ok=True)
    vectors = np.random.default_rng(0).normal(size=(20, 4))
    narrow = SimilarItemIndex.build(IndexConfig(kind=IndexKind.EXACT), np.arange(20), vectors)
    write_index_bundle(narrow, root / "narrow")
    with pytest.raises(DataError, match="width 4") as mismatch:
        SimilarItemsEngine(
            SimilarItemsConfig(
                bundle_root=root, default_bundle="narrow", encoders={"narrow": "encoder"}
            ),
            ServingMetrics(),
        ).load()
    assert mismatch.value.path == str(root / "narrow" / "manifest.json")
    # An encoders entry for an index bundle that is not loaded is a config mistake.
    with pytest.raises(ConfigError, match="names index bundle\\(s\\) elsewhere"):
        SimilarItemsEngine(
            SimilarItemsConfig(bundle_root=root, encoders={"elsewhere": "encoder"}),
            ServingMetrics(),
        ).load()
    # An index built from another encoder version is refused too.
    manifest = root / "similar_items" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"encoder@', '"encoder@stale', 1))
    with pytest.raises(DataError, match="built from encoder encoder@stale"):
        SimilarItemsEngine(config, ServingMetrics()).load()


def test_encoder_providers_put_cuda_first_when_onnxruntime_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    available = ["CPUExecutionProvider", "CUDAExecutionProvider"]
    monkeypatch.setattr(new_item_encoder.onnxruntime, "get_available_providers", lambda: available)
    assert new_item_encoder.onnx_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert new_item_encoder.onnx_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    monkeypatch.setattr(
        new_item_encoder.onnxruntime, "get_available_providers", lambda: available[:1]
    )
    assert new_item_encoder.onnx_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="lacks CUDAExecutionProvider"):
        new_item_encoder.onnx_providers(["CUDAExecutionProvider"])


def test_index_command_refuses_an_encoder_of_another_width(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "vectors.npy", np.random.default_rng(0).normal(size=(10, 4)))
    np.save(tmp_path / "ids.npy", np.arange(10, dtype=np.int64))
    args = ["i2i", "index", "--embeddings", str(tmp_path / "vectors.npy")]
    args += ["--ids", str(tmp_path / "ids.npy"), "--set", "kind=exact"]
    args += ["--config", str(ROOT / "configs/item2item/index_hnsw.toml")]
    code = main([*args, "--encoder", str(served.root / "encoder"), "--out", str(tmp_path / "x")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert str(served.root / "encoder" / "manifest.json") in lines[0] and "width 16" in lines[0]
    assert not (tmp_path / "x").exists()
