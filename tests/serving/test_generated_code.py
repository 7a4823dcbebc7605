"""The committed generated gRPC code is what serving/generate_proto.py produces from proto/."""

from __future__ import annotations

from pathlib import Path

from serving.generate_proto import PACKAGE_PATH, REPOSITORY_ROOT, generate


def test_committed_generated_code_is_current(tmp_path: Path) -> None:
    generated = generate(tmp_path)
    committed_root = REPOSITORY_ROOT / PACKAGE_PATH
    committed = sorted(
        path.relative_to(REPOSITORY_ROOT)
        for path in committed_root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    assert committed == generated, "run `python -m serving.generate_proto`: file set differs"
    stale = [
        str(path)
        for path in generated
        if (tmp_path / path).read_bytes() != (REPOSITORY_ROOT / path).read_bytes()
    ]
    assert stale == [], f"run `python -m serving.generate_proto`: stale {stale}"


def test_generated_package_imports_without_shadowing_muse() -> None:
    import muse
    from serving.proto_gen.muse.serving.v1 import ranking_pb2, ranking_pb2_grpc

    assert Path(muse.__file__).parent == REPOSITORY_ROOT / "muse"
    assert ranking_pb2.DESCRIPTOR.package == "muse.serving.v1"
    assert hasattr(ranking_pb2_grpc, "RankingServiceStub")
    request = ranking_pb2.ScoreRequest(
        user_id=7, candidate_item_ids=[3, -4], context={"page": "home"}
    )
    assert ranking_pb2.ScoreRequest.FromString(request.SerializeToString()) == request
