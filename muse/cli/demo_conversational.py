"""The demo's conversational half: NoteLLM-2 embeddings → semantic IDs → dialogues → retriever.

Quantises the demo's NoteLLM-2 item embeddings into semantic IDs, generates the synthetic
dialogues over the same catalogue (reused when their config matches), trains the generative
retriever with its TTR encoder and exports the conversational bundle where the demo's server
loads it; while the server runs, :func:`converse` plays one test dialogue through Converse.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, NamedTuple

from muse.cli.main import main as cli

CONVERSATIONAL_BUNDLE = "conversational"
RUN = "conversational"


class ConversationalResult(NamedTuple):
    """Where the demo left the dialogues and the bundle, and the run's test figures."""

    dialogues_dir: Path
    catalogue_dir: Path
    bundle: Path
    methods: dict[str, dict[str, float]]  # method → last-turn figures
    beams: int
    alpha: float


def prepare_dialogues(
    config_path: Path,
    overrides: tuple[str, ...],
    catalogue_dir: Path,
    out: Path,
    reuse: bool,
    progress: bool,
) -> None:
    """Generate the dialogues of ``config_path`` (with ``overrides``) over ``catalogue_dir``
    unless the same ones are there already."""
    from features.synthetic_dialogues import MANIFEST_FILE, generate_dialogues
    from features.synthetic_dialogues_config import SyntheticDialoguesConfig
    from muse.core.config_loader import config_to_dict, load_config

    config = load_config(SyntheticDialoguesConfig, config_path, list(overrides))
    manifest = out / MANIFEST_FILE
    if reuse and manifest.is_file():
        saved = json.loads(manifest.read_text())
        if saved.get("config") == json.loads(json.dumps(config_to_dict(config))) and saved.get(
            "catalogue_config"
        ) == json.loads((catalogue_dir / "manifest.json").read_text()).get("config"):
            print(f"reusing the dialogues in {out} (same config and catalogue)")
            return
    summary = generate_dialogues(config, catalogue_dir, out, progress=progress)
    counts = ", ".join(f"{split} {count:,}" for split, count in summary.dialogues.items())
    print(f"dialogues: {counts} in {summary.elapsed_seconds:.1f} s")


def train_and_export(
    embeddings: Path,
    semantic_ids_config: Path,
    semantic_ids_overrides: tuple[str, ...],
    catalogue_dir: Path,
    dialogues_config: Path,
    dialogues_overrides: tuple[str, ...],
    dialogues_dir: Path,
    conversational_config: Path,
    overrides: tuple[str, ...],
    runs_dir: Path,
    bundle_root: Path,
    reuse_data: bool,
    progress: bool,
) -> ConversationalResult:
    """Semantic IDs, dialogues, the retriever's training and the bundle."""
    ids_dir = runs_dir / "semantic_ids"
    run_dir = runs_dir / RUN
    shutil.rmtree(run_dir, ignore_errors=True)
    quiet = [] if progress else ["--no-progress"]
    ids = ["conv", "ids", "--embeddings", str(embeddings), "--config", str(semantic_ids_config)]
    ids += [part for setting in semantic_ids_overrides for part in ("--set", setting)]
    _check(cli([*ids, "--out", str(ids_dir), *quiet]), "muse conv ids")
    prepare_dialogues(
        dialogues_config, dialogues_overrides, catalogue_dir, dialogues_dir, reuse_data, progress
    )
    settings = [
        f'data.catalogue="{catalogue_dir}"',
        f'data.dialogues="{dialogues_dir}"',
        f'data.semantic_ids="{ids_dir}"',
        *overrides,
    ]
    args = ["conv", "train", "--config", str(conversational_config), "--out", str(run_dir)]
    args += [part for setting in settings for part in ("--set", setting)]
    print(f"\n--- {RUN} ({conversational_config}) ---", flush=True)
    _check(cli([*args, *quiet]), "muse conv train")
    bundle = bundle_root / CONVERSATIONAL_BUNDLE
    checkpoint = run_dir / "checkpoints" / "best.pt"
    _check(
        cli(["conv", "export", "--checkpoint", str(checkpoint), "--out", str(bundle)]),
        "muse conv export",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    methods = {name: figures["last_turn"] for name, figures in metrics["methods"].items()}
    return ConversationalResult(
        dialogues_dir,
        catalogue_dir,
        bundle,
        methods,
        int(metrics["beams"]),
        float(metrics["alpha"]),
    )


def conversational_overrides(bundle_root: Path, catalogue_dir: Path) -> list[str]:
    """Serving-config overrides that host Converse over the demo's conversational bundle."""
    return [
        f'conversational.bundle_root="{bundle_root}"',
        f'conversational.catalogue="{catalogue_dir}"',
        f'conversational.default_bundle="{CONVERSATIONAL_BUNDLE}"',
    ]


def converse(address: str, dialogues_dir: Path, catalogue_dir: Path, k: int = 3) -> dict[str, Any]:
    """The first test dialogue's user turns sent one by one in one Converse session."""
    import uuid

    import grpc

    from features.dialogues import read_dialogues
    from features.item_catalogue import read_items
    from serving.proto_gen.muse.serving.v1 import conversational_pb2, conversational_pb2_grpc

    items = read_items(catalogue_dir / "items.parquet")
    dialogue = read_dialogues(dialogues_dir / "test.jsonl", items.item_ids)[0]
    titles = dict(zip(items.item_ids.tolist(), items.titles, strict=True))
    session = uuid.uuid4().hex
    turns = []
    with grpc.insecure_channel(address) as channel:
        stub = conversational_pb2_grpc.ConversationalServiceStub(channel)
        for turn in dialogue.turns:
            if turn.role != "user":
                continue
            reply = stub.Converse(
                conversational_pb2.ConverseRequest(
                    session_id=session,
                    text=turn.text,
                    image_item_id=turn.image_item_id or 0,
                    image=turn.image or b"",
                    k=k,
                ),
                timeout=60,
            )
            turns.append(
                {
                    "text": turn.text,
                    "picture": turn.image_item_id,
                    "picture_title": titles.get(turn.image_item_id) if turn.image_item_id else None,
                    "rewritten_query": reply.rewritten_query,
                    "items": [
                        {"item_id": item.item_id, "title": item.title, "score": item.score}
                        for item in reply.items
                    ],
                    "target_rank": next(
                        (
                            r
                            for r, item in enumerate(reply.items, 1)
                            if item.item_id == dialogue.target_item_id
                        ),
                        None,
                    ),
                    "model_version": reply.model_version,
                    "beams": reply.beams,
                }
            )
    return {
        "dialogue_id": dialogue.dialogue_id,
        "target": {"item_id": dialogue.target_item_id, "title": titles[dialogue.target_item_id]},
        "turns": turns,
    }


def format_dialogue(played: dict[str, Any]) -> list[str]:
    """Lines of the demo summary: each user turn, the rewritten query and the recommendations."""
    target = played["target"]
    lines = [
        f"  dialogue {played['dialogue_id']} (target: {target['title']}, item {target['item_id']}), "
        f"model {played['turns'][0]['model_version'] if played['turns'] else '?'}:"
    ]
    for number, turn in enumerate(played["turns"], start=1):
        picture = (
            f"  [picture of item {turn['picture']}: {turn['picture_title']}]"
            if turn["picture"]
            else ""
        )
        lines.append(f"    user {number}: {turn['text']}{picture}")
        recommended = "; ".join(f"{item['title']} ({item['score']:.2f})" for item in turn["items"])
        mark = f"  ← target at rank {turn['target_rank']}" if turn["target_rank"] else ""
        lines.append(f"      → {recommended}{mark}")
    return lines


def _check(code: int, command: str) -> None:
    if code != 0:
        raise RuntimeError(f"{command} failed with exit code {code} (its error is printed above)")
