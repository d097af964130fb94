"""Optimizer and learning-rate schedule from a cell's train settings.

`build_scheduler` returns the torch scheduler (or None); the training loop
saves and restores its state with the rest of the resumable state, and steps
every schedule once per epoch, after validation; ReduceLROnPlateau is given
PLATEAU_MONITOR's value. The plateau and step settings carry a prefix
because `train.patience` is already the early-stopping patience.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau, StepLR

from spectragrid.train.settings import TrainSettings

OPTIMIZERS: tuple[str, ...] = ("adam", "adamw")
SCHEDULERS: tuple[str, ...] = ("none", "step", "plateau", "three_plateau")

PLATEAU_MONITOR = "val_loss"
"""The metric ReduceLROnPlateau watches: the training loop records it every epoch."""


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"train.{key}: unknown value {value!r}; allowed: {', '.join(allowed)}")
    return value


def _positive(key: str, value: Any, *, integer: bool = False) -> Any:
    kind = Integral if integer else Real
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        noun = "an integer" if integer else "a number"
        raise ValueError(f"train.{key}: expected {noun} > 0, got {value!r}")
    return int(value) if integer else float(value)


def build_optimizer(
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], settings: TrainSettings
) -> torch.optim.Optimizer:
    """Adam (L2 penalty added to the gradient) or AdamW (decoupled weight decay)."""
    name = _choice("optimizer", settings.optimizer, OPTIMIZERS)
    lr = _positive("lr", settings.lr)
    weight_decay = settings.weight_decay
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, Real) or weight_decay < 0:
        raise ValueError(f"train.weight_decay: expected a number >= 0, got {weight_decay!r}")
    optimizer_class = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    params = list(params)
    # The fused kernel updates every parameter in one pass instead of a dozen
    # small operations per tensor; it needs floating tensors on CPU or CUDA.
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    fused = all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors)
    return optimizer_class(params, lr=lr, weight_decay=float(weight_decay), fused=fused or None)


class ThreePlateau:
    """LR factor 1, 0.1, 0.01 over the first 50 %, next 25 % and last 25 % of the epochs.

    Epoch e (0-based) of n belongs to the phase in which its start falls:
    factor 1 while 2e < n, 0.1 while 4e < 3n, 0.01 afterwards. Exact integer
    arithmetic; a phase boundary that is not a whole epoch rounds up, so the
    earlier phase gets the extra epoch: 100 -> 50/25/25, 10 -> 5/3/2,
    6 -> 3/2/1, 1 -> 1/0/0. Epochs past n stay at 0.01.

    A class rather than a lambda so that LambdaLR can save it in a checkpoint.
    """

    def __init__(self, max_epochs: int) -> None:
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, Integral) or max_epochs < 1:
            raise ValueError(f"max_epochs: expected an integer >= 1, got {max_epochs!r}")
        self.max_epochs = int(max_epochs)

    def __call__(self, epoch: int) -> float:
        if 2 * epoch < self.max_epochs:
            return 1.0
        if 4 * epoch < 3 * self.max_epochs:
            return 0.1
        return 0.01


def build_scheduler(
    optimizer: torch.optim.Optimizer, settings: TrainSettings
) -> LRScheduler | ReduceLROnPlateau | None:
    """The scheduler for `train.scheduler` over `train.epochs`, stepped once per
    epoch, or None for `none`."""
    name = _choice("scheduler", settings.scheduler, SCHEDULERS)
    if name == "none":
        return None
    if name == "step":
        return StepLR(
            optimizer,
            step_size=_positive("step_size", settings.step_size, integer=True),
            gamma=_positive("step_gamma", settings.step_gamma),
        )
    if name == "plateau":
        factor = _positive("plateau_factor", settings.plateau_factor)
        if factor >= 1:
            raise ValueError(f"train.plateau_factor: must be < 1, got {factor!r}")
        patience = settings.plateau_patience
        if isinstance(patience, bool) or not isinstance(patience, Integral) or patience < 0:
            raise ValueError(f"train.plateau_patience: expected an integer >= 0, got {patience!r}")
        return ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=int(patience))
    return LambdaLR(optimizer, lr_lambda=ThreePlateau(settings.epochs))
