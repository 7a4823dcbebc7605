"""The generic training loop: epochs with early stopping, atomic checkpoints, resume, reporting.

``train_task(task, settings, run_dir)`` runs on one process or, under torchrun, on every rank
with the ID tables sharded by DistributedModelParallel. It resumes from ``checkpoints/last.pt``
when asked, replaying the same batches an uninterrupted run would have seen, and ends by asking
the task for its test report with the best validation weights loaded (``metrics.json`` beside
the resolved ``config.toml``). What is trained comes from a
:class:`~muse.training.training_task.TrainingTask`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic

import torch
from torch import nn
from tqdm import tqdm

from muse.core.atomic_write import write_text_atomic
from muse.core.config_loader import dump_toml
from muse.core.errors import ConfigError
from muse.training.checkpoint import load_checkpoint, save_checkpoint
from muse.training.distributed import DistributedContext
from muse.training.early_stopping import EarlyStopping
from muse.training.optimizers import Optimizers, build_optimizers
from muse.training.prefetch import Prefetcher
from muse.training.prepared_model import (
    PreparedModel,
    full_model_state,
    load_model_state,
    place_model,
)
from muse.training.run_directory import RunDirectory
from muse.training.sampler import EpochSampler
from muse.training.sharded_state import fill_local, gather_full
from muse.training.training_config import TrainingConfig
from muse.training.training_task import Batch, Report, TrainingTask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingOutcome(Generic[Report]):
    """What a finished run returns (on every rank).

    test: the task's report on the best-validation weights. validation: the best validation
    logs (None when no validation ever improved). epochs: epochs trained (early stopping
    included). samples_per_second: training throughput over all ranks. model: the trained
    module (sharded under torchrun), best weights loaded.
    """

    run_dir: Path
    test: Report
    validation: dict[str, float] | None
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


def train_task(
    task: TrainingTask[Batch, Report],
    settings: TrainingConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
) -> TrainingOutcome[Report]:
    """Train ``task`` with ``settings`` into ``run_dir``; see the module docstring.

    Without ``resume`` the run directory must not already hold a checkpoint; with it, training
    continues from ``checkpoints/last.pt``.
    """
    context = DistributedContext.from_environment(settings.device)
    try:
        job = _TrainingJob(task, settings, RunDirectory(run_dir), context, progress)
        try:
            return job.run(resume)
        finally:
            job.close()
    finally:
        context.close()


class _TrainingJob(Generic[Batch, Report]):
    def __init__(
        self,
        task: TrainingTask[Batch, Report],
        settings: TrainingConfig,
        run: RunDirectory,
        context: DistributedContext,
        progress: bool,
    ) -> None:
        self.task = task
        self.settings = settings
        self.run_directory = run
        self.show_progress = progress
        self.context = context
        self.run_config = task.run_config()
        if settings.threads:
            torch.set_num_threads(settings.threads)
        torch.manual_seed(settings.seed)
        self.prepared: PreparedModel = place_model(
            task.build_model(), context, settings.sparse_learning_rate, settings.sparse_eps
        )
        self.optimizers: Optimizers = build_optimizers(
            self.prepared.module,
            self.prepared.sparse_names,
            settings,
            self.prepared.fused_optimizer,
        )
        self.sampler = EpochSampler(
            task.num_train_rows(),
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

    def run(self, resume: bool) -> TrainingOutcome[Report]:
        run = self.run_directory
        if resume:
            self._restore(load_checkpoint(run.last_checkpoint))
        elif run.last_checkpoint.exists():
            raise ConfigError(
                f"{run.root} already holds a run; pass --resume or choose another --out"
            )
        if self.context.is_main:
            write_text_atomic(run.config, dump_toml(self.run_config))
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
        settings, state, context, task = self.settings, self.state, self.context, self.task
        model = self.prepared.module
        model.train()
        batches = self.sampler.batches(state.epoch, state.batch)
        prefetcher = Prefetcher(batches, task.train_batch, settings.prefetch_batches)
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
            # The prefetcher yields the batches of ``batches`` in order.
            for rows, batch in zip(batches, prefetcher, strict=True):
                loss = task.loss(model, batch, context.device)
                self.optimizers.zero_grad()
                loss.backward()
                self.optimizers.step()
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        f"training loss became {loss_value} at step {state.step + 1}"
                    )
                size = rows.size
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
        state = self.state
        evaluation = self.task.validate(self.prepared.module, self.context, self.show_progress)
        improved = self.early_stopping.update(evaluation.score, state.step, state.epoch)
        state.validations.append(
            {
                "epoch": state.epoch,
                "step": state.step,
                "train_loss": self.epoch_train_loss,
                **evaluation.logs,
            }
        )
        if self.writer is not None:
            for name, value in evaluation.logs.items():
                self.writer.add_scalar(f"validation/{name}", value, state.step)
            self.writer.flush()
        if self.context.is_main:
            figures = " ".join(
                f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
                for name, value in evaluation.logs.items()
            )
            tqdm.write(f"epoch {state.epoch}: validation {figures}{' (best)' if improved else ''}")
        if improved:
            model_state = full_model_state(self.prepared, self.context)
            if self.context.is_main:
                save_checkpoint(
                    self.run_directory.best_checkpoint,
                    {
                        "config": self.run_config,
                        "model": model_state,
                        "epoch": state.epoch,
                        "step": state.step,
                        "validation": evaluation.logs,
                    },
                )
            self.context.barrier()

    def _finish(self) -> TrainingOutcome[Report]:
        state, context = self.state, self.context
        best = (
            load_checkpoint(self.run_directory.best_checkpoint)
            if self.run_directory.best_checkpoint.exists()
            else None
        )
        if best is not None:
            load_model_state(self.prepared, best["model"])
        test = self.task.test(self.prepared.module, context, self.show_progress)
        validation = best["validation"] if best is not None else None
        samples_per_second = state.samples / max(state.train_seconds, 1e-9)
        best_epoch = int(best["epoch"]) if best is not None else -1
        if context.is_main:
            report = {
                **test.as_dict(),
                "validation": validation,
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
                for name, value in test.scalars().items():
                    self.writer.add_scalar(f"test/{name}", value, state.step)
        context.barrier()
        return TrainingOutcome(
            run_dir=self.run_directory.root,
            test=test,
            validation=validation,
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
                "config": self.run_config,
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
        saved, wanted = checkpoint["config"], self.run_config
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
