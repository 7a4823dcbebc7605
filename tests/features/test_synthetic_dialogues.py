"""Synthetic dialogues: determinism, targets that satisfy the rewrites, pictures, kinds, ambiguity, CLI."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.dialogues import Dialogue, read_dialogues
from features.item_catalogue import ITEMS_FILE
from features.multimodal_catalogue import ADJECTIVES, ATTRIBUTES_FILE, generate_multimodal_catalogue
from features.multimodal_catalogue_config import (
    COLOUR_NAMES,
    AttributeConfig,
    ImageConfig,
    MultimodalCatalogueConfig,
    PairConfig,
)
from features.synthetic_dialogues import (
    ATTRIBUTES,
    DIALOGUE_FILES,
    IMAGE_ATTRIBUTES,
    MANIFEST_FILE,
    SyntheticDialogue,
    build_dialogues,
    generate_dialogues,
    matching_rows,
    read_dialogue_catalogue,
)
from features.synthetic_dialogues_config import (
    TURN_KINDS,
    SyntheticDialoguesConfig,
    TurnKindConfig,
)
from muse.cli.main import main
from muse.core.config_loader import load_config
from muse.core.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = MultimodalCatalogueConfig(
    num_items=200,
    attributes=AttributeConfig(
        num_categories=4, num_brands=12, image_styles_per_category=3, text_styles_per_category=3
    ),
    image=ImageConfig(size=16),
    pairs=PairConfig(train_pairs=50, test_pairs=20),
)
SMALL = SyntheticDialoguesConfig(train_dialogues=300, validation_dialogues=50, test_dialogues=150)


@pytest.fixture(scope="module")
def catalogue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("dialogue_catalogue") / "items"
    generate_multimodal_catalogue(CATALOGUE, directory, progress=False)
    return directory


@pytest.fixture(scope="module")
def generated(catalogue_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dialogues") / "out"
    generate_dialogues(SMALL, catalogue_dir, out, progress=False)
    return out


@pytest.fixture(scope="module")
def attributes(catalogue_dir: Path) -> dict[int, dict[str, str]]:
    """Item id → its seven attributes by name, straight from the catalogue files."""
    table = pl.read_parquet(catalogue_dir / ATTRIBUTES_FILE)
    items = pl.read_parquet(catalogue_dir / ITEMS_FILE, columns=["item_id", "topics"])
    adjective = {
        item_id: next(topic for topic in topics if topic in ADJECTIVES)
        for item_id, topics in zip(items["item_id"], items["topics"], strict=True)
    }
    return {
        row["item_id"]: {
            **{name: row[name] for name in ATTRIBUTES[:-1]},
            "adjective": adjective[row["item_id"]],
        }
        for row in table.iter_rows(named=True)
    }


def _read_split(out: Path, split: str, catalogue_dir: Path) -> list[Dialogue]:
    ids = pl.read_parquet(catalogue_dir / ITEMS_FILE, columns=["item_id"])["item_id"].to_numpy()
    return read_dialogues(out / DIALOGUE_FILES[split], ids)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_default_config_file_matches_the_dataclass_defaults() -> None:
    assert load_config(SyntheticDialoguesConfig, ROOT / "configs/data/dialogues_default.toml") == (
        SyntheticDialoguesConfig()
    )


def test_deterministic_for_a_seed_and_splits_independent(
    catalogue_dir: Path, generated: Path, tmp_path: Path
) -> None:
    generate_dialogues(SMALL, catalogue_dir, tmp_path / "again", progress=False)
    for name in [*DIALOGUE_FILES.values(), MANIFEST_FILE]:
        assert (tmp_path / "again" / name).read_bytes() == (generated / name).read_bytes()
    generate_dialogues(
        dataclasses.replace(SMALL, seed=7), catalogue_dir, tmp_path / "seed7", progress=False
    )
    for name in DIALOGUE_FILES.values():
        assert (tmp_path / "seed7" / name).read_bytes() != (generated / name).read_bytes()
    # Each dialogue has its own stream: another train size leaves the test split as it was.
    bigger = dataclasses.replace(SMALL, train_dialogues=320)
    generate_dialogues(bigger, catalogue_dir, tmp_path / "bigger", progress=False)
    test_file = DIALOGUE_FILES["test"]
    assert (tmp_path / "bigger" / test_file).read_bytes() == (generated / test_file).read_bytes()


def test_files_read_back_with_the_sizes_and_turn_shape(
    generated: Path, catalogue_dir: Path
) -> None:
    for split, size in SMALL.split_sizes().items():
        dialogues = _read_split(generated, split, catalogue_dir)
        assert len(dialogues) == size
        for dialogue in dialogues:
            roles = [turn.role for turn in dialogue.turns]
            user_turns = roles.count("user")
            assert SMALL.min_user_turns <= user_turns <= SMALL.max_user_turns
            # User and assistant alternate, starting and ending with the user.
            assert roles == ["user", "assistant"] * (user_turns - 1) + ["user"]
            assert all(turn.rewrite for turn in dialogue.turns if turn.role == "user")
            assert all(turn.image is None for turn in dialogue.turns)


def test_every_target_satisfies_its_final_rewrite(
    generated: Path, catalogue_dir: Path, attributes: dict[int, dict[str, str]]
) -> None:
    for split in DIALOGUE_FILES:
        for dialogue in _read_split(generated, split, catalogue_dir):
            target = attributes[dialogue.target_item_id]
            final = dialogue.turns[-1]
            assert final.rewrite is not None
            said = _words(final.rewrite)
            picture = (
                attributes[final.rewrite_image_item_id] if final.rewrite_image_item_id else None
            )
            for name in ATTRIBUTES:
                value = target[name].lower()
                if value in said:
                    continue
                # Not in words: only an image attribute, shown by the picture the rewrite keeps.
                assert name in IMAGE_ATTRIBUTES and picture is not None, (
                    dialogue.dialogue_id,
                    name,
                )
                assert picture[name] == target[name]
            for other in ("category", "brand", "material", "adjective"):
                assert target[other].lower() in said


def test_constraints_match_the_target_and_rewrites_say_them(catalogue_dir: Path) -> None:
    catalogue = read_dialogue_catalogue(catalogue_dir)
    dialogues = build_dialogues(SMALL, catalogue)["validation"]
    for generated in dialogues:
        target_row = int(np.flatnonzero(catalogue.item_ids == generated.dialogue.target_item_id)[0])
        final = generated.constraints[-1]
        assert set(final.values) == set(ATTRIBUTES)
        assert target_row in matching_rows(catalogue, final)
        user_turns = [turn for turn in generated.dialogue.turns if turn.role == "user"]
        for turn, constraints in zip(user_turns, generated.constraints, strict=True):
            assert turn.rewrite_image_item_id == constraints.picture_item_id
            said = _words(turn.rewrite or "")
            for name, value in constraints.values.items():
                if name not in constraints.picture_attributes:
                    assert value.lower() in said
            for rejected in constraints.negatives.values():
                assert all(value.lower() in said for value in rejected)


def test_pictures_share_the_category_and_never_name_what_they_show(
    generated: Path, catalogue_dir: Path, attributes: dict[int, dict[str, str]]
) -> None:
    pictures = 0
    for split in DIALOGUE_FILES:
        for dialogue in _read_split(generated, split, catalogue_dir):
            target = attributes[dialogue.target_item_id]
            for turn in dialogue.turns:
                if turn.role != "user" or turn.image_item_id is None:
                    continue
                pictures += 1
                reference = attributes[turn.image_item_id]
                assert reference["category"] == target["category"]
                assert turn.image_item_id != dialogue.target_item_id
                differing = [a for a in IMAGE_ATTRIBUTES if reference[a] != target[a]]
                assert len(differing) <= 1
                text = _words(turn.text)
                for name in IMAGE_ATTRIBUTES:
                    # The picture shows every image attribute but the differing one, which is said.
                    if name in differing:
                        assert target[name] in text
                    else:
                        assert target[name] not in text, (dialogue.dialogue_id, turn.text)
    assert pictures > 100


def test_rejections_and_drifts_as_documented(catalogue_dir: Path) -> None:
    catalogue = read_dialogue_catalogue(catalogue_dir)
    twins = 0
    for generated in build_dialogues(SMALL, catalogue)["train"]:
        turns = generated.dialogue.turns
        target = int(np.flatnonzero(catalogue.item_ids == generated.dialogue.target_item_id)[0])
        for position, kind in enumerate(generated.kinds):
            turn = turns[2 * position]
            if position > 0:
                recommended = turns[2 * position - 1].image_item_id
                row = int(np.flatnonzero(catalogue.item_ids == recommended)[0])
                assert row != target
                twins += bool(np.all(catalogue.codes[row] == catalogue.codes[target]))
            if kind == "drift":
                # The replaced value was said in an earlier user turn.
                old = re.search(r"(?:instead of|rather than|, not) (\w+)\.", turn.text)
                assert old is not None, turn.text
                earlier = " ".join(turns[2 * k].text for k in range(position))
                assert old.group(1) in earlier
    assert twins == 0


def test_turn_kind_shares_near_the_config(generated: Path) -> None:
    manifest = json.loads((generated / MANIFEST_FILE).read_text())
    shares = np.array(SMALL.turn_kinds.shares()) / sum(SMALL.turn_kinds.shares())
    later = np.array([manifest["later_turn_kind_shares"][kind] for kind in TURN_KINDS])
    np.testing.assert_allclose(later, shares, atol=0.04)
    counts = manifest["turn_kinds"]
    total_user_turns = sum(int(n) * c for n, c in manifest["user_turns"]["histogram"].items())
    assert sum(counts.values()) == total_user_turns
    assert manifest["kind_fallbacks"] < 0.02 * total_user_turns
    assert manifest["reminder_rejections"] < manifest["turn_kinds"]["rejection"] / 2
    assert manifest["negative_rejections"] > 0


def test_ambiguity_equals_a_direct_recount(
    generated: Path, catalogue_dir: Path, attributes: dict[int, dict[str, str]]
) -> None:
    manifest = json.loads((generated / MANIFEST_FILE).read_text())
    full = {
        item_id: tuple(values[name] for name in ATTRIBUTES)
        for item_id, values in attributes.items()
    }
    for split in DIALOGUE_FILES:
        matches = []
        for dialogue in _read_split(generated, split, catalogue_dir):
            wanted = full[dialogue.target_item_id]
            matches.append(sum(values == wanted for values in full.values()))
        mrr = np.mean([sum(1 / r for r in range(1, m + 1)) / m for m in matches])
        figures = manifest["ambiguity"][split]
        assert figures["mean_matches"] == pytest.approx(np.mean(matches))
        assert figures["max_matches"] == max(matches)
        assert figures["unique_share"] == pytest.approx(np.mean(np.array(matches) == 1))
        assert figures["oracle_mrr"] == pytest.approx(mrr)
    assert 0 < manifest["ambiguity"]["test"]["oracle_mrr"] <= 1


def test_variant_pictures_where_the_catalogue_has_them(catalogue_dir: Path, tmp_path: Path) -> None:
    # Synthetic styles of one category differ in every image attribute, so recolour some items:
    # they then differ from their style's other items in the colour alone.
    changed = tmp_path / "items"
    shutil.copytree(catalogue_dir, changed)
    table = pl.read_parquet(changed / ATTRIBUTES_FILE)
    recolour = {
        c: COLOUR_NAMES[(COLOUR_NAMES.index(c) + 1) % len(COLOUR_NAMES)] for c in COLOUR_NAMES
    }
    colours = [recolour[c] if i % 3 == 0 else c for i, c in enumerate(table["colour"])]
    table.with_columns(pl.Series("colour", colours)).write_parquet(changed / ATTRIBUTES_FILE)
    catalogue = read_dialogue_catalogue(changed)
    config = dataclasses.replace(SMALL, picture_variant_share=1.0)
    dialogues: list[SyntheticDialogue] = build_dialogues(config, catalogue)["train"]
    assert sum(d.picture_variants for d in dialogues) > 50
    for generated in dialogues:
        target = int(np.flatnonzero(catalogue.item_ids == generated.dialogue.target_item_id)[0])
        assert target in matching_rows(catalogue, generated.constraints[-1])
        for turn in generated.dialogue.turns:
            if turn.role == "user" and turn.image_item_id is not None and ", but " in turn.text:
                row = int(np.flatnonzero(catalogue.item_ids == turn.image_item_id)[0])
                colour = ATTRIBUTES.index("colour")
                differs = catalogue.codes[row] != catalogue.codes[target]
                assert differs[1:4].sum() == 1 and not differs[0]
                if differs[colour]:
                    assert catalogue.names[colour][catalogue.codes[target, colour]] in turn.text


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="max_user_turns"):
        SyntheticDialoguesConfig(min_user_turns=4, max_user_turns=3)
    with pytest.raises(ValueError, match="test_dialogues"):
        SyntheticDialoguesConfig(test_dialogues=0)
    with pytest.raises(ValueError, match="rejection_share"):
        TurnKindConfig(rejection_share=-1)
    with pytest.raises(ValueError, match="words_share"):
        TurnKindConfig(words_share=0, picture_share=0)
    with pytest.raises(ValueError, match="negative_rejection_share"):
        SyntheticDialoguesConfig(negative_rejection_share=1.5)


def test_bad_catalogue_is_a_data_error(catalogue_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="directory not found"):
        read_dialogue_catalogue(tmp_path / "nowhere")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(catalogue_dir / ITEMS_FILE, partial / ITEMS_FILE)
    with pytest.raises(DataError, match="file not found") as caught:
        read_dialogue_catalogue(partial)
    assert caught.value.path.endswith(ATTRIBUTES_FILE)


def test_cli_writes_dialogues_and_fails_cleanly(
    catalogue_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    args = ["data", "synth-dialogues", "--catalogue", str(catalogue_dir)]
    args += ["--config", str(ROOT / "configs/data/dialogues_default.toml")]
    small = [
        "--set",
        "train_dialogues=30",
        "--set",
        "validation_dialogues=5",
        "--set",
        "test_dialogues=10",
    ]
    assert main([*args, "--out", str(out), "--no-progress", *small]) == 0
    printed = capsys.readouterr().out
    assert "train 30" in printed and "oracle MRR ceiling" in printed
    assert len(_read_split(out, "train", catalogue_dir)) == 30
    assert main([*args, "--out", str(tmp_path / "bad"), "--set", "max_user_turns=1"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("muse data synth-dialogues: ") and "max_user_turns" in error
    assert not (tmp_path / "bad").exists()
    missing = ["data", "synth-dialogues", "--catalogue", str(tmp_path / "none"), "--out", str(out)]
    assert main(missing) == 2
    assert "directory not found" in capsys.readouterr().err
    assert len(_read_split(out, "train", catalogue_dir)) == 30
