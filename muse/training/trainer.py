"""The ranking training job: epochs with early stopping, atomic checkpoints, exact evaluation.

``train(config)`` runs on one process or, under torchrun, on every rank with the ID tables sharded
by DistributedModelParallel. It resumes from ``checkpoints/last.pt`` when asked, replaying the
same batches an uninterrupted run would have seen, and ends by scoring the whole test set with
the best validation weights (``metrics.json`` beside the resolved ``config.toml``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from tqdm import tqdm

from features.dataset import Dataset
from muse.core.atomic_write import write_text_atomic
from muse.core.config_loader import config_to_dict, dump_toml
from muse.core.errors import ConfigError
from muse.training.batch_builder import BatchBuilder
from muse.training.checkpoint import load_checkpoint, save_checkpoint
from muse.training.distributed import DistributedContext
from muse.training.early_stopping import EarlyStopping
from muse.training.evaluation import Metrics, compute_metrics, evaluate_samples, to_device
from muse.training.loss import ranking_loss
from muse.training.optimizers import Optimizers, build_optimizers
from muse.training.prefetch import Prefetcher
from muse.training.prepared_model import (
    ModelFactory,
    PreparedModel,
    full_model_state,
    load_model_state,
    prepare_model,
)
from muse.training.run_directory import RunDirectory
from muse.training.sample_table import SampleTable
from muse.training.sampler import EpochSampler
from muse.training.sharded_state import fill_local, gather_full
from muse.training.train_config import EarlyStoppingMetric, TrainConfig
from muse.training.validation_split import split_validation

logger = logging.getLogger(__name__)


class TrainResult(NamedTuple):
    """What a finished run returns (on every rank).

    test: metrics of the best-validation weights on the whole test set. validation: the best
    validation metrics. epochs: epochs trained (early stopping included). samples_per_second:
    training throughput over all ranks. model: the trained module, best weights loaded.
    """

    run_dir: Path
    test: Metrics
    validation: Metrics
    oracle: Metrics | None
    epochs: int
    best_epoch: int
    steps: int
    samples_per_second: float
    model: nn.Module


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0  # epoch being trained (0-based)
    batch: int = 0  # next batch within that epoch
    step: int = 0  # optimiser steps taken
    samples: int = 0  # training samples seen over all ranks
    train_seconds: float = 0.0
    epochs_completed: int = 0
    finished: bool = False
    epoch_loss_sum: float = 0.0  # sample-weighted training loss of the current epoch so far
    epoch_loss_count: int = 0
    validations: list[dict[str, Any]] = field(default_factory=list)


def train(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    model_factory: ModelFactory | None = None,
) -> TrainResult:
    """Train ``config``'s model on its dataset; see the module docstring.

    run_dir defaults to ``config.run_directory`` (``training.output_dir`` or runs/<model>). Without ``resume`` the run directory must
    not already hold a checkpoint; with it, training continues from ``checkpoints/last.pt``.
    """
    context = DistributedContext.from_environment(config.training.device)
    try:
        job = _TrainingJob(
            config,
            RunDirectory(run_dir or config.run_directory),
            context,
            progress,
            model_factory,
        )
        try:
            return job.run(resume)
        finally:
            job.close()
    finally:
        context.close()


class _TrainingJob:
    def __init__(
        self,
        config: TrainConfig,
        run: RunDirectory,
        context: DistributedContext,
        progress: bool,
        model_factory: ModelFactory | None,
    ) -> None:
        settings = config.training
        self.config = config
        self.settings = settings
        self.run_directory = run
        self.show_progress = progress
        self.context = context
        if settings.threads:
            torch.set_num_threads(settings.threads)
        torch.manual_seed(settings.seed)
        self.dataset = Dataset(config.data.dataset)
        self.builder = BatchBuilder(self.dataset, config.data.max_history_length)
        train_samples = SampleTable.load(self.dataset, "train")
        split = split_validation(
            train_samples,
            config.data.validation_split,
            config.data.validation_fraction,
            settings.seed,
        )
        self.fit_samples = train_samples.subset(split.fit)
        self.validation_samples = train_samples.subset(split.validation)
        self.test_samples = SampleTable.load(self.dataset, "test")
        extra = {} if model_factory is None else {"model_factory": model_factory}
        self.prepared: PreparedModel = prepare_model(
            config.model,
            self.dataset,
            self.context,
            settings.sparse_learning_rate,
            settings.sparse_eps,
            **extra,
        )
        self.optimizers: Optimizers = build_optimizers(
            self.prepared.module,
            self.prepared.sparse_names,
            settings,
            self.prepared.fused_optimizer,
        )
        self.sampler = EpochSampler(
            len(self.fit_samples),
            settings.batch_size,
            settings.seed,
            self.context.rank,
            self.context.world_size,
        )
        self.early_stopping = EarlyStopping(settings.patience, settings.minimum_improvement)
        self.state = Progress()
        self.epoch_train_loss = math.nan
        self.writer: Any = None

    # ---- run ---------------------------------------------------------------------------------

    def run(self, resume: bool) -> TrainResult:
        run = self.run_directory
        if resume:
            self._restore(load_checkpoint(run.last_checkpoint))
        elif run.last_checkpoint.exists():
            raise ConfigError(
                f"{run.root} already holds a run; pass --resume or choose another --out"
            )
        if self.context.is_main:
            write_text_atomic(run.config, dump_toml(config_to_dict(self.config)))
            for stale in run.checkpoints.glob(".*.tmp-*"):  # left by a process killed mid-write
                stale.unlink(missing_ok=True)
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run logged after its last checkpoint.
            resumed_mid_run = self.state.step > 0 and not self.state.finished
            purge_step = self.state.step + 1 if resumed_mid_run else None
            self.writer = SummaryWriter(str(run.tensorboard), purge_step=purge_step)
        self.context.barrier()
        while not self.state.finished:
            self._train_epoch()
            self._validate()
            stop = self.early_stopping.should_stop or self.state.epoch >= self.settings.max_epochs
            self.state.finished = stop
            self._save_last()
        return self._finish()

    def _train_epoch(self) -> None:
        settings, state, context = self.settings, self.state, self.context
        model = self.prepared.module
        model.train()
        batches = self.sampler.batches(state.epoch, state.batch)
        prefetcher = Prefetcher(
            batches,
            lambda rows: self.builder.build(self.fit_samples, rows),
            settings.prefetch_batches,
        )
        bar = tqdm(
            total=self.sampler.shard_size,
            initial=min(state.batch * settings.batch_size, self.sampler.shard_size),
            unit="sample",
            unit_scale=True,
            desc=f"epoch {state.epoch + 1}/{settings.max_epochs}",
            disable=not (self.show_progress and context.is_main),
            dynamic_ncols=True,
        )
        started = time.perf_counter()
        try:
            for batch in prefetcher:
                output = model(to_device(batch, context.device))
                loss = ranking_loss(
                    output, batch.label.to(context.device), settings.auxiliary_loss_weight
                )
                self.optimizers.zero_grad()
                loss.backward()
                self.optimizers.step()
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        f"training loss became {loss_value} at step {state.step + 1}"
                    )
                size = len(batch.label)
                state.step += 1
                state.batch += 1
                state.samples += size * context.world_size
                state.epoch_loss_sum += loss_value * size
                state.epoch_loss_count += size
                mean_loss = state.epoch_loss_sum / state.epoch_loss_count
                bar.update(size)
                bar.set_postfix(loss=f"{mean_loss:.4f}")
                if state.step % settings.log_every_steps == 0 and self.writer is not None:
                    elapsed = state.train_seconds + time.perf_counter() - started
                    self.writer.add_scalar("train/loss", mean_loss, state.step)
                    self.writer.add_scalar(
                        "train/samples_per_second", state.samples / max(elapsed, 1e-9), state.step
                    )
                if state.step % settings.checkpoint_every_steps == 0:
                    state.train_seconds += time.perf_counter() - started
                    self._save_last()
                    started = time.perf_counter()
        finally:
            prefetcher.close()
            bar.close()
        state.train_seconds += time.perf_counter() - started
        self.epoch_train_loss = state.epoch_loss_sum / max(state.epoch_loss_count, 1)
        state.epoch += 1
        state.batch = 0
        state.epochs_completed = state.epoch
        state.epoch_loss_sum, state.epoch_loss_count = 0.0, 0

    def _validate(self) -> None:
        settings, state = self.settings, self.state
        metrics = evaluate_samples(
            self.prepared.module,
            self.builder,
            self.validation_samples,
            self.context,
            settings.evaluation_batch_size,
            settings.prefetch_batches,
            self.show_progress,
            description="validate",
        )
        value = (
            metrics.gauc
            if settings.early_stopping_metric is EarlyStoppingMetric.GAUC
            else metrics.auc
        )
        improved = self.early_stopping.update(value, state.step, state.epoch)
        state.validations.append(
            {
                "epoch": state.epoch,
                "step": state.step,
                "train_loss": self.epoch_train_loss,
                **metrics.as_dict(),
            }
        )
        if self.writer is not None:
            for name in ("auc", "gauc", "logloss"):
                self.writer.add_scalar(f"validation/{name}", getattr(metrics, name), state.step)
            self.writer.flush()
        if self.context.is_main:
            tqdm.write(
                f"epoch {state.epoch}: validation AUC {metrics.auc:.4f} GAUC {metrics.gauc:.4f} "
                f"logloss {metrics.logloss:.4f}{' (best)' if improved else ''}"
            )
        if improved:
            model_state = full_model_state(self.prepared, self.context)
            if self.context.is_main:
                save_checkpoint(
                    self.run_directory.best_checkpoint,
                    {
                        "config": config_to_dict(self.config),
                        "model": model_state,
                        "epoch": state.epoch,
                        "step": state.step,
                        "validation": metrics.as_dict(),
                    },
                )
            self.context.barrier()

    def _finish(self) -> TrainResult:
        state, context = self.state, self.context
        best = (
            load_checkpoint(self.run_directory.best_checkpoint)
            if self.run_directory.best_checkpoint.exists()
            else None
        )
        if best is not None:
            load_model_state(self.prepared, best["model"])
        test = evaluate_samples(
            self.prepared.module,
            self.builder,
            self.test_samples,
            context,
            self.settings.evaluation_batch_size,
            self.settings.prefetch_batches,
            self.show_progress,
            description="test",
        )
        click_probability = self.dataset.click_probability()
        oracle = (
            compute_metrics(self.test_samples, click_probability)
            if click_probability is not None
            else None
        )
        validation = (
            Metrics(**best["validation"])
            if best is not None
            else Metrics(math.nan, math.nan, math.nan, 0)
        )
        samples_per_second = state.samples / max(state.train_seconds, 1e-9)
        best_epoch = int(best["epoch"]) if best is not None else -1
        if context.is_main:
            report = {
                "model": self.config.model.name,
                "dataset": str(self.config.data.dataset),
                "split": "test",
                **test.as_dict(),
                "oracle": oracle.as_dict() if oracle is not None else None,
                "validation": validation.as_dict(),
                "validation_history": state.validations,
                "epochs": state.epochs_completed,
                "best_epoch": best_epoch,
                "steps": state.step,
                "early_stopped": self.early_stopping.should_stop,
                "train_samples_per_second": samples_per_second,
                "world_size": context.world_size,
            }
            write_text_atomic(self.run_directory.metrics, json.dumps(report, indent=2) + "\n")
            if self.writer is not None:
                for name in ("auc", "gauc", "logloss"):
                    self.writer.add_scalar(f"test/{name}", getattr(test, name), state.step)
        context.barrier()
        return TrainResult(
            run_dir=self.run_directory.root,
            test=test,
            validation=validation,
            oracle=oracle,
            epochs=state.epochs_completed,
            best_epoch=best_epoch,
            steps=state.step,
            samples_per_second=samples_per_second,
            model=self.prepared.module,
        )

    # ---- checkpoints -------------------------------------------------------------------------

    def _save_last(self) -> None:
        """Snapshot everything needed to continue exactly (collective when sharded)."""
        context, optimizers = self.context, self.optimizers
        model_state = full_model_state(self.prepared, context)
        if optimizers.fused is not None:
            sparse_state = gather_full(optimizers.fused.state_dict(), context.is_main)
        else:
            sparse_state = optimizers.sparse.state_dict() if optimizers.sparse is not None else None
        if context.is_main:
            payload = {
                "config": config_to_dict(self.config),
                "world_size": context.world_size,
                "model": model_state,
                "dense_optimizer": optimizers.dense.state_dict(),
                "sparse_optimizer": sparse_state,
                "progress": {
                    name: getattr(self.state, name) for name in Progress.__dataclass_fields__
                },
                "early_stopping": self.early_stopping.state_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state() if context.device.type == "cuda" else None,
            }
            save_checkpoint(self.run_directory.last_checkpoint, payload)
        context.barrier()

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        saved, wanted = checkpoint["config"], config_to_dict(self.config)
        # Where the run lives may be spelled differently (--out or the default); what it does may not.
        differing = [key for key in _differing_keys(saved, wanted) if key != "training.output_dir"]
        if differing:
            raise ConfigError(
                f"{self.run_directory.last_checkpoint}: cannot resume with a different config; "
                f"differing key(s): {', '.join(differing)}"
            )
        if checkpoint["world_size"] != self.context.world_size:
            raise ConfigError(
                f"{self.run_directory.last_checkpoint}: saved by {checkpoint['world_size']} process(es), "
                f"resumed with {self.context.world_size}"
            )
        load_model_state(self.prepared, checkpoint["model"])
        self.optimizers.dense.load_state_dict(checkpoint["dense_optimizer"])
        if self.optimizers.fused is not None:
            local = fill_local(self.optimizers.fused.state_dict(), checkpoint["sparse_optimizer"])
            self.optimizers.fused.load_state_dict(local)
        elif self.optimizers.sparse is not None:
            self.optimizers.sparse.load_state_dict(checkpoint["sparse_optimizer"])
        self.state = Progress(**checkpoint["progress"])
        self.early_stopping.load_state_dict(checkpoint["early_stopping"])
        torch.set_rng_state(checkpoint["rng"])
        if checkpoint["cuda_rng"] is not None and self.context.device.type == "cuda":
            torch.cuda.set_rng_state(checkpoint["cuda_rng"])
        if self.context.is_main:
            message = f"resumed from step {self.state.step} (epoch {self.state.epoch + 1}, batch {self.state.batch})"
            logger.info(message)
            tqdm.write(message)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _differing_keys(saved: Any, wanted: Any, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(wanted, dict):
        keys = []
        for key in sorted(set(saved) | set(wanted)):
            keys += _differing_keys(saved.get(key), wanted.get(key), f"{prefix}{key}.")
        return keys
    return [] if saved == wanted else [prefix.rstrip(".")]
