"""Lightning training of one cell on tensors held in memory.

Batches are slices of a seeded permutation of in-memory tensors: no
per-sample Python, no DataLoader workers, no collation.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from spectragrid.augment import Augment
from spectragrid.losses import build_loss, draw_mixup, mixup
from spectragrid.metrics import classification_metrics
from spectragrid.schedules import build_optimizer, build_scheduler

# Batch jobs write logs nobody reads line by line: keep Lightning's banners
# and advice out of them, and keep its real warnings.
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*IterableDataset. has .__len__. defined.*")
warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")


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
    precision: str = "32-true"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Arrays:
    spectra: torch.Tensor  # (N, C, L) float32
    tabular: torch.Tensor  # (N, T) float32
    labels: torch.Tensor  # (N,) int64
    weights: torch.Tensor | None = None  # (N,) float32 per-sample loss weights

    def __post_init__(self) -> None:
        if self.weights is None:
            self.weights = torch.ones(len(self.labels), dtype=torch.float32)


class ShuffledBatches(IterableDataset):
    """Whole batches from a fresh seeded permutation each epoch."""

    def __init__(self, data: Arrays, batch_size: int, seed: int, shuffle: bool) -> None:
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.data.labels)
        if self.shuffle and n > 1 and n % self.batch_size == 1:
            return n // self.batch_size  # the lone last sample joins the previous batch
        return math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.data.labels)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=generator)
            self.epoch += 1
        else:
            order = None
        for start in range(0, n, self.batch_size):
            # A last batch of one sample breaks batch norm; it joins the previous one.
            if self.shuffle and n - start == 1 and start > 0:
                break
            if order is None:
                sl = slice(start, start + self.batch_size)
                d = self.data
                yield d.spectra[sl], d.tabular[sl], d.labels[sl], d.weights[sl]
            else:
                stop = start + self.batch_size
                stop = n if self.shuffle and n - stop == 1 else stop
                idx = order[start:stop]
                d = self.data
                yield d.spectra[idx], d.tabular[idx], d.labels[idx], d.weights[idx]


def loader(data: Arrays, batch_size: int, seed: int, shuffle: bool) -> DataLoader:
    return DataLoader(ShuffledBatches(data, batch_size, seed, shuffle), batch_size=None)


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
        self.model = model
        self.settings = settings
        self.n_classes = n_classes
        self.loss = build_loss(settings.as_dict(), class_counts)
        self.augment = augment
        # One generator drives augmentation and mixup, so a seed fixes both.
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.history = History()
        self._val_logits: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []
        self._train_loss_sum = 0.0
        self._train_count = 0
        self._epoch_started = 0.0
        self.epoch_seconds: list[float] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_score = -math.inf
        self.best_epoch = 0
        self.used_device = "cpu"

    def forward(self, spectra: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        return self.model(spectra, tabular)

    def on_train_start(self) -> None:
        self.used_device = str(self.device)

    def on_train_epoch_start(self) -> None:
        self._train_loss_sum = 0.0
        self._train_count = 0
        self._epoch_started = time.perf_counter()

    def training_step(self, batch, _batch_idx):
        spectra, tabular, labels, weights = batch
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
            weights = lam * weights + (1 - lam) * weights[partner.to(weights.device)]
        loss = self.loss(self(spectra, tabular), targets, weights)
        # .item() would synchronise every step; detach and sum lazily instead.
        self._train_loss_sum = self._train_loss_sum + loss.detach() * len(labels)
        self._train_count += len(labels)
        return loss

    def on_train_epoch_end(self) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._epoch_started)

    def validation_step(self, batch, _batch_idx):
        spectra, tabular, labels, _weights = batch
        self._val_logits.append(self(spectra, tabular).float())
        self._val_labels.append(labels)

    def on_validation_epoch_end(self) -> None:
        logits = torch.cat(self._val_logits)
        labels = torch.cat(self._val_labels)
        self._val_logits.clear()
        self._val_labels.clear()
        val_loss = float(nn.functional.cross_entropy(logits, labels))
        proba = torch.softmax(logits, dim=1).cpu().numpy()
        scores = classification_metrics(labels.cpu().numpy(), proba)
        before_training = self.trainer.state.fn == "validate"
        epoch = 0 if before_training else self.current_epoch + 1
        train_loss = (
            float(self._train_loss_sum) / self._train_count
            if self._train_count and not before_training
            else math.nan
        )
        lr = (
            self.trainer.optimizers[0].param_groups[0]["lr"]
            if self.trainer.optimizers
            else math.nan
        )
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_accuracy": scores["accuracy"],
            "val_balanced_accuracy": scores["balanced_accuracy"],
            "val_macro_f1": scores["macro_f1"],
            "lr": lr if not before_training else self.settings.lr,
        }
        self.history.rows.append(row)
        monitored = row[self.settings.monitor]
        if not before_training:
            self.log(self.settings.monitor, monitored, prog_bar=True)
            self.log("val_loss", val_loss)
            if monitored > self.best_score:
                self.best_score = monitored
                self.best_epoch = epoch
                self.best_state = copy.deepcopy(self.model.state_dict())

    def configure_optimizers(self):
        config = self.settings.as_dict()
        optimizer = build_optimizer(self.model.parameters(), config)
        scheduler = build_scheduler(optimizer, config, self.settings.epochs)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


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
    """fp16 autocast is a GPU feature; on a CPU it falls back to float32 (bf16 works on both)."""
    if requested == "16-mixed" and not torch.cuda.is_available():
        return "32-true"
    return requested


def make_trainer(settings: TrainSettings, callbacks: list) -> L.Trainer:
    return L.Trainer(
        max_epochs=settings.epochs,
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=sys.stderr.isatty(),
        num_sanity_val_steps=0,
        deterministic=True,
        precision=effective_precision(settings.precision),
        callbacks=callbacks,
    )


def fit(
    model: nn.Module,
    train: Arrays,
    val: Arrays,
    settings: TrainSettings,
    n_classes: int,
    seed: int,
    augment: Augment | None = None,
) -> CellModule:
    """Train with early stopping on the monitored validation metric; keep the best weights."""
    L.seed_everything(seed, workers=True, verbose=False)
    counts = np.bincount(train.labels.numpy(), minlength=n_classes)
    module = CellModule(model, settings, n_classes, counts, augment, seed)
    early = L.pytorch.callbacks.EarlyStopping(
        monitor=settings.monitor, mode="max", patience=settings.patience
    )
    trainer = make_trainer(settings, [early])
    val_loader = loader(val, 1024, seed, shuffle=False)
    trainer.validate(module, val_loader, verbose=False)
    trainer.fit(module, loader(train, settings.batch_size, seed, shuffle=True), val_loader)
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
