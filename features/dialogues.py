"""The dialogues format of conversational recommendation: JSON Lines over an item catalogue.

One dialogue per line (docs/data-format.md, "Dialogues"):

``{"dialogue_id": str, "turns": [{"role": "user"|"assistant", "text": str,
"image_item_id": int|null, "image": base64 PNG/JPEG|null, "rewrite": str|null,
"rewrite_image_item_id": int|null}], "target_item_id": int}``

``rewrite`` and ``rewrite_image_item_id`` are optional (user turns only): the standalone query
that says everything the user wants at that turn, and the catalogue item whose picture it relies
on. Every check runs before anything is returned; each problem is a
:class:`muse.core.errors.DataError` reading ``<file>: line <n>: <field>: <problem>``. Torch-free.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from features.item_catalogue import IMAGE_FORMATS
from muse.core.atomic_write import atomic_file
from muse.core.errors import DataError

ROLES = ("user", "assistant")
DIALOGUE_FIELDS = ("dialogue_id", "turns", "target_item_id")
TURN_FIELDS = ("role", "text", "image_item_id", "image", "rewrite", "rewrite_image_item_id")
# Fields a turn may leave out (read as null).
OPTIONAL_TURN_FIELDS = ("image_item_id", "image", "rewrite", "rewrite_image_item_id")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class Turn(NamedTuple):
    """One utterance; ``image`` holds decoded (PNG/JPEG) bytes, ``image_item_id`` a catalogue
    item whose picture the turn shows (at most one of the two is set)."""

    role: str  # "user" or "assistant"
    text: str
    image_item_id: int | None = None
    image: bytes | None = None
    # User turns only: the standalone query in force after this turn, and the item whose
    # picture that query relies on.
    rewrite: str | None = None
    rewrite_image_item_id: int | None = None


class Dialogue(NamedTuple):
    """A conversation whose last turn is the user's; ``target_item_id`` is the item they want."""

    dialogue_id: str
    turns: tuple[Turn, ...]
    target_item_id: int


def read_dialogues(path: str | Path, item_ids: np.ndarray | Sequence[int]) -> list[Dialogue]:
    """Read and check a dialogues file against the catalogue's ``item_ids`` (every image decoded)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    known = {int(item_id) for item_id in np.asarray(item_ids, dtype=np.int64).ravel()}
    dialogues: list[Dialogue] = []
    first_line: dict[str, int] = {}
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _line_error(path, number, None, f"not UTF-8 text: {error}") from error
            if not line.strip():
                continue  # blank lines (a trailing newline, spacing) carry no dialogue
            dialogue = _parse_line(path, number, line, known)
            if dialogue.dialogue_id in first_line:
                raise _line_error(
                    path,
                    number,
                    "dialogue_id",
                    f"duplicate id {dialogue.dialogue_id!r} (first on line "
                    f"{first_line[dialogue.dialogue_id]})",
                )
            first_line[dialogue.dialogue_id] = number
            dialogues.append(dialogue)
    if not dialogues:
        raise DataError(path, "no dialogues")
    return dialogues


def write_dialogues(path: str | Path, dialogues: Iterable[Dialogue]) -> None:
    """Write ``dialogues`` as JSON Lines to ``path`` atomically (images base64-encoded)."""
    with atomic_file(path) as staging, staging.open("w", encoding="utf-8") as handle:
        for dialogue in dialogues:
            handle.write(json.dumps(dialogue_to_json(dialogue), ensure_ascii=False) + "\n")


def dialogue_to_json(dialogue: Dialogue) -> dict[str, Any]:
    """The JSON object of one line; the optional rewrite fields only where a turn has them."""
    turns = []
    for turn in dialogue.turns:
        encoded: dict[str, Any] = {
            "role": turn.role,
            "text": turn.text,
            "image_item_id": turn.image_item_id,
            "image": None if turn.image is None else base64.b64encode(turn.image).decode("ascii"),
        }
        if turn.rewrite is not None or turn.rewrite_image_item_id is not None:
            encoded["rewrite"] = turn.rewrite
            encoded["rewrite_image_item_id"] = turn.rewrite_image_item_id
        turns.append(encoded)
    return {
        "dialogue_id": dialogue.dialogue_id,
        "turns": turns,
        "target_item_id": dialogue.target_item_id,
    }


def user_turn_prefixes(dialogue: Dialogue) -> list[Dialogue]:
    """The dialogue cut after each of its user turns, in order (evaluation "at every turn")."""
    return [
        dialogue._replace(turns=dialogue.turns[: index + 1])
        for index, turn in enumerate(dialogue.turns)
        if turn.role == "user"
    ]


def _parse_line(path: Path, number: int, line: str, known: set[int]) -> Dialogue:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise _line_error(path, number, None, f"not valid JSON: {error}") from error
    if not isinstance(record, dict):
        raise _line_error(path, number, None, f"expected a JSON object, got {_json_type(record)}")
    _check_fields(path, number, "", record, DIALOGUE_FIELDS, optional=())
    dialogue_id = record["dialogue_id"]
    if not isinstance(dialogue_id, str) or not dialogue_id.strip():
        raise _line_error(
            path, number, "dialogue_id", f"expected a non-empty string, got {dialogue_id!r}"
        )
    raw_turns = record["turns"]
    if not isinstance(raw_turns, list):
        raise _line_error(path, number, "turns", f"expected a list, got {_json_type(raw_turns)}")
    if not raw_turns:
        raise _line_error(path, number, "turns", "no turns")
    turns = tuple(
        _parse_turn(path, number, f"turns[{index}]", raw, known)
        for index, raw in enumerate(raw_turns)
    )
    if not any(turn.role == "user" for turn in turns):
        raise _line_error(path, number, "turns", "no user turn")
    if turns[-1].role != "user":
        raise _line_error(
            path,
            number,
            f"turns[{len(turns) - 1}].role",
            f"the last turn must be the user's, got {turns[-1].role!r}",
        )
    target = _item_id(path, number, "target_item_id", record["target_item_id"], known)
    assert target is not None  # required: _check_fields saw it, _item_id rejects null
    return Dialogue(dialogue_id, turns, target)


def _parse_turn(path: Path, number: int, where: str, raw: Any, known: set[int]) -> Turn:
    if not isinstance(raw, dict):
        raise _line_error(path, number, where, f"expected a JSON object, got {_json_type(raw)}")
    _check_fields(path, number, f"{where}.", raw, TURN_FIELDS, OPTIONAL_TURN_FIELDS)
    role = raw["role"]
    if role not in ROLES:
        raise _line_error(
            path, number, f"{where}.role", f"expected 'user' or 'assistant', got {role!r}"
        )
    text = raw["text"]
    if not isinstance(text, str):
        raise _line_error(
            path, number, f"{where}.text", f"expected a string, got {_json_type(text)}"
        )
    image_item_id = _item_id(
        path, number, f"{where}.image_item_id", raw.get("image_item_id"), known, nullable=True
    )
    image = _image(path, number, f"{where}.image", raw.get("image"))
    if image is not None and image_item_id is not None:
        raise _line_error(
            path, number, f"{where}.image", "both image and image_item_id are set; keep one"
        )
    if not text.strip() and image is None and image_item_id is None:
        raise _line_error(path, number, f"{where}.text", "empty text and no image")
    rewrite = raw.get("rewrite")
    if rewrite is not None and (not isinstance(rewrite, str) or not rewrite.strip()):
        raise _line_error(
            path,
            number,
            f"{where}.rewrite",
            f"expected a non-empty string or null, got {rewrite!r}",
        )
    rewrite_image_item_id = _item_id(
        path,
        number,
        f"{where}.rewrite_image_item_id",
        raw.get("rewrite_image_item_id"),
        known,
        nullable=True,
    )
    if role != "user" and (rewrite is not None or rewrite_image_item_id is not None):
        raise _line_error(path, number, f"{where}.rewrite", "only user turns have a rewrite")
    if rewrite is None and rewrite_image_item_id is not None:
        raise _line_error(path, number, f"{where}.rewrite_image_item_id", "set without a rewrite")
    return Turn(role, text, image_item_id, image, rewrite, rewrite_image_item_id)


def _check_fields(
    path: Path,
    number: int,
    prefix: str,
    record: dict[str, Any],
    fields: tuple[str, ...],
    optional: tuple[str, ...],
) -> None:
    for name in fields:
        if name not in record and name not in optional:
            raise _line_error(path, number, prefix + name, "missing field")
    unknown = sorted(set(record) - set(fields))
    if unknown:
        raise _line_error(
            path,
            number,
            prefix + unknown[0],
            f"unknown field (allowed: {', '.join(fields)})",
        )


def _item_id(
    path: Path, number: int, where: str, value: Any, known: set[int], nullable: bool = False
) -> int | None:
    if value is None and nullable:
        return None
    # bool is an int in Python, never an id in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        expected = "an integer item id or null" if nullable else "an integer item id"
        raise _line_error(path, number, where, f"expected {expected}, got {_json_type(value)}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _line_error(path, number, where, f"item id {value} is outside int64")
    if value not in known:
        raise _line_error(path, number, where, f"item {value} is not in the catalogue")
    return value


def _image(path: Path, number: int, where: str, value: Any) -> bytes | None:
    """Decode base64 ``value`` and check that PIL reads it fully as PNG or JPEG."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _line_error(
            path, number, where, f"expected a base64 string or null, got {_json_type(value)}"
        )
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise _line_error(path, number, where, f"not valid base64: {error}") from error
    if not data:
        raise _line_error(path, number, where, "empty image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            found = image.format
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as error:  # PIL raises many kinds for a damaged image
        raise _line_error(path, number, where, f"not a readable image: {error}") from error
    if found not in IMAGE_FORMATS:
        raise _line_error(path, number, where, f"image is {found}; expected PNG or JPEG")
    return data


def _line_error(path: Path, number: int, field: str | None, problem: str) -> DataError:
    where = f"line {number}: {field}: " if field else f"line {number}: "
    return DataError(path, where + problem)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return names.get(type(value), type(value).__name__)
