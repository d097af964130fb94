"""Lightning training of one cell on tensors held in memory.

Batches are slices of a seeded permutation of in-memory tensors: no
per-sample Python, no DataLoader workers, no collation.

A long cell can keep resumable state: at the end of epochs (at a bounded
cost, see ResumeCheckpoint) the model, optimiser, scheduler, early-stopping
and best-weights state and the history are saved atomically to one file, and
a killed job started again continues after its last saved epoch. Every
epoch's random draws (data order, dropout, augmentation, mixup) depend only
on (seed, epoch), so the resumed run produces exactly the numbers of an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.plugins import MixedPrecision
from lightning.pytorch.plugins.io import CheckpointIO
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from spectragrid.core.atomic import write_atomic
from spectragrid.core.metrics import validation_scores
from spectragrid.train.augment import Augment
from spectragrid.train.checkpoints import load_checkpoint
from spectragrid.train.losses import build_loss, draw_mixup, mixup
from spectragrid.train.schedules import PLATEAU_MONITOR, build_optimizer, build_scheduler

# Batch jobs write logs nobody reads line by line: keep Lightning's banners
# and advice out of them, and keep its real warnings.
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
# On a machine with the SLURM client, every local job would print Lightning's
# advice to launch through srun; the workflow decides where jobs run.
warnings.filterwarnings("ignore", message=".*The `srun` command is available on your system.*")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Every `models.<name>.train` key (config/README.md documents them)."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    scheduler: str = "none"
    step_size: int = 50
    step_gamma: float = 0.1
    plateau_patience: int = 5
    plateau_factor: float = 0.1
    eps: float = 0.0  # label smoothing
    class_weights: str | list[float] = "none"
    focal_gamma: float = 0.0
    mixup_alpha: float = 0.0
    patience: int = 5
    monitor: str = "val_macro_f1"
    precision: str = "auto"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Arrays:
    spectra: torch.Tensor  # (N, C, L) float32
    tabular: torch.Tensor  # (N, T) float32
    labels: torch.Tensor  # (N,) int64
    # (N,) float32 per-sample loss weights; None: every sample weighs 1, which
    # spares each step a gather and a multiply
    weights: torch.Tensor | None = None


def batch_bounds(n: int, batch_size: int, shuffle: bool) -> list[tuple[int, int]]:
    """(start, stop) of each batch of `n` rows.

    In training (`shuffle`) a last batch of one sample, which breaks batch
    norm, joins the previous one.
    """
    bounds = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if shuffle and n - stop == 1:
            stop = n
        bounds.append((start, stop))
        if stop == n:
            break
    return bounds


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The training rows' order in `epoch`: a permutation that depends on (seed, epoch) only."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator)


def batches(data: Arrays, batch_size: int, order: torch.Tensor | None = None):
    """(spectra, tabular, labels, weights or None) batches of `data`: rows in `order`
    (training, where a lone last sample joins the previous batch) or in row order
    (evaluation)."""
    shuffle = order is not None
    tensors = (data.spectra, data.tabular, data.labels, data.weights)
    for start, stop in batch_bounds(len(data.labels), batch_size, shuffle):
        if shuffle:
            # index_select copies whole rows: 3x faster than t[idx] on spectra
            idx = order[start:stop]
            yield tuple(None if t is None else t.index_select(0, idx) for t in tensors)
        else:
            yield tuple(None if t is None else t[start:stop] for t in tensors)


class EpochOrder:
    """One training epoch as Lightning sees it: the order of the training rows.

    A plain object (not a tensor, nor a dataclass, whose fields Lightning
    would move), so Lightning hands it over as it is: the rows are gathered
    from host memory, and moved to the device, batch by batch.
    """

    __slots__ = ("order",)

    def __init__(self, order: torch.Tensor) -> None:
        self.order = order


class TrainingEpochs:
    """One item per epoch, the epoch's row order; `epoch` counts the passes."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch)
        self.epoch += 1
        yield EpochOrder(order)


@dataclass
class History:
    rows: list[dict] = field(default_factory=list)


class CellModule(L.LightningModule):
    def __init__(
        self,
        model: nn.Module,
        settings: TrainSettings,
        n_classes: int,
        class_counts: np.ndarray,
        augment: Augment | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.model = model
        self.settings = settings
        # set by `fit`: training batches are drawn from one, validation scores the other
        self.train_data: Arrays | None = None
        self.val_data: Arrays | None = None
        self.n_classes = n_classes
        self.loss = build_loss(settings.as_dict(), class_counts)
        self.augment = augment
        self.seed = seed
        # One generator drives augmentation and mixup, so a seed fixes both.
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.history = History()
        # each batch's mean loss (not synchronised to the host) and size
        self._train_losses: list[torch.Tensor] = []
        self._train_sizes: list[int] = []
        # the forward pass's precision context, reused by every step
        self._forward_context: Any = contextlib.nullcontext()
        self._epoch_started = 0.0
        self.epoch_seconds: list[float] = []  # whole epochs, validation included
        self.step_seconds: list[float] = []  # each epoch's optimizer steps alone
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_score = -math.inf
        self.best_epoch = 0
        self.used_device = "cpu"
        self.resumed_from: int | None = None  # epochs already done when this run started

    def forward(self, spectra: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        return self.model(spectra, tabular)

    def on_train_start(self) -> None:
        self.used_device = str(self.device)
        if not self.history.rows:  # a resumed run has its evaluation before training
            self.record_validation(0)

    def on_train_epoch_start(self) -> None:
        self._train_losses.clear()
        self._train_sizes.clear()
        self._epoch_started = time.perf_counter()

    def on_train_batch_start(self, _batch, batch_idx: int) -> None:
        if batch_idx == 0:
            # An epoch's draws (dropout, augmentation, mixup) depend on (seed,
            # epoch) only, not on what earlier epochs consumed: a run resumed at
            # this epoch draws exactly what an uninterrupted run draws. Seeded
            # here, right before the epoch's one step, so that nothing Lightning
            # does between epochs (or before the first of a resumed fit) can
            # consume numbers in between.
            epoch_seed = self.seed * 1_000_003 + self.current_epoch
            if self.device.type == "cuda":
                torch.manual_seed(epoch_seed)
            else:
                # torch.manual_seed would also queue a seed for a CUDA that may
                # start later, recording a stack trace each time: 1.3 ms an epoch.
                torch.default_generator.manual_seed(epoch_seed)
            self.generator.manual_seed(epoch_seed + 7919)

    def training_step(self, epoch: EpochOrder, _batch_idx: int) -> None:
        """A whole epoch of optimizer steps.

        Lightning runs the epochs (checkpoints, precision, devices, stopping);
        the batches of an epoch run here, because Lightning's per-batch loop
        costs about 1 ms a step on a CPU, as much as a step of the default
        CNN's forward pass.
        """
        started = time.perf_counter()
        plugin = self.trainer.precision_plugin
        # Lightning's backward and step wrappers run hooks this module does not
        # use, about 0.2 ms a step; only fp16's gradient scaler needs them.
        if getattr(plugin, "scaler", None) is None:
            optimizer, backward = self.optimizers().optimizer, torch.Tensor.backward
        else:
            optimizer, backward = self.optimizers(), self.manual_backward
        # Lightning runs training_step under autocast; only the forward pass
        # needs it. One autocast object serves every step: building one per
        # step costs as much as a few of a small model's elementwise kernels.
        # (32-true, the one other precision, has no forward context.)
        if isinstance(plugin, MixedPrecision):
            self._forward_context = plugin.autocast_context_manager()
        with torch.autocast(self.device.type, enabled=False):
            for batch in batches(self.train_data, self.settings.batch_size, epoch.order):
                loss = self.batch_loss(
                    *(None if t is None else t.to(self.device, non_blocking=True) for t in batch)
                )
                optimizer.zero_grad(set_to_none=True)
                backward(loss)
                optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the steps run asynchronously
        self.step_seconds.append(time.perf_counter() - started)

    def batch_loss(
        self,
        spectra: torch.Tensor,
        tabular: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor | None,
    ) -> torch.Tensor:
        targets: torch.Tensor = labels
        if self.augment is not None:
            spectra, tabular = self.augment(spectra, tabular, self.generator)
        if self.settings.mixup_alpha > 0:
            state = self.generator.get_state()
            onehot = nn.functional.one_hot(labels, self.n_classes).float()
            spectra, tabular, targets = mixup(
                spectra, tabular, onehot, self.settings.mixup_alpha, self.generator
            )
            # Replaying the draw gives the same λ and partners for the weights.
            after = self.generator.get_state()
            self.generator.set_state(state)
            lam, partner = draw_mixup(len(labels), self.settings.mixup_alpha, self.generator)
            self.generator.set_state(after)
            if weights is not None:
                weights = lam * weights + (1 - lam) * weights[partner.to(weights.device)]
        with self._forward_context:
            logits = self.model(spectra, tabular)
        loss = self.loss(logits, targets, weights)
        # .item() would synchronise every step; the epoch's mean is taken at its end.
        self._train_losses.append(loss.detach())
        self._train_sizes.append(len(labels))
        return loss

    def on_train_epoch_end(self) -> None:
        epoch = self.current_epoch + 1
        monitored = self.record_validation(epoch)
        if monitored > self.best_score:
            self.best_score = monitored
            self.best_epoch = epoch
            # clone, not deepcopy: 9x faster (0.13 against 1.1 ms for the demo CNN)
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        # Early stopping: `patience` epochs without a strictly better score, or
        # a score that is not finite (training diverged), end training.
        if epoch - self.best_epoch >= self.settings.patience or not math.isfinite(monitored):
            self.trainer.should_stop = True
        # Manual optimisation steps its schedulers itself, once per epoch, after
        # this epoch's validation and before its state is saved.
        scheduler = self.lr_schedulers()
        if isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step(self.history.rows[-1][PLATEAU_MONITOR])
        elif scheduler is not None:
            scheduler.step()
        self.epoch_seconds.append(time.perf_counter() - self._epoch_started)

    @torch.no_grad()
    def record_validation(self, epoch: int) -> float:
        """Score the validation rows after `epoch` epochs (0: before training), append
        the history row, and return the monitored value.

        Run here rather than by Lightning's evaluation loop, whose set-up costs
        about 5 ms per pass, a few per cent of a short epoch.
        """
        was_training = self.model.training
        self.model.eval()
        logits = []
        with self.trainer.precision_plugin.val_step_context():
            for spectra, tabular, _labels, _weights in batches(self.val_data, 1024):
                logits.append(self(spectra.to(self.device), tabular.to(self.device)).float())
        self.model.train(was_training)
        all_logits = torch.cat(logits)
        labels = self.val_data.labels.to(self.device)
        val_loss = float(nn.functional.cross_entropy(all_logits, labels))
        scores = validation_scores(
            self.val_data.labels.numpy(), all_logits.argmax(dim=1).cpu().numpy(), self.n_classes
        )
        train_loss = math.nan
        if self._train_sizes and epoch > 0:
            losses = torch.stack(self._train_losses).float().cpu()
            sizes = torch.tensor(self._train_sizes, dtype=torch.float32)
            train_loss = float(losses @ sizes) / sum(self._train_sizes)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_accuracy": scores["accuracy"],
            "val_balanced_accuracy": scores["balanced_accuracy"],
            "val_macro_f1": scores["macro_f1"],
            # the lr this epoch trained with; schedulers step after this
            "lr": self.optimizers().optimizer.param_groups[0]["lr"],
        }
        self.history.rows.append(row)
        return float(row[self.settings.monitor])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning saves weights, optimiser, scheduler, loops and callbacks;
        # this is the rest of the cell's state (plain types and tensors only,
        # so the file loads with weights_only=True).
        checkpoint["spectragrid"] = {
            "epochs_done": self.current_epoch + 1,
            "history": [dict(row) for row in self.history.rows],
            "best_state": self.best_state,
            "best_score": float(self.best_score),
            "best_epoch": int(self.best_epoch),
            "epoch_seconds": list(self.epoch_seconds),
            "step_seconds": list(self.step_seconds),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["spectragrid"]
        self.history.rows = [dict(row) for row in state["history"]]
        self.best_state = state["best_state"]
        self.best_score = state["best_score"]
        self.best_epoch = state["best_epoch"]
        self.epoch_seconds = list(state["epoch_seconds"])
        self.step_seconds = list(state.get("step_seconds", []))

    def configure_optimizers(self):
        config = self.settings.as_dict()
        optimizer = build_optimizer(self.model.parameters(), config)
        scheduler = build_scheduler(optimizer, config, self.settings.epochs)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def native_bf16() -> bool:
    """Whether the device training will run on computes bfloat16 in hardware."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def device_report(used_device: str) -> dict:
    """What the job was given and what training ran on, for the model card.

    A scheduler hands a job its GPUs through CUDA_VISIBLE_DEVICES; when that
    names a device torch cannot open (no driver, a CPU-only build, a fake
    device), training falls back to the CPU, and the card says both.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    cuda = torch.cuda.is_available()
    return {
        "device": used_device,
        "cuda_visible_devices": visible,
        "cuda_device_count": torch.cuda.device_count() if cuda else 0,
        "device_name": torch.cuda.get_device_name() if used_device.startswith("cuda") else "cpu",
        "gpu_fallback": bool(visible) and visible != "-1" and not used_device.startswith("cuda"),
    }


def effective_precision(requested: str) -> str:
    """The precision a cell trains in.

    `auto` is bf16 autocast where the hardware has bfloat16 arithmetic (recent
    GPUs; CPUs with AVX-512 BF16 or AMX) and float32 elsewhere, where emulated
    bf16 would be slower. fp16 autocast is a GPU feature; on a CPU it falls
    back to float32.
    """
    if requested == "auto":
        return "bf16-mixed" if native_bf16() else "32-true"
    if requested == "16-mixed" and not torch.cuda.is_available():
        return "32-true"
    return requested


@dataclass(frozen=True)
class Resume:
    """Where a cell keeps its resumable state, and the key of the run it belongs to."""

    path: Path
    key: str  # a saved state with another key belongs to another config or input


class ResumeStateIO(CheckpointIO):
    """Resume state written under a temporary name and renamed, so that a job killed
    mid-write keeps its previous state; read with weights_only."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        # Serialised in memory and written at once: torch.save's many small
        # writes to a file take as long again as the serialising.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomic(path, buffer.getvalue())

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location or "cpu")

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)


# The most of a cell's training time that saving its resume state may take.
SAVE_OVERHEAD = 0.01


def min_unsaved_seconds() -> float:
    """Training time a killed job may lose before its state is worth saving.

    A restarted job spends several seconds starting up anyway, and a save on a
    cluster's shared file system can cost far more than on a local disk, so
    a cell that trains for less than this never saves (the demo's cells train
    for a few seconds). SPECTRAGRID_MIN_UNSAVED_SECONDS overrides the default
    of 10; 0 lets the SAVE_OVERHEAD rule alone decide.
    """
    value = os.environ.get("SPECTRAGRID_MIN_UNSAVED_SECONDS", "10")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(
            f"SPECTRAGRID_MIN_UNSAVED_SECONDS: expected a number of seconds, got {value!r}"
        ) from None
    if not seconds >= 0:
        raise ValueError(f"SPECTRAGRID_MIN_UNSAVED_SECONDS: expected >= 0, got {value!r}")
    return seconds


def training_ends(trainer: L.Trainer) -> bool:
    """Whether the epoch that just ended is the last one (early stop or max_epochs)."""
    return bool(trainer.should_stop or trainer.current_epoch + 1 >= (trainer.max_epochs or 0))


class ResumeCheckpoint(Checkpoint):
    """Saves the whole training state at the end of epochs, at a bounded cost.

    Nothing is saved until min_unsaved_seconds() of training would be lost.
    From then on, the state is saved after the first epoch that ends (which
    measures what a save costs), after the last, and after any epoch that
    ends once the training since the previous save has lasted 1 /
    SAVE_OVERHEAD times that save: saving then takes at most SAVE_OVERHEAD
    of the training time (a short epoch of a small model would otherwise
    spend 4 % of its time saving), and a killed job loses at most that much
    training, or the minimum, or one epoch. SAVE_OVERHEAD 0 saves after
    every epoch once the minimum has passed.

    A `Checkpoint` runs after the module's end-of-epoch hook, so the saved
    state includes this epoch's record and early-stopping decision.
    """

    def __init__(self, resume: Resume) -> None:
        self.resume = resume
        self.min_unsaved = min_unsaved_seconds()
        self._saved_at = 0.0  # when the last save ended, or training began
        self._save_seconds: float | None = None  # what the last save took

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._saved_at = time.perf_counter()

    def save_due(self, trainer: L.Trainer) -> bool:
        unsaved = time.perf_counter() - self._saved_at
        if unsaved < self.min_unsaved:
            return False
        if SAVE_OVERHEAD <= 0 or self._save_seconds is None or training_ends(trainer):
            return True
        return unsaved * SAVE_OVERHEAD >= self._save_seconds

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        done = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} done"
        if not self.save_due(trainer):
            log.info(done)
            return
        started = time.perf_counter()
        trainer.save_checkpoint(self.resume.path, weights_only=False)
        self._saved_at = time.perf_counter()
        self._save_seconds = self._saved_at - started
        log.info("%s, state saved for resumption", done)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["resume"] = {
            "key": self.resume.key,
            # Training ends here: resuming must not run another epoch.
            "finished": training_ends(trainer),
        }


def load_resume_state(resume: Resume) -> dict[str, Any] | None:
    """The saved state of this very run, or None (a state of another run is deleted)."""
    if not resume.path.exists():
        return None
    try:
        state = load_checkpoint(resume.path)
    except Exception as err:  # a file this code did not write: start afresh
        log.warning("ignoring unreadable resume state %s: %s", resume.path, err)
        state = None
    if state is None or state.get("resume", {}).get("key") != resume.key:
        log.info("discarding resume state %s of another configuration or input", resume.path)
        resume.path.unlink(missing_ok=True)
        return None
    return state


def discard_resume_state(resume: Resume) -> None:
    """Remove a completed cell's state and its own folder once empty.

    Parent folders stay: other cells running at the same time create theirs
    there, and removing a shared parent could race with them.
    """
    resume.path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        resume.path.parent.rmdir()


def make_trainer(settings: TrainSettings, callbacks: list, checkpoints: bool = False) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=settings.epochs,
        accelerator="auto",
        devices=1,
        logger=False,
        # Lightning refuses a Checkpoint callback unless checkpointing is on.
        enable_checkpointing=checkpoints,
        plugins=[ResumeStateIO()] if checkpoints else None,
        enable_model_summary=False,
        enable_progress_bar=sys.stderr.isatty(),
        num_sanity_val_steps=0,
        deterministic=True,
        precision=effective_precision(settings.precision),
        callbacks=callbacks,
    )
    # `deterministic` also makes every new tensor be filled with NaN before its
    # kernel overwrites it (a guard against kernels that read uninitialised
    # memory): an extra pass over every activation and gradient of every step.
    # Our kernels write all they read, so results are the same without it
    # (tests/unit/test_cell.py runs a cell twice and compares the bytes).
    torch.utils.deterministic.fill_uninitialized_memory = False
    return trainer


def fit(
    model: nn.Module,
    train: Arrays,
    val: Arrays,
    settings: TrainSettings,
    n_classes: int,
    seed: int,
    augment: Augment | None = None,
    resume: Resume | None = None,
) -> CellModule:
    """Train with early stopping on the monitored validation metric; keep the best weights.

    With `resume`, the training state is saved there (see ResumeCheckpoint), and a
    state saved by an earlier, interrupted run with the same key is resumed.
    """
    L.seed_everything(seed, workers=True, verbose=False)
    counts = np.bincount(train.labels.numpy(), minlength=n_classes)
    module = CellModule(model, settings, n_classes, counts, augment, seed)
    callbacks: list = []
    saved = None
    if resume is not None:
        callbacks.append(ResumeCheckpoint(resume))
        saved = load_resume_state(resume)
    trainer = make_trainer(settings, callbacks, checkpoints=resume is not None)
    module.train_data = train
    module.val_data = val
    train_batches = TrainingEpochs(len(train.labels), seed)
    if saved is None:
        trainer.fit(module, train_batches)
    else:
        done = int(saved["spectragrid"]["epochs_done"])
        module.resumed_from = done
        log.info("resuming after epoch %d of %d from %s", done, settings.epochs, resume.path)
        if saved["resume"]["finished"]:
            module.load_state_dict(saved["state_dict"])
            module.on_load_checkpoint(saved)
        else:
            # The data order of epoch e comes from the e-th pass over the batches.
            train_batches.epoch = done
            trainer.fit(
                module,
                train_batches,
                ckpt_path=resume.path,
                weights_only=True,
            )
    if module.best_state is not None:
        module.model.load_state_dict(module.best_state)
    return module


@torch.no_grad()
def predict_proba(model: nn.Module, data: Arrays, batch_size: int = 1024) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(data.labels), batch_size):
        sl = slice(start, start + batch_size)
        logits = model(data.spectra[sl].to(device), data.tabular[sl].to(device))
        out.append(torch.softmax(logits.float(), dim=1).cpu())
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(out).numpy()
