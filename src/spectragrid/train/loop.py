"""The training of one cell: epochs of optimizer steps on tensors held in memory,
validation after each, early stopping, best weights, on Lightning Fabric.

Fabric provides the device, the precision, the seeding, the loggers of the
curves and the reading and writing of the resumable state; the loop is ours.
Its epochs run without per-batch framework hooks: on a CPU those cost about
1 ms a step, as much as a step of the default CNN's forward pass.

Every epoch's random draws (data order, dropout, augmentation, mixup) depend
only on (seed, epoch), so a run resumed after its last saved epoch produces
exactly the numbers of an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from spectragrid.train import curves
from spectragrid.train.augment import Augment
from spectragrid.train.batches import Arrays, epoch_order
from spectragrid.train.budget import out_of_time
from spectragrid.train.devices import effective_precision, training_fabric
from spectragrid.train.losses import build_loss
from spectragrid.train.phases import TrainingPhases
from spectragrid.train.record import TrainingRecord
from spectragrid.train.resume import Resume, ResumeSaver, ResumeStateIO, load_resume_state
from spectragrid.train.schedules import PLATEAU_MONITOR, build_optimizer, build_scheduler
from spectragrid.train.settings import TrainSettings
from spectragrid.train.steps import OptimizerSteps
from spectragrid.train.validation import validation_row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitResult:
    model: nn.Module  # the best weights, on the training device
    history: list[dict[str, float]]  # one row per epoch, epoch 0 before training
    best_epoch: int
    epoch_seconds: list[float]  # whole epochs, validation included
    step_seconds: list[float]  # each epoch's optimizer steps alone
    device: str
    precision: str
    native: dict[str, str]  # per C kernel, the path its training calls took
    resumed_from: int | None  # epochs already done when this run started
    # why training ended: epochs, patience, diverged or time_budget (TrainingRecord.stopped)
    stopped: str | None = None


def fit(
    model: nn.Module,
    train: Arrays,
    val: Arrays,
    settings: TrainSettings,
    n_classes: int,
    seed: int,
    augment: Augment | None = None,
    resume: Resume | None = None,
    curves_dir: Path | None = None,
    max_train_seconds: float | None = None,
) -> FitResult:
    """Train with early stopping on the monitored validation metric; keep the best weights.

    With `resume`, the training state is saved there (see resume.SavePolicy),
    and a state saved by an earlier, interrupted run with the same key is
    resumed. With `curves_dir`, the per-epoch curves are logged there. With
    `max_train_seconds` (budget.max_train_seconds), training stops before an
    epoch that would end past it (spectragrid.train.budget). `settings.freeze`
    and `settings.unfreeze` train in two phases (spectragrid.train.phases).
    """
    run = _Training(
        model, train, val, settings, n_classes, seed, augment, resume, curves_dir, max_train_seconds
    )
    first = run.restore_or_evaluate()
    last = first if run.finished else settings.epochs
    for epoch in range(first, last):
        if run.train_epoch(epoch):
            break
    return run.result()


class _Training:
    """One fit's Fabric, training objects and record."""

    def __init__(
        self,
        model: nn.Module,
        train: Arrays,
        val: Arrays,
        settings: TrainSettings,
        n_classes: int,
        seed: int,
        augment: Augment | None,
        resume: Resume | None,
        curves_dir: Path | None,
        max_train_seconds: float | None = None,
    ) -> None:
        self.train, self.val = train, val
        self.settings, self.n_classes, self.seed = settings, n_classes, seed
        self.resume = resume
        self.loggers = curves.curve_loggers(curves_dir)
        self.fabric = fabric = training_fabric(
            settings.precision, ResumeStateIO() if resume is not None else None, self.loggers
        )
        fabric.seed_everything(seed, workers=True, verbose=False)
        self.model = model = fabric.to_device(model)
        # Fine-tuning phases change which parameters train, not the optimizer:
        # its groups are set once here (see spectragrid.train.phases).
        self.phases = TrainingPhases(model, settings)
        self.optimizer = build_optimizer(self.phases.param_groups(), settings)
        self.max_train_seconds = max_train_seconds
        self.scheduler = build_scheduler(self.optimizer, settings)
        _, fabric_optimizer = fabric.setup(model, self.optimizer)
        self.record = TrainingRecord()
        self.forward_context = fabric.autocast()
        counts = np.bincount(train.labels.numpy(), minlength=n_classes)
        # fp16's gradient scaler needs Fabric's backward and step; elsewhere they
        # only add hooks this loop does not use, about 0.2 ms a step.
        scaled = getattr(fabric.strategy.precision, "scaler", None) is not None
        backward: Callable[[torch.Tensor], None] = (
            fabric.backward if scaled else torch.Tensor.backward  # type: ignore[assignment]
        )
        self.steps = OptimizerSteps(
            model,
            build_loss(settings, counts).to(fabric.device),
            fabric_optimizer if scaled else self.optimizer,
            backward,
            self.forward_context,
            fabric.device,
            n_classes,
            settings.batch_size,
            settings.mixup_alpha,
            augment,
            seed,
        )
        self.state: dict[str, Any] = {
            "state_dict": model,
            "optimizer": self.optimizer,
            "spectragrid": self.record,
        }
        if self.scheduler is not None:
            self.state["scheduler"] = self.scheduler
        self.saver = ResumeSaver(fabric, resume, self.state) if resume is not None else None
        self.resumed_from: int | None = None
        self.finished = False

    def restore_or_evaluate(self) -> int:
        """Restore a saved state of this run, or score the model before training;
        return the epochs already done."""
        saved = None
        if self.resume is not None:
            saved = load_resume_state(self.fabric, self.resume, self.state)
        if saved is not None:
            self.resumed_from = self.record.epochs_done
            # A state saved after the last epoch (an early stop, say) has nothing left to train.
            self.finished = bool(saved["finished"])
            log.info(
                "resuming after epoch %d of %d from %s",
                self.record.epochs_done,
                self.settings.epochs,
                self.resume.path,  # type: ignore[union-attr]
            )
        self.model.train()
        if not self.record.history:
            self.record.add_row({"epoch": 0, "train_loss": math.nan, **self.validate()})
        for row in self.record.history:
            self.fabric.log_dict(curves.curve_values(row), step=int(row["epoch"]))
        if self.saver is not None:
            self.saver.start()
        return self.record.epochs_done

    def validate(self) -> dict[str, float]:
        """The validation scores, and the lr the coming epoch trains with (schedulers
        step after validation)."""
        row = validation_row(
            self.model, self.val, self.forward_context, self.fabric.device, self.n_classes
        )
        return {**row, "lr": self.optimizer.param_groups[0]["lr"]}

    def train_epoch(self, epoch: int) -> bool:
        """Train epoch `epoch` (0-based), record it, save as due; whether training stops."""
        started = time.perf_counter()
        record, settings = self.record, self.settings
        self.phases.enter(epoch)
        self.steps.seed_epoch(epoch)
        with record.kernel_paths.recording():
            order = epoch_order(len(self.train.labels), self.seed, epoch)
            epoch_loss = self.steps.run_epoch(self.train, order)
        record.step_seconds.append(epoch_loss.step_seconds)
        done = epoch + 1
        row = {"epoch": done, "train_loss": epoch_loss.mean, **self.validate()}
        record.add_row(row)
        monitored = float(row[settings.monitor])
        record.keep_if_best(done, monitored, self.model)
        # One line per epoch in the cell's log: what a person follows while it trains.
        log.info(
            "epoch %d/%d done: train loss %.4g, %s %.4g (best %.4g at epoch %d)",
            done,
            settings.epochs,
            epoch_loss.mean,
            settings.monitor,
            monitored,
            record.best_score,
            record.best_epoch,
        )
        # Early stopping: `patience` epochs without a strictly better score, or
        # a score that is not finite (training diverged), end training; so does
        # a time budget, before an epoch that would end past it.
        diverged = not math.isfinite(monitored)
        # Patience counts from the opening of the blocks at the earliest: a frozen
        # backbone's plateau does not end a fine-tuning before its second phase.
        since = max(record.best_epoch, self.phases.last_phase_start)
        patience_out = done - since >= settings.patience
        out_of_budget = out_of_time(
            [*record.epoch_seconds, time.perf_counter() - started], self.max_train_seconds
        )
        stop = patience_out or diverged or out_of_budget
        if stop or done >= settings.epochs:
            record.stopped = (
                "diverged"
                if diverged
                else "patience"
                if patience_out
                else "time_budget"
                if out_of_budget
                else "epochs"
            )
        # Schedulers step once per epoch, after its validation, before its state is saved.
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(row[PLATEAU_MONITOR])
        elif self.scheduler is not None:
            self.scheduler.step()
        record.epochs_done = done
        record.epoch_seconds.append(time.perf_counter() - started)
        self.fabric.log_dict(curves.curve_values(row), step=done)
        if self.saver is not None:
            self.saver.after_epoch(done, settings.epochs, last=stop or done >= settings.epochs)
        return stop

    def result(self) -> FitResult:
        curves.finish(self.loggers)
        record = self.record
        if record.best_state is not None:
            self.model.load_state_dict(record.best_state)
        return FitResult(
            model=self.model,
            history=record.history,
            best_epoch=record.best_epoch,
            epoch_seconds=record.epoch_seconds,
            step_seconds=record.step_seconds,
            device=str(self.fabric.device),
            precision=effective_precision(self.settings.precision),
            native=record.kernel_paths.describe(),
            resumed_from=self.resumed_from,
            stopped=record.stopped,
        )
