"""Model registry: every network takes spectra (B, C, L) and tabular (B, T).

Preprocessing (min-max scaling fitted on the training rows) lives inside the
network as buffers, so the checkpoint and the ONNX export carry it and a
serving machine cannot scale differently from training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class ModelError(ValueError):
    """A model name or hyper-parameter the registry cannot build."""


class MinMaxScale(nn.Module):
    """Per-feature affine map of the training range onto [-1, 1]."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("low", torch.zeros(shape))
        self.register_buffer("inv_span", torch.ones(shape))

    def fit(self, x: np.ndarray) -> None:
        low = x.min(axis=0)
        span = x.max(axis=0) - low
        # A constant feature (e.g. zero padding) maps to -1 instead of dividing by zero.
        inv = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 0.0)
        self.low.copy_(torch.from_numpy(low.astype(np.float32)))
        self.inv_span.copy_(torch.from_numpy(inv.astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.low) * self.inv_span * 2.0 - 1.0


class SpectraClassifier(nn.Module):
    """Scaling, a spectral trunk, and a head that fuses the tabular vector."""

    def __init__(
        self,
        trunk: nn.Module,
        trunk_features: int,
        n_channels: int,
        length: int,
        n_tabular: int,
        n_classes: int,
        head_hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.spectra_scale = MinMaxScale((n_channels, length))
        self.tabular_scale = MinMaxScale((n_tabular,))
        self.n_tabular = n_tabular
        self.trunk = trunk
        self.head = nn.Sequential(
            nn.Linear(trunk_features + n_tabular, head_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, n_classes),
        )

    def fit_scaling(self, spectra: np.ndarray, tabular: np.ndarray) -> None:
        self.spectra_scale.fit(spectra)
        if self.n_tabular:
            self.tabular_scale.fit(tabular)

    def forward(self, spectra: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        features = self.trunk(self.spectra_scale(spectra)).flatten(1)
        if self.n_tabular:
            features = torch.cat([features, self.tabular_scale(tabular)], dim=1)
        return self.head(features)


def _trunk_features(trunk: nn.Module, n_channels: int, length: int) -> int:
    with torch.no_grad():
        return int(trunk(torch.zeros(1, n_channels, length)).numel())


def _cnn(n_channels: int, length: int, params: dict) -> tuple[nn.Module, int]:
    """LeNet-style 1-D CNN: conv + ReLU + max-pool stages, flattened.

    Fixed pooling (not adaptive) keeps every operator exportable to ONNX and
    keeps band positions, which carry the chemistry.
    """
    widths = params.get("widths", [16, 32, 64])
    kernel = int(params.get("kernel", 7))
    pool = int(params.get("pool", 4))
    layers: list[nn.Module] = []
    c_in = n_channels
    for width in widths:
        layers += [
            nn.Conv1d(c_in, width, kernel, padding=kernel // 2),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(pool),
        ]
        c_in = width
    trunk = nn.Sequential(*layers)
    return trunk, _trunk_features(trunk, n_channels, length)


@dataclass(frozen=True)
class Architecture:
    build_trunk: Callable[[int, int, dict], tuple[nn.Module, int]]
    summary: str


REGISTRY: dict[str, Architecture] = {
    "cnn": Architecture(
        _cnn, "LeNet-style 1-D CNN (3 conv stages; 43k parameters on the demo, 3 channels)"
    ),
}


def build_model(
    arch: str,
    params: dict,
    n_channels: int,
    length: int,
    n_tabular: int,
    n_classes: int,
) -> SpectraClassifier:
    if arch not in REGISTRY:
        raise ModelError(f"unknown architecture {arch!r}; known: {', '.join(sorted(REGISTRY))}")
    trunk, features = REGISTRY[arch].build_trunk(n_channels, length, params)
    return SpectraClassifier(
        trunk,
        features,
        n_channels,
        length,
        n_tabular,
        n_classes,
        head_hidden=int(params.get("head_hidden", 64)),
        dropout=float(params.get("dropout", 0.1)),
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_sample(model: SpectraClassifier, n_channels: int, length: int) -> int:
    """Multiply-adds x 2 of convolutions and linear layers for one sample."""
    total = 0

    def conv_hook(module: nn.Conv1d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        per_out = module.in_channels // module.groups * module.kernel_size[0]
        total += 2 * per_out * out.shape[1] * out.shape[2]

    def linear_hook(module: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * module.in_features * module.out_features

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv1d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, n_channels, length), torch.zeros(1, model.n_tabular))
    model.train(was_training)
    for hook in hooks:
        hook.remove()
    return total
