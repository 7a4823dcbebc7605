"""NoteLLM-2 training on the generic loop: data pipeline, learning, `muse train`, resume, `muse i2i embed`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from features.item_catalogue import read_item_pair_dataset
from muse.cli.main import main
from muse.core.config_loader import load_config
from muse.item2item.index.index_bundle import read_index_bundle
from muse.item2item.models.item_encoder_config import ItemEncoderKind
from muse.item2item.models.prompt_config import PromptKind
from muse.item2item.training.item_inputs import ItemInputs
from muse.item2item.training.item_pair_model import ItemPairModel
from muse.item2item.training.item_pair_task import ItemPairTask, split_pairs
from muse.item2item.training.train_config import IMAGENET_MEAN, IMAGENET_STD, ItemTrainConfig
from muse.training.distributed import DistributedContext

ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = ROOT / "configs/item2item/notellm2_tiny.toml"
TINY_DATA = ["num_items=120", "pairs.train_pairs=200", "pairs.test_pairs=40", "image.size=16"]
# Half the items held out for the test pairs, so queries of every link kind keep partners in the pool.
TINY_DATA.append("test_item_share=0.5")
KS = ("1", "10", "100", "1000")
# Checkpoints every 2 steps, so an interrupted run has one to resume from mid-epoch.
RUN_SETTINGS = ["training.checkpoint_every_steps=2"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The tiny config trains on one thread (``training.threads = 1``); restore torch's after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _settings(settings: list[str]) -> list[str]:
    return [part for setting in settings for part in ("--set", setting)]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("items") / "items"
    args = ["data", "synth-items", "--config", str(ROOT / "configs/data/items_default.toml")]
    assert main([*args, *_settings(TINY_DATA), "--out", str(out), "--no-progress"]) == 0
    return out


def _config(catalogue: Path, **model: object) -> ItemTrainConfig:
    config = load_config(ItemTrainConfig, TINY_CONFIG, [f'data.dataset="{catalogue}"'])
    if model:
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, **model))
    return config


def _train_args(catalogue: Path, out: Path) -> list[str]:
    settings = [f'data.dataset="{catalogue}"', *RUN_SETTINGS]
    return ["train", "--config", str(TINY_CONFIG), *_settings(settings), "--out", str(out)]


@pytest.fixture(scope="module")
def finished_run(catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main([*_train_args(catalogue, out), "--no-progress"]) == 0
    return out


def test_split_pairs_is_seeded_disjoint_and_keeps_both_sides() -> None:
    fit, validation = split_pairs(200, 0.1, seed=7)
    assert validation.size == 20 and fit.size == 180
    assert np.intersect1d(fit, validation).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, validation])), np.arange(200))
    again_fit, again_validation = split_pairs(200, 0.1, seed=7)
    np.testing.assert_array_equal(validation, again_validation)
    assert not np.array_equal(validation, split_pairs(200, 0.1, seed=8)[1])
    assert [part.size for part in split_pairs(2, 0.01, seed=0)] == [1, 1]


def test_pair_batches_hold_prompts_cached_normalised_images_and_weights(catalogue: Path) -> None:
    task = ItemPairTask(_config(catalogue))
    assert task.num_train_rows() == 180 and len(task.validation) == 20
    batch = task.train_batch(np.array([0, 3, 5]))
    for side in (batch.side_a, batch.side_b):
        assert side.images is not None and side.images.shape == (3, 3, 16, 16)
        assert side.token_ids.shape[0] == 3
        # mICL: placeholder before the image compression position before the last token.
        assert bool(torch.all(side.image_placeholder_index < side.image_compression_index))
        assert bool(torch.all(side.image_compression_index < side.last_index))
    torch.testing.assert_close(batch.weights, torch.ones(3))
    # The image of a side-a item, recomputed by hand: RGB, 16×16, ImageNet mean/std.
    row = int(task.fit.row_a[3])
    pixels = np.asarray(task.dataset.items.image(row), dtype=np.float32).transpose(2, 0, 1) / 255
    expected = (pixels - np.array(IMAGENET_MEAN)[:, None, None]) / np.array(IMAGENET_STD)[
        :, None, None
    ]
    assert batch.side_a.images is not None
    np.testing.assert_allclose(batch.side_a.images[1].numpy(), expected, atol=1e-5)
    # Decoded once: the cache holds every item the batch touched.
    touched = np.concatenate([task.fit.row_a[[0, 3, 5]], task.fit.row_b[[0, 3, 5]]])
    assert (
        task.inputs._decoded[touched].all()
        and task.inputs._decoded.sum() == np.unique(touched).size
    )
    text_only = ItemPairTask(_config(catalogue, prompt=_text_only_prompt(), late_fusion=False))
    assert text_only.train_batch(np.array([0, 1])).side_a.images is None


@pytest.mark.parametrize("kind", ["notellm2", "vision_only"])
def test_cached_vision_features_give_the_reference_loss_and_embeddings(
    catalogue: Path, kind: str
) -> None:
    model_settings: dict[str, object] = {}
    if kind == "vision_only":
        plain = dataclasses.replace(_text_only_prompt(), kind=PromptKind.PLAIN)  # type: ignore[type-var]
        model_settings = dict(kind=ItemEncoderKind.VISION_ONLY, prompt=plain, late_fusion=False)
    reference_config = _config(catalogue, **model_settings)
    cached_config = dataclasses.replace(
        reference_config,
        data=dataclasses.replace(reference_config.data, cache_vision_features=True),
    )
    torch.manual_seed(3)
    reference = ItemPairTask(reference_config)
    model = reference.build_model()
    cached = ItemPairTask(cached_config)
    torch.manual_seed(3)
    cached_model = cached.build_model()
    cached_model.load_state_dict(model.state_dict())
    rows = np.arange(12)
    batch = cached.train_batch(rows)
    # The cached path carries features instead of images, computed once per touched item.
    assert batch.side_a.images is None and batch.side_a.vision_patches is not None
    touched = np.unique(np.concatenate([cached.fit.row_a[rows], cached.fit.row_b[rows]]))
    assert cached.inputs._featured.sum() == touched.size
    cpu = torch.device("cpu")
    model.eval()
    cached_model.eval()
    with torch.no_grad():
        expected = reference.loss(model, reference.train_batch(rows), cpu)
        got = cached.loss(cached_model, batch, cpu)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    reference_recall = reference._recall(model, reference.validation, _cpu_context())
    cached_recall = cached._recall(cached_model, cached.validation, _cpu_context())
    assert cached_recall == reference_recall


def _cpu_context() -> DistributedContext:
    return DistributedContext()


def _text_only_prompt() -> object:
    config = load_config(ItemTrainConfig, TINY_CONFIG)
    return dataclasses.replace(config.model.prompt, kind=PromptKind.TEXT_ONLY)


def test_the_model_learns_a_fixed_batch_its_temperature_moves_and_vision_stays_frozen(
    catalogue: Path,
) -> None:
    torch.manual_seed(0)
    task = ItemPairTask(_config(catalogue))
    model = task.build_model()
    assert isinstance(model, ItemPairModel)
    assert model.loss.temperature.requires_grad
    vision = model.encoder.vision
    assert vision is not None
    frozen = {name: value.clone() for name, value in vision.state_dict().items()}
    assert not any(parameter.requires_grad for parameter in vision.parameters())
    optimiser = torch.optim.AdamW(
        [parameter for parameter in model.parameters() if parameter.requires_grad], lr=3e-3
    )
    batch = task.train_batch(np.arange(16))
    model.train()
    losses = []
    for _ in range(25):
        loss = task.loss(model, batch, torch.device("cpu"))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses
    assert float(model.loss.temperature.detach()) != pytest.approx(3.0, abs=1e-3)
    for name, value in vision.state_dict().items():
        torch.testing.assert_close(value, frozen[name])


def test_muse_train_writes_recall_by_link_kind(
    finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["model"] == "notellm2_tiny"
    assert len(metrics["validation_history"]) == 2 and metrics["steps"] == 2 * 6
    assert set(metrics["test"]) == {"all", "image", "text", "both"}
    for kind, by_k in metrics["test"].items():
        assert set(by_k) == set(KS), kind
        values = [by_k[k] for k in KS]
        assert all(0.0 <= value <= 1.0 for value in values) and values == sorted(values)
    # The pool is the 40 test pairs' non-query items: every relevant item is within 1000.
    assert metrics["test"]["all"]["1000"] == pytest.approx(1.0)
    assert metrics["oracle"]["all"]["10"] == pytest.approx(1.0)
    assert metrics["test_queries"] > 0
    validation = metrics["validation"]
    assert {"recall@10", "recall@10/image", "recall@10/text", "logit_scale"} <= set(validation)
    assert (finished_run / "checkpoints" / "best.pt").is_file()


def test_i2i_evaluate_reproduces_the_test_report_of_training(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = json.loads((finished_run / "metrics.json").read_text())
    out = tmp_path / "evaluation.json"
    checkpoint = str(finished_run / "checkpoints" / "best.pt")
    assert main(["i2i", "evaluate", "--checkpoint", checkpoint, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    for kind, by_k in metrics["test"].items():
        for k in KS:
            assert report["test"][kind][k] == pytest.approx(by_k[k], abs=1e-9), (kind, k)
    assert report["oracle"] == metrics["oracle"]
    assert report["test_queries"] == metrics["test_queries"]
    printed = capsys.readouterr().out
    assert "R@1000" in printed and "oracle" in printed
    assert main(["i2i", "evaluate", "--checkpoint", str(tmp_path / "none.pt")]) == 2


def test_i2i_train_refuses_a_ranking_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ranking = ROOT / "configs/ranking/muse.toml"
    assert main(["i2i", "train", "--config", str(ranking), "--out", str(tmp_path / "r")]) == 2
    assert "item-to-item configs" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_continues_an_interrupted_run_and_re_evaluates_a_finished_one(
    catalogue: Path,
    finished_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "interrupted"
    original_loss = ItemPairTask.loss
    calls = {"count": 0}

    def failing_loss(self: ItemPairTask, *args: object) -> torch.Tensor:
        calls["count"] += 1
        if calls["count"] == 9:  # step 9 (epoch 2, 3rd batch): the last checkpoint was at step 8
            raise KeyboardInterrupt
        return original_loss(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ItemPairTask, "loss", failing_loss)
    with pytest.raises(KeyboardInterrupt):
        main([*_train_args(catalogue, out), "--no-progress"])
    monkeypatch.setattr(ItemPairTask, "loss", original_loss)
    assert not (out / "metrics.json").exists()
    assert main([*_train_args(catalogue, out), "--no-progress"]) == 2  # refuses to overwrite
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert main([*_train_args(catalogue, out), "--resume", "--no-progress"]) == 0
    assert "resumed from step 8 (epoch 2, batch 2)" in capsys.readouterr().out
    resumed = json.loads((out / "metrics.json").read_text())
    uninterrupted = json.loads((finished_run / "metrics.json").read_text())
    assert resumed["steps"] == uninterrupted["steps"] == 12
    # The same batches and random draws: the resumed run ends where the uninterrupted one did.
    assert set(resumed["test"]) == set(uninterrupted["test"])
    for kind, by_k in uninterrupted["test"].items():
        assert resumed["test"][kind] == pytest.approx(by_k), kind
    for name in ("last.pt", "best.pt"):
        ours = torch.load(out / "checkpoints" / name, weights_only=True)["model"]
        theirs = torch.load(finished_run / "checkpoints" / name, weights_only=True)["model"]
        for key, value in theirs.items():
            torch.testing.assert_close(ours[key], value, rtol=1e-4, atol=1e-5)
    # A finished run resumed only re-evaluates: no more steps.
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "notellm2_tiny: test R@1 " in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["steps"] == 12


def test_i2i_embed_writes_unit_rows_that_i2i_index_reads(
    catalogue: Path, finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    embeddings = tmp_path / "embeddings.parquet"
    checkpoint = finished_run / "checkpoints" / "best.pt"
    args = ["i2i", "embed", "--checkpoint", str(checkpoint), "--dataset", str(catalogue)]
    assert main([*args, "--out", str(embeddings), "--batch-size", "50"]) == 0
    assert f"wrote {embeddings}: 120 items × 16" in capsys.readouterr().out
    frame = pl.read_parquet(embeddings)
    assert frame.schema["item_id"] == pl.Int64
    items = read_item_pair_dataset(catalogue).items
    np.testing.assert_array_equal(frame["item_id"].to_numpy(), items.item_ids)
    vectors = np.stack(frame["embedding"].to_list())
    assert vectors.shape == (120, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.unique(vectors.round(4), axis=0).shape[0] > 100  # items are told apart
    bundle = tmp_path / "bundle"
    index_args = ["i2i", "index", "--embeddings", str(embeddings), "--items"]
    index_args += [str(catalogue / "items.parquet"), "--set", "kind=exact", "--out", str(bundle)]
    assert main(index_args) == 0
    index, _ = read_index_bundle(bundle)
    assert index.size == 120
    # Not a training checkpoint of this task: one line, exit 2.
    not_a_checkpoint = tmp_path / "x.pt"
    not_a_checkpoint.write_bytes(b"nope")
    bad = ["i2i", "embed", "--checkpoint", str(not_a_checkpoint), "--dataset", str(catalogue)]
    assert main([*bad, "--out", str(tmp_path / "y.parquet")]) == 2
    assert "not a readable torch checkpoint" in capsys.readouterr().err


def test_images_of_other_sizes_and_modes_are_converted_and_resized(catalogue: Path) -> None:
    task = ItemPairTask(_config(catalogue))
    items = task.dataset.items
    assert items.embedded_images is not None
    red = _png(Image.new("RGBA", (40, 24), (255, 0, 0, 128)))
    odd = dataclasses.replace(items, embedded_images=(red, *items.embedded_images[1:]))
    data = task.config.data
    inputs = ItemInputs(odd, task.prompt, task.config.model, data.image_mean, data.image_std)
    images = inputs.images(np.array([0, 0]))
    assert images.shape == (2, 3, 16, 16)
    for channel, value in enumerate((1.0, 0.0, 0.0)):
        expected = (value - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
        np.testing.assert_allclose(images[:, channel].numpy(), expected, atol=1e-5)


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_shipped_configs_load_and_name_their_parts() -> None:
    tiny = load_config(ItemTrainConfig, TINY_CONFIG)
    assert tiny.tokenizer_path is None and tiny.training.threads == 1
    assert tiny.run_directory == Path("runs/notellm2_tiny")
    full = load_config(ItemTrainConfig, ROOT / "configs/item2item/notellm2.toml")
    assert full.model.vision.kind.value == "efficientnet_lite0"
    assert full.model.vision.image_size == 224 and full.model.output_dim == 64
    assert full.tokenizer_path == full.model.backbone.path  # the backbone's own tokenizer
    assert full.model.backbone.num_layers == 8 and full.training.recall_k == 10
    with pytest.raises(ValueError, match="needs its own tokenizer"):
        load_config(
            ItemTrainConfig, ROOT / "configs/item2item/notellm2.toml", ["tokenizer.kind=word"]
        )
