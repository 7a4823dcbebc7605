"""The similar-items service: the engine in process, and the RPC on a live host with ranking.

Index bundles are built from clustered random vectors (two versions for an A/B experiment); the
engine's answers are checked against the index's exact reference search.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from muse.item2item.index.index_bundle import write_index_bundle
from muse.item2item.index.index_config import IndexConfig, IndexKind
from muse.item2item.index.similar_item_index import SimilarItemIndex
from serving.errors import InvalidArgument, ItemNotFound, ModelNotFound
from serving.item2item.engine import SimilarItemsEngine
from serving.item2item.requests import SimilarQuery
from serving.item2item.service import SERVICE_NAME, similar_items_service
from serving.item2item.similar_items_config import SimilarItemsConfig
from serving.metrics import ServingMetrics
from serving.proto_gen.muse.serving.v1 import similar_items_pb2, similar_items_pb2_grpc
from serving.ranking.service import SERVICE_NAME as RANKING_SERVICE
from serving.ranking.service import ranking_service
from serving.server import MuseServer
from tests.serving.conftest import serving_config
from tests.serving.tiny_world import TinyWorld

CATEGORIES = ("shoes", "bags", "hats")
EXPERIMENTS = """
default_bundle = "hnsw"

[layers.similar]
salt = "test-similar"

[layers.similar.experiments.exact_vs_hnsw]
buckets = [{ start = 0, end = 10000 }]

[layers.similar.experiments.exact_vs_hnsw.variants.control]
bundle = "hnsw"
buckets = [{ start = 0, end = 5000 }]

[layers.similar.experiments.exact_vs_hnsw.variants.treatment]
bundle = "exact"
buckets = [{ start = 5000, end = 10000 }]
"""


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimilarItemIndex]:
    """Two index bundles (HNSW, exact) over the same 1,500 items; returns their root and the exact one."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(30, 24))
    cluster = rng.integers(0, 30, 1500)
    vectors = centres[cluster] + 0.3 * rng.normal(size=(1500, 24))
    ids = np.arange(1500, dtype=np.int64) * 11 + 7
    root = tmp_path_factory.mktemp("similar") / "bundles"
    exact = None
    for name, kind in (("hnsw", IndexKind.HNSW), ("exact", IndexKind.EXACT)):
        config = IndexConfig(kind=kind, hnsw_neighbours=16, recall_queries=50, recall_k=10)
        index = SimilarItemIndex.build(config, ids, vectors, cluster % 3, CATEGORIES)
        write_index_bundle(index, root / name)
        exact = index
    assert exact is not None
    return root, exact


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


def test_engine_answers_like_exact_search_and_names_bad_requests(catalogue) -> None:
    root, exact = catalogue
    item = int(exact.item_ids[10])
    answers = _run(
        SimilarItemsConfig(bundle_root=root, default_bundle="exact", max_k=50),
        [
            SimilarQuery(item, 20, "", 0, {}),
            SimilarQuery(item, 20, "hats", 0, {}),
            SimilarQuery(item, 20, "gloves", 0, {}),
            SimilarQuery(999_999, 20, "", 0, {}),
            SimilarQuery(item, 0, "", 0, {}),
            SimilarQuery(item, 20, "", 0, {"index": "nope"}),
        ],
    )
    plain, hats, gloves, unknown, zero_k, pinned = answers
    reference = exact.exact_search(exact.vectors[10:11], 20, exclude_rows=np.array([10]))
    np.testing.assert_array_equal(plain.item_ids, reference.ids[0])
    np.testing.assert_allclose(plain.scores, reference.scores[0], atol=1e-5)
    assert item not in plain.item_ids and plain.index_version.startswith("exact@")
    assert (exact.categories[exact.rows_of(hats.item_ids)] == CATEGORIES.index("hats")).all()
    assert hats.item_ids.size == 20 and gloves.item_ids.size == 0
    assert isinstance(unknown, ItemNotFound) and "item_id: item 999999" in str(unknown)
    assert isinstance(zero_k, InvalidArgument) and zero_k.field == "k"
    assert isinstance(pinned, ModelNotFound) and "'nope'" in str(pinned)


def test_experiments_route_users_to_index_versions(catalogue, tmp_path: Path) -> None:
    root, exact = catalogue
    experiments = tmp_path / "similar_experiments.toml"
    experiments.write_text(EXPERIMENTS)
    item = int(exact.item_ids[3])
    users = list(range(1, 41))
    answers = _run(
        SimilarItemsConfig(bundle_root=root, experiments=experiments),
        [SimilarQuery(item, 5, "", user, {}) for user in users]
        + [SimilarQuery(item, 5, "", 1, {"index": "exact"})],
    )
    variants = {answer.assignments[0].variant for answer in answers[:-1]}
    assert variants == {"control", "treatment"}
    for answer in answers[:-1]:
        expected = "hnsw@" if answer.assignments[0].variant == "control" else "exact@"
        assert answer.index_version.startswith(expected)
    assert answers[-1].assignments == () and answers[-1].index_version.startswith("exact@")


def test_one_host_serves_ranking_and_similar_items(
    catalogue, world: TinyWorld, tmp_path: Path
) -> None:
    root, exact = catalogue
    config = serving_config(
        world,
        tmp_path,
        experiments=None,
        similar_items=SimilarItemsConfig(bundle_root=root, default_bundle="hnsw"),
    )

    async def scenario() -> None:
        server = MuseServer(config, [ranking_service, similar_items_service])
        await server.start()
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                for service in ("", RANKING_SERVICE, SERVICE_NAME):
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                    assert reply.status == health_pb2.HealthCheckResponse.SERVING
                stub = similar_items_pb2_grpc.SimilarItemsServiceStub(channel)
                item = int(exact.item_ids[42])
                reply = await stub.SimilarItems(
                    similar_items_pb2.SimilarItemsRequest(item_id=item, k=10, category="bags")
                )
                assert len(reply.item_ids) == 10 and item not in reply.item_ids
                assert list(reply.scores) == sorted(reply.scores, reverse=True)
                assert reply.index_version.startswith("hnsw@")
                rows = exact.rows_of(np.array(reply.item_ids))
                assert (exact.categories[rows] == CATEGORIES.index("bags")).all()
                for request, code in (
                    (
                        similar_items_pb2.SimilarItemsRequest(item_id=1, k=10),
                        grpc.StatusCode.NOT_FOUND,
                    ),
                    (
                        similar_items_pb2.SimilarItemsRequest(item_id=item, k=0),
                        grpc.StatusCode.INVALID_ARGUMENT,
                    ),
                ):
                    with pytest.raises(grpc.aio.AioRpcError) as failure:
                        await stub.SimilarItems(request)
                    assert failure.value.code() == code
        finally:
            await server.stop(grace=1.0)

    asyncio.run(scenario())
