"""The Converse RPC end to end: export → bundle → server; sessions, stateless use, experiments,
errors, and the served answer equal to the evaluation pipeline's."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from features.dialogues import Turn
from muse.conversational.export.conversational_bundle_reader import load_conversational_bundle
from muse.conversational.export.run_export import export_checkpoint
from muse.conversational.models.rewritten_query import RewrittenQuery
from muse.conversational.models.test_time_reranking import rerank
from muse.conversational.training.checkpoint_evaluation import load_trained
from muse.conversational.training.training_job import ConversationalTrainResult
from muse.core.errors import DataError
from serving.conversational.conversational_config import ConversationalConfig, TorchDevice
from serving.conversational.service import SERVICE_NAME, conversational_service
from serving.local_behaviour_store_config import LocalBehaviourStoreConfig
from serving.proto_gen.muse.serving.v1 import conversational_pb2, conversational_pb2_grpc
from serving.server import MuseServer
from serving.serving_config import ServingConfig

EXPERIMENTS = """
default_bundle = "conversational"

[layers.conversational]
salt = "conversational-test"

[layers.conversational.experiments.beams]
buckets = [{ start = 0, end = 10000 }]

[layers.conversational.experiments.beams.variants.few]
bundle = "conversational"
buckets = [{ start = 0, end = 5000 }]
overrides = { beams = 5, ttr_alpha = 1.0 }

[layers.conversational.experiments.beams.variants.many]
bundle = "conversational"
buckets = [{ start = 5000, end = 10000 }]
overrides = { beams = 15 }
"""


@pytest.fixture(scope="module")
def bundle_root(
    trained_run: ConversationalTrainResult, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    root = tmp_path_factory.mktemp("conversational_bundles")
    export_checkpoint(
        trained_run.run_dir / "checkpoints" / "best.pt", root / "conversational", "conversational"
    )
    return root


def config_for(
    bundle_root: Path, catalogue: Path, directory: Path, experiments: Path | None = None
) -> ServingConfig:
    # The ranking fields are required by ServingConfig but unused: ranking is not hosted.
    return ServingConfig(
        bundle_root=bundle_root,
        store=LocalBehaviourStoreConfig(
            dataset=directory / "unused", directory=directory / "unused"
        ),
        port=0,
        metrics_port=-1,
        conversational=ConversationalConfig(
            bundle_root=bundle_root,
            catalogue=catalogue,
            experiments=experiments,
            max_sessions=4,
            device=TorchDevice.CPU,
        ),
    )


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_session_carries_the_dialogue_and_stateless_use_answers_the_same(
    bundle_root: Path, conversation_data: dict[str, Path], tmp_path: Path
) -> None:
    catalogue = conversation_data["catalogue"]
    bundle = load_conversational_bundle(bundle_root / "conversational")
    picture_item = int(bundle.item_ids[3])

    async def scenario() -> None:
        server = MuseServer(config_for(bundle_root, catalogue, tmp_path), [conversational_service])
        await server.start()
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
                stub = conversational_pb2_grpc.ConversationalServiceStub(channel)
                first = await stub.Converse(
                    conversational_pb2.ConverseRequest(
                        session_id="s1", text="I am looking for a bag", k=5
                    )
                )
                assert len(first.items) == 5 and first.session_turns == 2
                scores = [item.score for item in first.items]
                assert scores == sorted(scores, reverse=True)
                assert first.model_version == bundle.version and first.beams == 10
                assert first.rewritten_query == "user: I am looking for a bag"
                assert {item.item_id for item in first.items} <= set(bundle.item_ids.tolist())
                second = await stub.Converse(
                    conversational_pb2.ConverseRequest(
                        session_id="s1",
                        text="something like this one",
                        image_item_id=picture_item,
                        k=5,
                    )
                )
                assert second.session_turns == 4
                assert second.rewritten_query.startswith(
                    "user: I am looking for a bag | assistant: "
                )
                assert second.query_image_item_id == picture_item
                # The same dialogue sent whole (stateless) gets the same answer and no session.
                earlier = [
                    conversational_pb2.DialogueTurn(role="user", text="I am looking for a bag"),
                    conversational_pb2.DialogueTurn(
                        role="assistant",
                        text=f"How about the {first.items[0].title}?",
                        image_item_id=first.items[0].item_id,
                    ),
                ]
                stateless = await stub.Converse(
                    conversational_pb2.ConverseRequest(
                        text="something like this one",
                        image_item_id=picture_item,
                        k=5,
                        dialogue=earlier,
                    )
                )
                assert [i.item_id for i in stateless.items] == [i.item_id for i in second.items]
                assert stateless.rewritten_query == second.rewritten_query
                uploaded = await stub.Converse(
                    conversational_pb2.ConverseRequest(session_id="s2", image=png(0), k=3)
                )
                assert len(uploaded.items) == 3 and uploaded.query_image_item_id == 0
                for request, code, field in (
                    (
                        conversational_pb2.ConverseRequest(session_id="s", text="a bag", k=0),
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "k",
                    ),
                    (
                        conversational_pb2.ConverseRequest(session_id="s", k=3),
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "text",
                    ),
                    (
                        conversational_pb2.ConverseRequest(text="a bag", k=3),
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "session_id",
                    ),
                    (
                        conversational_pb2.ConverseRequest(
                            session_id="s", text="x", image=png(1), image_item_id=picture_item, k=3
                        ),
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "image",
                    ),
                    (
                        conversational_pb2.ConverseRequest(session_id="s", image_item_id=5, k=3),
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "image_item_id",
                    ),
                    (
                        conversational_pb2.ConverseRequest(session_id="s", image=b"not a png", k=3),
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "image",
                    ),
                    (
                        conversational_pb2.ConverseRequest(
                            session_id="s", text="a bag", k=3, context={"model": "nope"}
                        ),
                        grpc.StatusCode.NOT_FOUND,
                        "model",
                    ),
                ):
                    with pytest.raises(grpc.aio.AioRpcError) as failure:
                        await stub.Converse(request)
                    assert failure.value.code() == code
                    assert field in failure.value.details()
        finally:
            await server.stop(grace=1.0)

    asyncio.run(scenario())


def test_experiments_vary_the_beams_and_alpha(
    bundle_root: Path, conversation_data: dict[str, Path], tmp_path: Path
) -> None:
    experiments = tmp_path / "experiments.toml"
    experiments.write_text(EXPERIMENTS)
    config = config_for(bundle_root, conversation_data["catalogue"], tmp_path, experiments)

    async def scenario() -> list[conversational_pb2.ConverseResponse]:
        server = MuseServer(config, [conversational_service])
        await server.start()
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = conversational_pb2_grpc.ConversationalServiceStub(channel)
                return [
                    await stub.Converse(
                        conversational_pb2.ConverseRequest(
                            session_id=f"user{user}", text="a bag please", k=3, user_id=user
                        )
                    )
                    for user in range(1, 25)
                ]
        finally:
            await server.stop(grace=1.0)

    replies = asyncio.run(scenario())
    seen = {(r.assignments[0].variant, r.beams, round(r.alpha, 2)) for r in replies}
    assert {variant for variant, _, _ in seen} == {"few", "many"}
    for variant, beams, alpha in seen:
        assert beams == (5 if variant == "few" else 15)
        if variant == "few":
            assert alpha == 1.0


def test_the_served_answer_is_the_evaluation_pipelines(
    trained_run: ConversationalTrainResult, bundle_root: Path, conversation_data: dict[str, Path]
) -> None:
    from serving.conversational.engine import ConversationalEngine
    from serving.conversational.requests import ConverseQuery
    from serving.metrics import ServingMetrics

    trained = load_trained(trained_run.run_dir / "checkpoints" / "best.pt")
    retrieval = trained.assets.retrieval(trained.model, trained.device)
    bundle = load_conversational_bundle(bundle_root / "conversational")
    item = int(bundle.item_ids[7])
    query = RewrittenQuery("user: a red bag | user: like this", item)
    candidates, _ = retrieval.candidates([query], 10)
    expected = rerank(
        candidates.rows, candidates.log_probs, candidates.relevance, bundle.recipe.alpha
    )
    engine = ConversationalEngine(
        ConversationalConfig(
            bundle_root=bundle_root,
            catalogue=conversation_data["catalogue"],
            device=TorchDevice.CPU,
        ),
        ServingMetrics(),
    )

    async def scenario():  # type: ignore[no-untyped-def]
        await asyncio.to_thread(engine.load)
        engine.start()
        try:
            return await engine.converse(
                ConverseQuery("", "like this", b"", item, 10, 0, (Turn("user", "a red bag"),), {}),
                None,
            )
        finally:
            await engine.close()

    # The engine's concat rewriter writes the same query text from the two user turns.
    answer = asyncio.run(scenario())
    assert answer.rewritten_query == "user: a red bag | user: like this"
    keep = expected.rows[0][expected.rows[0] >= 0]
    np.testing.assert_array_equal(answer.items.item_ids, trained.assets.catalogue.item_ids[keep])
    np.testing.assert_allclose(answer.items.scores, expected.scores[0][: keep.size], atol=1e-5)


def test_a_modified_bundle_is_refused(bundle_root: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "conversational"
    shutil.copytree(bundle_root / "conversational", copy)
    (copy / "item_titles.json").write_text("[]")
    with pytest.raises(DataError, match="sha256"):
        load_conversational_bundle(copy)


def test_chat_plays_typed_turns_through_a_running_server(
    bundle_root: Path, conversation_data: dict[str, Path], tmp_path: Path
) -> None:
    import argparse
    import threading

    from muse.cli.commands.conv_chat import Chat

    config = config_for(bundle_root, conversation_data["catalogue"], tmp_path)
    picture = tmp_path / "picture.png"
    picture.write_bytes(png(3))
    started = threading.Event()
    loop = asyncio.new_event_loop()
    server = MuseServer(config, [conversational_service])

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(120)
    output = io.StringIO()
    try:
        args = argparse.Namespace(address=server.address, k=2, user=0, session=None, timeout=60.0)
        chat = Chat(args, output)
        lines = [
            "a leather bag please",
            f"/image {picture}",
            "like this one",
            "/like 12345",
            "/new",
            "/nonsense",
            "/quit",
            "never sent",
        ]
        kept = [chat.handle(line) for line in lines]
        chat.channel.close()
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(grace=1.0), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
    text = output.getvalue()
    assert kept == [True, True, True, True, True, True, False, True]
    assert "query: 'user: a leather bag please'" in text
    assert text.count("  1. ") == 2 and "assistant: How about the" in text
    assert "picture.png goes with your next turn" in text
    # The second turn carried the picture and the first turn's words (one session).
    assert "user: a leather bag please | assistant: " in text
    assert "unknown command /nonsense" in text


def test_a_stateless_first_turn_reads_and_writes_no_session(
    bundle_root: Path, conversation_data: dict[str, Path], tmp_path: Path
) -> None:
    config = config_for(bundle_root, conversation_data["catalogue"], tmp_path)

    async def scenario() -> tuple[int, int]:
        server = MuseServer(config, [conversational_service])
        await server.start()
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = conversational_pb2_grpc.ConversationalServiceStub(channel)
                reply = await stub.Converse(
                    conversational_pb2.ConverseRequest(text="a bag please", k=3, stateless=True)
                )
                engine = server.services[0].engine
                return reply.session_turns, len(engine.sessions)  # type: ignore[attr-defined]
        finally:
            await server.stop(grace=1.0)

    assert asyncio.run(scenario()) == (1, 0)
