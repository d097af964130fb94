"""One epoch of optimizer steps: augmentation, mixup, forward pass, loss, update.

Every epoch's random draws (dropout, augmentation, mixup) depend on (seed,
epoch) only, not on what earlier epochs consumed: `seed_epoch` reseeds them
right before the epoch's first step, so a run resumed at an epoch draws
exactly what an uninterrupted run draws there.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from spectragrid.train.augment import Augment
from spectragrid.train.batches import Arrays, batches
from spectragrid.train.losses import LossFn, draw_mixup, mixup


@dataclass(frozen=True)
class EpochLoss:
    mean: float  # the training loss averaged over the epoch's samples
    step_seconds: float  # the optimizer steps alone


class OptimizerSteps:
    """The training side of a fit: its model, loss, optimizer and random draws."""

    def __init__(
        self,
        model: nn.Module,
        loss: LossFn,
        optimizer: torch.optim.Optimizer,
        backward: Callable[[torch.Tensor], None],
        forward_context: contextlib.AbstractContextManager,
        device: torch.device,
        n_classes: int,
        batch_size: int,
        mixup_alpha: float,
        augment: Augment | None,
        seed: int,
    ) -> None:
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.backward = backward
        # One precision context serves every step: building one per step costs
        # as much as a few of a small model's elementwise kernels.
        self.forward_context = forward_context
        self.device = device
        self.n_classes = n_classes
        self.batch_size = batch_size
        self.mixup_alpha = mixup_alpha
        self.augment = augment
        self.seed = seed
        # One generator drives augmentation and mixup, so a seed fixes both.
        self.generator = torch.Generator().manual_seed(seed + 7919)

    def seed_epoch(self, epoch: int) -> None:
        """Seed the draws of `epoch` (0-based) from (seed, epoch) alone."""
        epoch_seed = self.seed * 1_000_003 + epoch
        if self.device.type == "cuda":
            torch.manual_seed(epoch_seed)
        else:
            # torch.manual_seed would also queue a seed for a CUDA that may
            # start later, recording a stack trace each time: 1.3 ms an epoch.
            torch.default_generator.manual_seed(epoch_seed)
        self.generator.manual_seed(epoch_seed + 7919)

    def run_epoch(self, data: Arrays, order: torch.Tensor) -> EpochLoss:
        """One optimizer step per batch of `data`'s rows in `order`."""
        started = time.perf_counter()
        losses: list[torch.Tensor] = []  # each batch's mean loss, not synchronised to the host
        sizes: list[int] = []
        for batch in batches(data, self.batch_size, order):
            spectra, tabular, labels, weights = (
                None if t is None else t.to(self.device, non_blocking=True) for t in batch
            )
            loss = self.batch_loss(spectra, tabular, labels, weights)
            self.optimizer.zero_grad(set_to_none=True)
            self.backward(loss)
            self.optimizer.step()
            # .item() would synchronise every step; the epoch's mean is taken at its end.
            losses.append(loss.detach())
            sizes.append(len(labels))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the steps run asynchronously
        seconds = time.perf_counter() - started
        if not losses:
            return EpochLoss(mean=math.nan, step_seconds=seconds)
        stacked = torch.stack(losses).float().cpu()
        mean = float(stacked @ torch.tensor(sizes, dtype=torch.float32)) / sum(sizes)
        return EpochLoss(mean=mean, step_seconds=seconds)

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
        if self.mixup_alpha > 0:
            state = self.generator.get_state()
            onehot = nn.functional.one_hot(labels, self.n_classes).float()
            spectra, tabular, targets = mixup(
                spectra, tabular, onehot, self.mixup_alpha, self.generator
            )
            # Replaying the draw gives the same λ and partners for the weights.
            after = self.generator.get_state()
            self.generator.set_state(state)
            lam, partner = draw_mixup(len(labels), self.mixup_alpha, self.generator)
            self.generator.set_state(after)
            if weights is not None:
                weights = lam * weights + (1 - lam) * weights[partner.to(weights.device)]
        with self.forward_context:
            logits = self.model(spectra, tabular)
        # float32 even under mixed precision (the loss casts the logits)
        return self.loss(logits, targets, weights)
