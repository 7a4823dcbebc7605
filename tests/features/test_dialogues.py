"""The dialogues format: round trip, prefixes, and every bad line as a DataError naming line and field."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from features.dialogues import (
    Dialogue,
    Turn,
    read_dialogues,
    user_turn_prefixes,
    write_dialogues,
)
from muse.core.errors import DataError

ITEM_IDS = np.array([11, 12, 13], dtype=np.int64)


def _image_bytes(format: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format=format)
    return buffer.getvalue()


PNG, JPEG, GIF = _image_bytes("PNG"), _image_bytes("JPEG"), _image_bytes("GIF")
PNG_TEXT = base64.b64encode(PNG).decode("ascii")


def _dialogue(dialogue_id: str = "d1") -> Dialogue:
    return Dialogue(
        dialogue_id,
        (
            Turn("user", "I'm looking for a mug like this one.", 12, None, "a mug like it", 12),
            Turn("assistant", "How about the Kadu mug?", 13),
            Turn("user", "", None, PNG, "a mug like the picture", None),
            Turn("assistant", "Here is one."),
            Turn("user", "Not that one, in ünïcode wool.", None, JPEG),
        ),
        11,
    )


def _good_line(dialogue_id: str = "d0") -> dict[str, Any]:
    return {
        "dialogue_id": dialogue_id,
        "turns": [
            {"role": "user", "text": "a mug", "image_item_id": None, "image": None},
            {"role": "assistant", "text": "How about this?", "image_item_id": 12, "image": None},
            {"role": "user", "text": "in wool", "rewrite": "a mug in wool"},
        ],
        "target_item_id": 11,
    }


def _with_turn(**changes: Any) -> dict[str, Any]:
    line = _good_line("bad")
    line["turns"][0] = {**line["turns"][0], **changes}
    return line


def _without_turn_field(name: str) -> dict[str, Any]:
    line = _good_line("bad")
    del line["turns"][0][name]
    return line


def _with(**changes: Any) -> dict[str, Any]:
    return {**_good_line("bad"), **changes}


def _without(name: str) -> dict[str, Any]:
    line = _good_line("bad")
    del line[name]
    return line


def test_round_trip(tmp_path: Path) -> None:
    dialogues = [_dialogue("d1"), _dialogue("d2")._replace(target_item_id=13)]
    path = tmp_path / "dialogues.jsonl"
    write_dialogues(path, dialogues)
    assert read_dialogues(path, ITEM_IDS) == dialogues
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_optional_fields_may_be_absent_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    line = {
        "dialogue_id": "short",
        "turns": [{"role": "user", "text": "a mug"}],
        "target_item_id": 12,
    }
    path = tmp_path / "dialogues.jsonl"
    path.write_text("\n" + json.dumps(line) + "\n\n")
    assert read_dialogues(path, ITEM_IDS) == [
        Dialogue("short", (Turn("user", "a mug", None, None, None, None),), 12)
    ]


def test_prefixes_end_at_each_user_turn() -> None:
    dialogue = _dialogue()
    prefixes = user_turn_prefixes(dialogue)
    assert [len(prefix.turns) for prefix in prefixes] == [1, 3, 5]
    assert all(prefix.turns[-1].role == "user" for prefix in prefixes)
    assert prefixes[-1] == dialogue
    assert {prefix.target_item_id for prefix in prefixes} == {11}


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "dialogues.jsonl"
    write_dialogues(path, [_dialogue()])
    before = path.read_bytes()

    def broken() -> Any:
        yield _dialogue("d9")
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError):
        write_dialogues(path, broken())
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


# name → (second line of the file, field named in the error or None, problem)
BAD_LINES: dict[str, tuple[Any, str | None, str]] = {
    "invalid JSON": ('{"dialogue_id": "x", ', None, "not valid JSON"),
    "not UTF-8": (b'{"dialogue_id": "\xff"}', None, "not UTF-8 text"),
    "not an object": ([1, 2], None, "expected a JSON object, got a list"),
    "missing dialogue_id": (_without("dialogue_id"), "dialogue_id", "missing field"),
    "missing target": (_without("target_item_id"), "target_item_id", "missing field"),
    "missing turns": (_without("turns"), "turns", "missing field"),
    "unknown field": (_with(target=11), "target", "unknown field"),
    "dialogue_id not a string": (_with(dialogue_id=7), "dialogue_id", "non-empty string"),
    "empty dialogue_id": (_with(dialogue_id=" "), "dialogue_id", "non-empty string"),
    "turns not a list": (_with(turns={"role": "user"}), "turns", "expected a list"),
    "empty turns": (_with(turns=[]), "turns", "no turns"),
    "turn not an object": (_with(turns=["hello"]), "turns[0]", "expected a JSON object"),
    "missing role": (_without_turn_field("role"), "turns[0].role", "missing field"),
    "missing text": (_without_turn_field("text"), "turns[0].text", "missing field"),
    "unknown turn field": (_with_turn(colour="red"), "turns[0].colour", "unknown field"),
    "bad role": (_with_turn(role="system"), "turns[0].role", "expected 'user' or 'assistant'"),
    "text not a string": (_with_turn(text=3), "turns[0].text", "expected a string"),
    "empty text, no image": (_with_turn(text="  "), "turns[0].text", "empty text and no image"),
    "no user turn": (
        _with(turns=[{"role": "assistant", "text": "hi"}]),
        "turns",
        "no user turn",
    ),
    "last turn not the user's": (
        _with(turns=[{"role": "user", "text": "a mug"}, {"role": "assistant", "text": "ok"}]),
        "turns[1].role",
        "the last turn must be the user's",
    ),
    "target not an integer": (_with(target_item_id="11"), "target_item_id", "integer item id"),
    "target a boolean": (_with(target_item_id=True), "target_item_id", "integer item id"),
    "target a float": (_with(target_item_id=11.0), "target_item_id", "integer item id"),
    "target outside int64": (_with(target_item_id=2**64), "target_item_id", "outside int64"),
    "unknown target": (
        _with(target_item_id=99),
        "target_item_id",
        "item 99 is not in the catalogue",
    ),
    "unknown image item": (
        _with_turn(image_item_id=98),
        "turns[0].image_item_id",
        "item 98 is not in the catalogue",
    ),
    "unknown rewrite image item": (
        _with_turn(rewrite="a mug", rewrite_image_item_id=97),
        "turns[0].rewrite_image_item_id",
        "item 97 is not in the catalogue",
    ),
    "image not a string": (_with_turn(image=[1]), "turns[0].image", "base64 string or null"),
    "bad base64": (_with_turn(image="not base64!"), "turns[0].image", "not valid base64"),
    "bytes that are no image": (
        _with_turn(image=base64.b64encode(b"hello world").decode()),
        "turns[0].image",
        "not a readable image",
    ),
    "truncated PNG": (
        _with_turn(image=base64.b64encode(PNG[: len(PNG) // 2]).decode()),
        "turns[0].image",
        "not a readable image",
    ),
    "GIF image": (
        _with_turn(image=base64.b64encode(GIF).decode()),
        "turns[0].image",
        "expected PNG or JPEG",
    ),
    "image and image_item_id": (
        _with_turn(image=PNG_TEXT, image_item_id=12),
        "turns[0].image",
        "both image and image_item_id",
    ),
    "empty rewrite": (_with_turn(rewrite=""), "turns[0].rewrite", "non-empty string"),
    "rewrite on an assistant turn": (
        _with(
            turns=[
                {"role": "assistant", "text": "hi", "rewrite": "a mug"},
                {"role": "user", "text": "a mug"},
            ]
        ),
        "turns[0].rewrite",
        "only user turns",
    ),
    "rewrite image without a rewrite": (
        _with_turn(rewrite_image_item_id=12),
        "turns[0].rewrite_image_item_id",
        "without a rewrite",
    ),
    "duplicate dialogue_id": (
        _good_line("d0"),
        "dialogue_id",
        "duplicate id 'd0' (first on line 1)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_names_file_line_and_field(tmp_path: Path, case: str) -> None:
    line, field, problem = BAD_LINES[case]
    if isinstance(line, bytes):
        encoded = line
    else:
        encoded = (line if isinstance(line, str) else json.dumps(line)).encode("utf-8")
    path = tmp_path / "dialogues.jsonl"
    path.write_bytes(json.dumps(_good_line("d0")).encode() + b"\n" + encoded + b"\n")
    with pytest.raises(DataError) as caught:
        read_dialogues(path, ITEM_IDS)
    message = str(caught.value)
    where = f"line 2: {field}: " if field else "line 2: "
    assert message.startswith(f"{path}: {where}"), message
    assert problem in message


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "dialogues.jsonl"
    bad = json.dumps(_with(target_item_id=99))
    path.write_text(json.dumps(_good_line()) + "\n\n" + bad + "\n")
    with pytest.raises(DataError, match=r"line 3: target_item_id: item 99"):
        read_dialogues(path, ITEM_IDS)


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "file not found"), ("", "no dialogues"), ("\n\n", "no dialogues")],
)
def test_bad_file(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "dialogues.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=problem) as caught:
        read_dialogues(path, ITEM_IDS)
    assert caught.value.path == str(path)
