"""Synthetic dialogues over the synthetic multimodal catalogue, with known targets.

Each dialogue draws a target item and reveals its seven attributes (category; colour, pattern,
shape, which only its image shows; brand, material and the adjective of its text) over a few
user turns of four kinds: words, a reference picture, the rejection of the assistant's
recommendation, and a drift that replaces an earlier stated value. Every user turn carries the
standalone ``rewrite`` of what the user wants at that point. The model is documented in
docs/synthetic-data.md ("Synthetic dialogues"); the format in docs/data-format.md ("Dialogues").

The output is ``train.jsonl``, ``validation.jsonl``, ``test.jsonl`` (read by
:func:`features.dialogues.read_dialogues`) and ``manifest.json``. It is a pure function of the
config and the catalogue.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
from tqdm import tqdm

from features.dialogues import Dialogue, Turn, write_dialogues
from features.item_catalogue import ITEMS_FILE
from features.multimodal_catalogue import ADJECTIVES, ATTRIBUTES_FILE
from features.synthetic_dialogue_text import (
    assistant_text,
    drift_text,
    extra_text,
    picture_text,
    rejection_text,
    rewrite_text,
    words_text,
)
from features.synthetic_dialogues_config import TURN_KINDS, SyntheticDialoguesConfig
from muse.core.atomic_write import atomic_directory
from muse.core.config_loader import config_to_dict
from muse.core.errors import DataError

ATTRIBUTES = ("category", "colour", "pattern", "shape", "brand", "material", "adjective")
IMAGE_ATTRIBUTES = ("colour", "pattern", "shape")
TEXT_ATTRIBUTES = ("brand", "material", "adjective")
SPLITS = ("train", "validation", "test")
DIALOGUE_FILES = {split: f"{split}.jsonl" for split in SPLITS}
MANIFEST_FILE = "manifest.json"
CATALOGUE_MANIFEST_FILE = "manifest.json"
FORMAT_NAME = "muse-dialogues"
FORMAT_VERSION = 1

_CATEGORY = ATTRIBUTES.index("category")
_IMAGE = tuple(ATTRIBUTES.index(name) for name in IMAGE_ATTRIBUTES)
_TEXT = tuple(ATTRIBUTES.index(name) for name in TEXT_ATTRIBUTES)
_REVEALED = tuple(range(1, len(ATTRIBUTES)))  # every attribute but the category
# Each split has its own random streams (one per dialogue), so changing one split's size leaves
# the other splits' dialogues alone.
_STREAM_OF_SPLIT = {split: stream for stream, split in enumerate(SPLITS)}


class DialogueCatalogue(NamedTuple):
    """The catalogue as the dialogues see it: ids, titles and the seven attributes as codes."""

    item_ids: np.ndarray  # (N,) int64
    titles: tuple[str, ...]
    codes: np.ndarray  # (N, 7) int32: codes[i, a] indexes names[a]
    names: tuple[tuple[str, ...], ...]  # per attribute (ATTRIBUTES order): its sorted values


class Constraints(NamedTuple):
    """What the user wants after one user turn."""

    values: dict[str, str]  # attribute → value in force (in words or through the picture)
    negatives: dict[str, tuple[str, ...]]  # attribute → rejected values (no value in force)
    picture_item_id: int | None  # the reference picture still needed, if any
    picture_attributes: tuple[str, ...]  # the attributes only that picture conveys


class SyntheticDialogue(NamedTuple):
    """A generated dialogue with what the generator knows about each user turn."""

    dialogue: Dialogue
    kinds: tuple[str, ...]  # per user turn, one of TURN_KINDS
    constraints: tuple[Constraints, ...]  # per user turn
    picture_variants: int  # picture turns of the "like this one, but in red" form
    negative_rejections: int
    # Rejections of an item that misses a value said before (when nothing was left unsaid).
    reminder_rejections: int
    kind_fallbacks: int  # turns whose drawn kind was impossible and became words


class DialogueSummary(NamedTuple):
    """What one generation produced."""

    out_dir: Path
    num_items: int
    dialogues: dict[str, int]  # split → count
    mean_user_turns: float
    user_turns: dict[int, int]  # user turns per dialogue → dialogues
    turn_kinds: dict[str, int]  # over every user turn of every split
    turn_kind_shares: dict[str, float]
    # The same over the user turns after the first, which draw from all four kinds.
    later_turn_kind_shares: dict[str, float]
    picture_variants: int
    negative_rejections: int
    reminder_rejections: int
    kind_fallbacks: int
    # split → mean_matches, max_matches, unique_share, oracle_mrr of the final constraints.
    ambiguity: dict[str, dict[str, float]]
    elapsed_seconds: float


def read_dialogue_catalogue(directory: str | Path) -> DialogueCatalogue:
    """Read ids, titles and attributes of a synth-items output (the adjective: the topic that is one)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "directory not found")
    items_path, attributes_path = directory / ITEMS_FILE, directory / ATTRIBUTES_FILE
    items = _read_columns(items_path, ("item_id", "title", "topics"))
    attributes = _read_columns(attributes_path, ("item_id", *ATTRIBUTES[:-1]))
    ids = items["item_id"].cast(pl.Int64).to_numpy()
    if np.unique(ids).size != ids.size:
        raise DataError(items_path, "duplicate item ids", "item_id")
    if ids.size < 2:
        raise DataError(items_path, "the dialogues need at least 2 items", "item_id")
    adjectives = set(ADJECTIVES)
    columns: dict[str, list[str]] = {"adjective": []}
    for item_id, topics in zip(ids, items["topics"].to_list(), strict=True):
        found = [topic for topic in topics or () if topic in adjectives]
        if not found:
            raise DataError(
                items_path, f"no adjective among the topics of item {item_id}", "topics"
            )
        columns["adjective"].append(found[0])
    attribute_ids = attributes["item_id"].cast(pl.Int64).to_numpy()
    order = np.argsort(attribute_ids, kind="stable")
    slots = np.searchsorted(attribute_ids[order], ids).clip(max=attribute_ids.size - 1)
    absent = ids[attribute_ids[order][slots] != ids]
    if absent.size:
        raise DataError(
            attributes_path, f"no attributes for item {absent[0]} of {ITEMS_FILE}", "item_id"
        )
    rows = order[slots]
    for name in ATTRIBUTES[:-1]:
        if attributes.schema[name] != pl.String or attributes[name].null_count():
            raise DataError(attributes_path, "expected non-null strings", name)
        column = attributes[name].to_list()
        columns[name] = [column[row] for row in rows]
    codes, names = [], []
    for name in ATTRIBUTES:
        distinct, inverse = np.unique(np.asarray(columns[name], dtype=str), return_inverse=True)
        codes.append(inverse.astype(np.int32))
        names.append(tuple(str(value) for value in distinct))
    titles = tuple(title or "" for title in items["title"].to_list())
    return DialogueCatalogue(ids, titles, np.stack(codes, axis=1), tuple(names))


def build_dialogues(
    config: SyntheticDialoguesConfig, catalogue: DialogueCatalogue, progress: bool = False
) -> dict[str, list[SyntheticDialogue]]:
    """Split → its dialogues, in memory."""
    return {
        split: [
            draw_dialogue(config, catalogue, split, index)
            for index in tqdm(range(size), desc=split, unit="dialogue", disable=not progress)
        ]
        for split, size in config.split_sizes().items()
    }


def draw_dialogue(
    config: SyntheticDialoguesConfig, catalogue: DialogueCatalogue, split: str, index: int
) -> SyntheticDialogue:
    """Dialogue ``index`` of ``split``: a pure function of the seed, the split and the index."""
    rng = np.random.default_rng([config.seed, 4_241, _STREAM_OF_SPLIT[split], index])
    target = int(rng.integers(len(catalogue.item_ids)))
    num_user_turns = int(rng.integers(config.min_user_turns, config.max_user_turns + 1))
    shares = np.asarray(config.turn_kinds.shares(), dtype=np.float64)
    first = shares[:2] / shares[:2].sum()
    kinds = [TURN_KINDS[int(rng.choice(2, p=first))]]
    later = rng.choice(len(TURN_KINDS), size=num_user_turns - 1, p=shares / shares.sum())
    kinds += [TURN_KINDS[k] for k in later]
    return _DialogueDraw(config, catalogue, rng, target, split, index, kinds).run()


def matching_rows(catalogue: DialogueCatalogue, constraints: Constraints) -> np.ndarray:
    """(M,) int64 catalogue rows that satisfy every value and negative of ``constraints``."""
    mask = np.ones(len(catalogue.item_ids), dtype=bool)
    for name, value in constraints.values.items():
        a = ATTRIBUTES.index(name)
        mask &= catalogue.codes[:, a] == catalogue.names[a].index(value)
    for name, rejected in constraints.negatives.items():
        a = ATTRIBUTES.index(name)
        for value in rejected:
            mask &= catalogue.codes[:, a] != catalogue.names[a].index(value)
    return np.flatnonzero(mask).astype(np.int64)


def ambiguity(catalogue: DialogueCatalogue, dialogues: list[SyntheticDialogue]) -> dict[str, float]:
    """Matches of the final constraints per dialogue, and the oracle MRR ceiling: the mean of
    H_m / m (the target ranked uniformly among its m matches; H_m the harmonic number)."""
    matches = np.array(
        [matching_rows(catalogue, dialogue.constraints[-1]).size for dialogue in dialogues],
        dtype=np.int64,
    )
    harmonic = np.cumsum(1.0 / np.arange(1, int(matches.max()) + 1))
    return {
        "mean_matches": float(matches.mean()),
        "max_matches": int(matches.max()),
        "unique_share": float(np.mean(matches == 1)),
        "oracle_mrr": float(np.mean(harmonic[matches - 1] / matches)),
    }


def generate_dialogues(
    config: SyntheticDialoguesConfig,
    catalogue_dir: str | Path,
    out_dir: str | Path,
    progress: bool = True,
) -> DialogueSummary:
    """Generate the dialogues over the catalogue in ``catalogue_dir`` into ``out_dir`` (atomically)."""
    started = time.perf_counter()
    catalogue_dir, out_dir = Path(catalogue_dir), Path(out_dir)
    catalogue = read_dialogue_catalogue(catalogue_dir)
    splits = build_dialogues(config, catalogue, progress)
    every = [dialogue for dialogues in splits.values() for dialogue in dialogues]
    turn_counts = np.array([len(dialogue.kinds) for dialogue in every], dtype=np.int64)
    all_kinds = [kind for dialogue in every for kind in dialogue.kinds]
    later_kinds = [kind for dialogue in every for kind in dialogue.kinds[1:]]
    kind_counts = {kind: all_kinds.count(kind) for kind in TURN_KINDS}
    summary = DialogueSummary(
        out_dir=out_dir,
        num_items=len(catalogue.item_ids),
        dialogues={split: len(dialogues) for split, dialogues in splits.items()},
        mean_user_turns=float(turn_counts.mean()),
        user_turns={int(n): int(np.sum(turn_counts == n)) for n in np.unique(turn_counts)},
        turn_kinds=kind_counts,
        turn_kind_shares={kind: count / len(all_kinds) for kind, count in kind_counts.items()},
        later_turn_kind_shares={
            kind: later_kinds.count(kind) / max(len(later_kinds), 1) for kind in TURN_KINDS
        },
        picture_variants=sum(dialogue.picture_variants for dialogue in every),
        negative_rejections=sum(dialogue.negative_rejections for dialogue in every),
        reminder_rejections=sum(dialogue.reminder_rejections for dialogue in every),
        kind_fallbacks=sum(dialogue.kind_fallbacks for dialogue in every),
        ambiguity={split: ambiguity(catalogue, dialogues) for split, dialogues in splits.items()},
        elapsed_seconds=0.0,
    )
    with atomic_directory(out_dir) as staging:
        for split, dialogues in splits.items():
            write_dialogues(staging / DIALOGUE_FILES[split], [d.dialogue for d in dialogues])
        _write_manifest(staging, config, catalogue_dir, every, summary)
    return summary._replace(elapsed_seconds=time.perf_counter() - started)


class _DialogueDraw:
    """The state of one dialogue while its turns are drawn (docs/synthetic-data.md)."""

    def __init__(
        self,
        config: SyntheticDialoguesConfig,
        catalogue: DialogueCatalogue,
        rng: np.random.Generator,
        target: int,
        split: str,
        index: int,
        kinds: list[str],
    ) -> None:
        self.config, self.catalogue, self.rng = config, catalogue, rng
        self.target, self.kinds = target, kinds
        self.dialogue_id = f"{split}-{index:06d}"
        self.codes = catalogue.codes
        self.goal = catalogue.codes[target]
        self.twin = np.all(catalogue.codes == self.goal, axis=1)
        self.same_category = catalogue.codes[:, _CATEGORY] == self.goal[_CATEGORY]
        # Attributes stated in words (code), the wrong ones among them awaiting a drift (code),
        # the reference picture (row) with the image attributes only it conveys, the negatives.
        self.words: dict[int, int] = {_CATEGORY: int(self.goal[_CATEGORY])}
        self.planted: dict[int, int] = {}
        self.picture: int | None = None
        self.picture_attributes: set[int] = set()
        self.negatives: dict[int, set[int]] = {}
        self.recommended: int | None = None
        self.turns: list[Turn] = []
        self.constraints: list[Constraints] = []
        self.picture_variants = self.negative_rejections = self.kind_fallbacks = 0
        self.reminder_rejections = 0

    def run(self) -> SyntheticDialogue:
        for position in range(len(self.kinds)):
            text, image_item_id = self._user_turn(position)
            state = self._constraints()
            # The rewrite says in words what is in force in words; the picture carries the rest.
            said = {
                name: value
                for name, value in state.values.items()
                if name not in state.picture_attributes
            }
            rewrite = rewrite_text(said, state.negatives, state.picture_item_id is not None)
            self.turns.append(
                Turn("user", text, image_item_id, None, rewrite, state.picture_item_id)
            )
            self.constraints.append(state)
            if position + 1 < len(self.kinds):
                self._assistant_turn(position + 1)
        dialogue = Dialogue(
            self.dialogue_id, tuple(self.turns), int(self.catalogue.item_ids[self.target])
        )
        return SyntheticDialogue(
            dialogue,
            tuple(self.kinds),
            tuple(self.constraints),
            self.picture_variants,
            self.negative_rejections,
            self.reminder_rejections,
            self.kind_fallbacks,
        )

    # The user's turns.

    def _user_turn(self, position: int) -> tuple[str, int | None]:
        """Text and picture of the user turn at ``position``; ``kinds`` keeps the realised kind."""
        kind = self.kinds[position]
        last = position == len(self.kinds) - 1
        category = self._name(_CATEGORY, self.goal[_CATEGORY]) if position == 0 else None
        text, image_item_id = None, None
        if kind == "picture":
            result = self._picture_turn(category)
            if result is not None:
                text, image_item_id = result
        elif kind == "rejection":
            text = self._rejection_turn(position)
        elif kind == "drift":
            text = self._drift_turn()
        if text is None:
            if kind != "words":
                self.kind_fallbacks += 1
            self.kinds[position] = "words"
            text = self._words_turn(position, category, last)
        extras = self._plant(position) if self.kinds[position] != "words" else []
        if last:
            # The last turn states whatever is still missing or wrong, so the final constraints
            # hold every attribute of the target.
            missing = [
                a for a in _REVEALED if a not in self.words and a not in self.picture_attributes
            ]
            missing += sorted(self.planted)
            for a in missing:
                self.words[a] = int(self.goal[a])
                self.planted.pop(a, None)
            extras += missing
        if extras:
            text += extra_text(self.rng, [self._said(a) for a in extras])
        return text, image_item_id

    def _words_turn(self, position: int, category: str | None, last: bool) -> str:
        available = self._unrevealed(position)
        plant = None
        if not last and self._plants_needed(position):
            plant = next((a for a in available if a in _TEXT), None)
        stated = [plant] if plant is not None and self._plant_wrong(plant) else []
        others = [a for a in available if a not in stated]
        if last:
            count = len(others)
        else:
            # Leave an attribute for every later turn that should reveal one.
            low = 0 if position == 0 or stated else 1
            high = max(low, len(others) - self._demand_after(position))
            count = min(len(others), int(self.rng.integers(low, high + 1)))
        chosen = others[:count]
        if not chosen and not stated and position > 0:
            # Nothing left that a coming picture does not show: name an image attribute, else
            # restate one the picture shows, else one already said.
            fallback = (
                self._unrevealed(position, include_waiting=True)
                or sorted(self.picture_attributes)
                or [a for a in sorted(self.words) if a != _CATEGORY and a not in self.planted]
            )
            chosen = [fallback[int(self.rng.integers(len(fallback)))]]
        for a in chosen:
            self.words[a] = int(self.goal[a])
            self.picture_attributes.discard(a)
        stated += chosen
        return words_text(self.rng, category, [self._said(a) for a in stated])

    def _picture_turn(self, category: str | None) -> tuple[str, int] | None:
        image = list(_IMAGE)
        same = self.codes[:, image] == self.goal[image]
        candidates = self.same_category & (np.arange(len(self.codes)) != self.target)
        exact = np.flatnonzero(candidates & same.all(axis=1))
        variant = np.flatnonzero(candidates & (same.sum(axis=1) == len(image) - 1))
        use_variant = variant.size > 0 and (
            exact.size == 0 or self.rng.random() < self.config.picture_variant_share
        )
        pool = variant if use_variant else exact
        if pool.size == 0:
            return None
        reference = int(pool[int(self.rng.integers(pool.size))])
        differing = None
        if use_variant:
            a = _IMAGE[int(np.flatnonzero(~same[reference])[0])]
            self.words[a] = int(self.goal[a])
            differing = self._said(a)
            self.picture_variants += 1
        self.picture = reference
        self.picture_attributes = {a for a in _IMAGE if a not in self.words}
        return picture_text(self.rng, category, differing), int(self.catalogue.item_ids[reference])

    def _rejection_turn(self, position: int) -> str | None:
        if self.recommended is None:
            return None
        differing = self._rejectable(np.array([self.recommended]), position)[0]
        if not differing:
            # Everything the item could get wrong is said already: the assistant missed one of
            # the stated values, and the user says it again.
            missed = self._missed(self.recommended)
            if not missed:
                return None
            a = missed[int(self.rng.integers(len(missed)))]
            self.words[a] = int(self.goal[a])
            self.picture_attributes.discard(a)
            self.reminder_rejections += 1
            return rejection_text(self.rng, *self._said(a), negative=False)
        a = differing[int(self.rng.integers(len(differing)))]
        if self.rng.random() < self.config.negative_rejection_share:
            value = int(self.codes[self.recommended, a])
            self.negatives.setdefault(a, set()).add(value)
            self.negative_rejections += 1
            return rejection_text(self.rng, ATTRIBUTES[a], self._name(a, value), negative=True)
        self.words[a] = int(self.goal[a])
        return rejection_text(self.rng, *self._said(a), negative=False)

    def _drift_turn(self) -> str | None:
        if not self.planted:
            return None
        planted = sorted(self.planted)
        a = planted[int(self.rng.integers(len(planted)))]
        old = self.planted.pop(a)
        self.words[a] = int(self.goal[a])
        return drift_text(self.rng, self._name(a, self.goal[a]), self._name(a, old))

    def _plant(self, position: int) -> list[int]:
        """A wrong value said in passing for a later drift to correct; the attributes said."""
        if position == len(self.kinds) - 1 or not self._plants_needed(position):
            return []
        plantable = [a for a in self._unrevealed(position) if a in _TEXT]
        if not plantable or not self._plant_wrong(plantable[0]):
            return []
        return [plantable[0]]

    def _plant_wrong(self, a: int) -> bool:
        """State a wrong value for text attribute ``a`` (one of the target's category if any)."""
        values = np.unique(self.codes[self.same_category, a])
        values = values[values != self.goal[a]]
        if values.size == 0:
            values = np.setdiff1d(np.arange(len(self.catalogue.names[a])), [self.goal[a]])
        if values.size == 0:
            return False
        wrong = int(values[int(self.rng.integers(values.size))])
        self.words[a] = wrong
        self.planted[a] = wrong
        return True

    # The assistant's turns.

    def _assistant_turn(self, next_position: int) -> None:
        """Recommend an item matching the constraints so far, never the target nor a twin."""
        rows = np.flatnonzero(self._matches() & ~self.twin)
        if self.kinds[next_position] == "rejection":
            # The user will name an attribute the item gets wrong, so it must have one; when
            # none is left, an item that misses exactly one stated value.
            rows = rows[[bool(names) for names in self._rejectable(rows, next_position)]]
            if rows.size == 0:
                stated = self._stated()
                near = np.zeros(len(self.codes), dtype=bool)
                for a in stated:
                    near |= self._matches(skip=a) & (self.codes[:, a] != self.goal[a])
                rows = np.flatnonzero(near & ~self.twin)
        if rows.size == 0:
            # No item fits: one that fits the most constraints, as a retriever would offer.
            others = np.arange(len(self.codes)) != self.target
            pool = ~self.twin if np.any(~self.twin) else others
            score = np.where(pool, self._satisfied(), -1)
            rows = np.flatnonzero(score == score.max())
        chosen = int(rows[int(self.rng.integers(rows.size))])
        self.recommended = chosen
        text = assistant_text(self.rng, self.catalogue.titles[chosen])
        self.turns.append(Turn("assistant", text, int(self.catalogue.item_ids[chosen])))

    def _matches(self, skip: int | None = None) -> np.ndarray:
        """(N,) bool: items satisfying the constraints in force, attribute ``skip`` left out."""
        mask = np.ones(len(self.codes), dtype=bool)
        for a, code in self.words.items():
            if a != skip:
                mask &= self.codes[:, a] == code
        if self.picture is not None:
            for a in self.picture_attributes:
                if a != skip:
                    mask &= self.codes[:, a] == self.codes[self.picture, a]
        for a, rejected in self.negatives.items():
            if a != skip and not self._in_force(a):
                mask &= ~np.isin(self.codes[:, a], list(rejected))
        return mask

    def _satisfied(self) -> np.ndarray:
        """(N,) int: how many of the constraints in force each item satisfies."""
        score = np.zeros(len(self.codes), dtype=np.int64)
        for a, code in self.words.items():
            score += self.codes[:, a] == code
        if self.picture is not None:
            for a in self.picture_attributes:
                score += self.codes[:, a] == self.codes[self.picture, a]
        for a, rejected in self.negatives.items():
            if not self._in_force(a):
                score += ~np.isin(self.codes[:, a], list(rejected))
        return score

    def _stated(self) -> list[int]:
        """Attributes said in words with the target's value (the category aside)."""
        return [a for a in sorted(self.words) if a != _CATEGORY and a not in self.planted]

    def _missed(self, row: int) -> list[int]:
        """Attributes in force (said or shown) whose value ``row`` does not have."""
        shown = sorted(self.picture_attributes)
        return [a for a in self._stated() + shown if self.codes[row, a] != self.goal[a]]

    # What is known.

    def _unrevealed(self, position: int, include_waiting: bool = False) -> list[int]:
        """Attributes not in force, in a random order; image ones wait for a coming picture."""
        waiting = set(_IMAGE) if self._picture_ahead(position) and not include_waiting else set()
        hidden = [a for a in _REVEALED if not self._in_force(a) and a not in waiting]
        return [hidden[i] for i in self.rng.permutation(len(hidden))]

    def _picture_ahead(self, position: int) -> bool:
        return self.picture is None and "picture" in self.kinds[position:]

    def _in_force(self, a: int) -> bool:
        return a in self.words or a in self.picture_attributes

    def _rejectable(self, rows: np.ndarray, position: int) -> list[list[int]]:
        """Per row, the attributes a rejection at ``position`` may name: not in force, wrong in
        the row and not rejected yet; image ones only when nothing else is (a picture is coming)."""
        hidden = [a for a in _REVEALED if not self._in_force(a)]
        wrong = self.codes[np.ix_(rows, np.asarray(hidden, dtype=np.int64))] != self.goal[hidden]
        for column, a in enumerate(hidden):
            rejected = list(self.negatives.get(a, ()))
            wrong[:, column] &= ~np.isin(self.codes[rows, a], rejected)
        waiting = self._picture_ahead(position + 1)
        named = []
        for row_wrong in wrong:
            names = [a for a, is_wrong in zip(hidden, row_wrong, strict=True) if is_wrong]
            preferred = [a for a in names if a not in _IMAGE] if waiting else names
            named.append(preferred or names)
        return named

    def _plants_needed(self, position: int) -> int:
        """Drifts still to come that no wrong value is waiting for."""
        return max(0, self.kinds[position + 1 :].count("drift") - len(self.planted))

    def _demand_after(self, position: int) -> int:
        """Later turns that should each reveal an attribute (words, rejections, plants)."""
        later = self.kinds[position + 1 :]
        return later.count("words") + later.count("rejection") + self._plants_needed(position)

    def _constraints(self) -> Constraints:
        values = {ATTRIBUTES[a]: self._name(a, code) for a, code in sorted(self.words.items())}
        needed = self.picture is not None and bool(self.picture_attributes)
        if self.picture is not None:
            for a in sorted(self.picture_attributes):
                values[ATTRIBUTES[a]] = self._name(a, self.codes[self.picture, a])
        negatives = {
            ATTRIBUTES[a]: tuple(self._name(a, code) for code in sorted(codes))
            for a, codes in sorted(self.negatives.items())
            if not self._in_force(a)
        }
        return Constraints(
            values,
            negatives,
            int(self.catalogue.item_ids[self.picture])
            if needed and self.picture is not None
            else None,
            tuple(ATTRIBUTES[a] for a in sorted(self.picture_attributes)) if needed else (),
        )

    def _name(self, a: int, code: int | np.integer) -> str:
        return self.catalogue.names[a][int(code)]

    def _said(self, a: int) -> tuple[str, str]:
        """(attribute, value) of ``a`` as currently stated in words."""
        return ATTRIBUTES[a], self._name(a, self.words[a])


def _read_columns(path: Path, columns: tuple[str, ...]) -> pl.DataFrame:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        names = pl.read_parquet_schema(path)
    except Exception as error:  # polars raises several kinds for a damaged file
        raise DataError(path, f"not a readable parquet file: {error}") from error
    for column in columns:
        if column not in names:
            raise DataError(path, f"missing column (has: {', '.join(names)})", column)
    frame = pl.read_parquet(path, columns=list(columns))
    if frame.height == 0:
        raise DataError(path, "no rows")
    if frame["item_id"].null_count() or not frame.schema["item_id"].is_integer():
        raise DataError(path, "expected non-null integer ids", "item_id")
    return frame


def _write_manifest(
    staging: Path,
    config: SyntheticDialoguesConfig,
    catalogue_dir: Path,
    dialogues: list[SyntheticDialogue],
    summary: DialogueSummary,
) -> None:
    catalogue_manifest = catalogue_dir / CATALOGUE_MANIFEST_FILE
    catalogue_config = None
    if catalogue_manifest.is_file():
        catalogue_config = json.loads(catalogue_manifest.read_text()).get("config")
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "source": "synthetic dialogues (features/synthetic_dialogues.py)",
        "catalogue": str(catalogue_dir),
        "catalogue_config": catalogue_config,
        "num_items": summary.num_items,
        "dialogues": summary.dialogues,
        "user_turns": {
            "mean": summary.mean_user_turns,
            "histogram": {str(n): count for n, count in summary.user_turns.items()},
        },
        "mean_turns": float(np.mean([len(d.dialogue.turns) for d in dialogues])),
        "turn_kinds": summary.turn_kinds,
        "turn_kind_shares": summary.turn_kind_shares,
        "later_turn_kind_shares": summary.later_turn_kind_shares,
        "picture_variants": summary.picture_variants,
        "negative_rejections": summary.negative_rejections,
        "reminder_rejections": summary.reminder_rejections,
        "kind_fallbacks": summary.kind_fallbacks,
        "ambiguity": summary.ambiguity,
        "config": config_to_dict(config),
    }
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
