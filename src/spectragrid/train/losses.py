"""Training loss (label smoothing, class weights, focal term) and mixup.

One formula covers every combination, for class-index targets (B,) and soft
targets (B, C) alike:

    q = (1 - eps) * t + eps / C            t: one-hot or soft target, rows sum to 1
    loss = mean over the batch of  -sum_c w_c * q_c * (1 - p_c) ** gamma * log p_c

With eps > 0 the true class of a one-hot target gets 1 - eps + eps / C and
every other class eps / C, which is what `nn.CrossEntropyLoss(label_smoothing=eps)`
does. With gamma = 0 and no weights this is plain cross-entropy. With a hard
target and eps = 0 it is the usual focal loss w_y (1 - p_y) ** gamma * CE.

The batch mean divides by B, never by the sum of the weights (which is what
`nn.CrossEntropyLoss(weight=...)` does for index targets only): an index
target and its one-hot row then give the same loss, so plain and mixup
batches are on one scale, and "balanced" weights, whose mean over the
training rows is 1, keep the loss scale of the unweighted loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
import torch
from torch import nn

from spectragrid.train.settings import TrainSettings

CLASS_WEIGHT_MODES: tuple[str, ...] = ("none", "balanced")

# (1 - p) ** gamma has an infinite derivative at p = 1 when gamma < 1; the
# floor keeps gradients finite and changes no loss value that matters.
_FOCAL_FLOOR = 1e-12


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"train.{key}: expected a number, got {value!r}")
    return float(value)


def class_weights(spec: Any, class_counts: np.ndarray | Sequence[int]) -> np.ndarray | None:
    """Per-class weights from `none`, `balanced` or a list of C numbers.

    `balanced` is scikit-learn's rule, w_c = N / (K * n_c), so that
    sum_c w_c * n_c = N. A class absent from the training rows cannot get an
    inverse frequency: it gets weight 1 (it only appears through smoothing or
    mixup mass) and K counts the present classes, so the sum still equals N.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any():
        raise ValueError(f"class_counts: expected C non-negative counts, got {class_counts!r}")
    if isinstance(spec, str):
        if spec == "none":
            return None
        if spec != "balanced":
            raise ValueError(
                f"train.class_weights: unknown value {spec!r}; allowed: "
                f"{', '.join(CLASS_WEIGHT_MODES)} or a list of {counts.size} numbers"
            )
        present = counts > 0
        if not present.any():
            raise ValueError("train.class_weights: balanced weights need at least one sample")
        weights = np.ones_like(counts)
        weights[present] = counts.sum() / (present.sum() * counts[present])
        return weights
    if not isinstance(spec, Sequence | np.ndarray) or len(spec) != counts.size:
        raise ValueError(
            f"train.class_weights: expected {', '.join(CLASS_WEIGHT_MODES)} or a list of "
            f"{counts.size} numbers (one per class), got {spec!r}"
        )
    weights = np.array([_number("class_weights", w) for w in spec], dtype=np.float64)
    if not (np.isfinite(weights).all() and (weights >= 0).all()):
        raise ValueError(f"train.class_weights: weights must be finite and >= 0, got {spec!r}")
    return weights


class LossFn(nn.Module):
    """Smoothed, optionally class-weighted and focal cross-entropy (see the module doc)."""

    weight: torch.Tensor | None

    def __init__(
        self,
        n_classes: int,
        eps: float,
        weight: np.ndarray | None,
        focal_gamma: float,
    ) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"train.eps: must be in [0, 1), got {eps!r}")
        if not focal_gamma >= 0.0:
            raise ValueError(f"train.focal_gamma: must be >= 0, got {focal_gamma!r}")
        if weight is not None and len(weight) != n_classes:
            raise ValueError(f"class weights: expected {n_classes} values, got {len(weight)}")
        self.n_classes = n_classes
        self.eps = float(eps)
        self.focal_gamma = float(focal_gamma)
        # A buffer follows the module to the training device and into checkpoints.
        self.register_buffer(
            "weight",
            None if weight is None else torch.as_tensor(weight, dtype=torch.float32),
        )

    def extra_repr(self) -> str:
        weights = None if self.weight is None else [round(w, 4) for w in self.weight.tolist()]
        return (
            f"n_classes={self.n_classes}, eps={self.eps}, "
            f"focal_gamma={self.focal_gamma}, weight={weights}"
        )

    def target_distribution(self, targets: torch.Tensor, batch: int) -> torch.Tensor:
        """Smoothed (B, C) float32 targets from class indices or soft targets."""
        if targets.dim() == 1 and not targets.is_floating_point():
            if targets.shape[0] != batch:
                raise ValueError(f"targets: expected {batch} class indices, got {targets.shape[0]}")
            dist = nn.functional.one_hot(targets, self.n_classes).float()
        elif targets.dim() == 2 and targets.shape == (batch, self.n_classes):
            dist = targets.float()
        else:
            raise ValueError(
                f"targets: expected class indices ({batch},) or soft targets "
                f"({batch}, {self.n_classes}), got {targets.dtype} {tuple(targets.shape)}"
            )
        if self.eps > 0:
            dist = dist * (1.0 - self.eps) + self.eps / self.n_classes
        return dist

    def forward(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if logits.dim() != 2 or logits.shape[1] != self.n_classes:
            raise ValueError(f"logits: expected (B, {self.n_classes}), got {tuple(logits.shape)}")
        # float32 even under mixed precision: log-probabilities of rare classes
        # underflow in half precision.
        if self.focal_gamma == 0 and targets.dim() == 1 and not targets.is_floating_point():
            if self.weight is None and sample_weight is None:
                # One fused kernel, the batch mean included (with class weights
                # it would divide by their sum, not by B).
                return nn.functional.cross_entropy(
                    logits.float(), targets, label_smoothing=self.eps
                )
            # The fused kernel computes the same -sum_c w_c q_c log p_c per sample, faster.
            per_sample = nn.functional.cross_entropy(
                logits.float(),
                targets,
                weight=self.weight,
                label_smoothing=self.eps,
                reduction="none",
            )
            if sample_weight is not None:
                per_sample = per_sample * sample_weight
            return per_sample.mean()
        log_p = torch.log_softmax(logits.float(), dim=1)
        terms = -self.target_distribution(targets, logits.shape[0]) * log_p
        if self.focal_gamma > 0:
            one_minus_p = (-torch.expm1(log_p)).clamp_min(_FOCAL_FLOOR)
            terms = terms * one_minus_p.pow(self.focal_gamma)
        if self.weight is not None:
            terms = terms * self.weight
        per_sample = terms.sum(dim=1)
        if sample_weight is not None:
            # Down-weighted samples count less; the batch mean keeps the loss scale.
            per_sample = per_sample * sample_weight
        return per_sample.mean()


def build_loss(settings: TrainSettings, class_counts: np.ndarray) -> LossFn:
    """The training loss of a cell's settings (`eps`, `class_weights`, `focal_gamma`).

    `class_counts` (C,) counts the training rows of each class, in class order;
    C is taken from its length.
    """
    eps = _number("eps", settings.eps)
    gamma = _number("focal_gamma", settings.focal_gamma)
    counts = np.asarray(class_counts)
    weights = class_weights(settings.class_weights, counts)
    return LossFn(len(counts), eps=eps, weight=weights, focal_gamma=gamma)


def draw_mixup(
    batch_size: int, alpha: float, generator: torch.Generator
) -> tuple[float, torch.Tensor]:
    """λ ~ Beta(alpha, alpha) and the partner permutation, both from `generator`.

    No torch sampler of Beta or Gamma accepts a generator, so λ comes from a
    numpy Generator seeded by one integer drawn from the torch generator: the
    same torch generator state always gives the same λ and permutation.
    """
    if not alpha > 0:
        raise ValueError(f"mixup alpha must be > 0 to draw, got {alpha!r}")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    partner = torch.randperm(batch_size, generator=generator, device=generator.device)
    return lam, partner


def mixup(
    spectra: torch.Tensor,
    tabular: torch.Tensor,
    targets_onehot: torch.Tensor,
    alpha: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Convex combinations λ x_i + (1 - λ) x_j of a batch with a permutation of itself.

    One λ per batch (see `draw_mixup`, which this calls first: cloning the
    generator state beforehand recovers λ and j). Spectra, tabular values and
    the (B, C) targets are mixed with the same λ, so soft targets still sum
    to 1. Label smoothing is applied afterwards, by the loss. alpha = 0
    returns the inputs unchanged and draws nothing.
    """
    alpha = _number("mixup_alpha", alpha)
    if alpha < 0:
        raise ValueError(f"train.mixup_alpha: must be >= 0, got {alpha!r}")
    if targets_onehot.dim() != 2 or targets_onehot.shape[0] != spectra.shape[0]:
        raise ValueError(
            f"mixup: targets must be (B, C) one-hot or soft rows with B = {spectra.shape[0]}, "
            f"got {tuple(targets_onehot.shape)}"
        )
    if alpha == 0:
        return spectra, tabular, targets_onehot
    lam, partner = draw_mixup(spectra.shape[0], alpha, generator)
    partner = partner.to(spectra.device)

    def mix(x: torch.Tensor) -> torch.Tensor:
        return lam * x + (1.0 - lam) * x[partner]

    targets = targets_onehot if targets_onehot.is_floating_point() else targets_onehot.float()
    return mix(spectra), mix(tabular), mix(targets)
