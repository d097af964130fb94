"""LeNet-style 1-D CNN."""

from __future__ import annotations

from torch import nn

from spectragrid.train.architectures._common import (
    int_list,
    positive_int,
    require_length,
    trunk_features,
)
from spectragrid.train.architectures.planar import PlanarConv1d, PlanarMaxPool1d, PlanarSequential


def build_trunk(n_channels: int, length: int, params: dict) -> tuple[nn.Module, int]:
    """Conv + max-pool + ReLU stages, flattened.

    Fixed pooling (not adaptive) keeps every operator exportable to ONNX and
    keeps band positions, which carry the chemistry. Pooling before the ReLU
    computes exactly what ReLU then pooling does (max commutes with a
    non-decreasing function, and the gradient reaches the same element), on a
    `pool` times smaller tensor.
    """
    widths = int_list(params, "widths")
    kernel = positive_int(params, "kernel")
    pool = positive_int(params, "pool")
    require_length(length, pool ** len(widths), f"{len(widths)} max-pools of {pool}")
    layers: list[nn.Module] = []
    c_in = n_channels
    for width in widths:
        layers += [
            PlanarConv1d(c_in, width, kernel, padding=kernel // 2),
            PlanarMaxPool1d(pool),
            nn.ReLU(inplace=True),
        ]
        c_in = width
    trunk = PlanarSequential(*layers)
    return trunk, trunk_features(trunk, n_channels, length)
