"""1-D VGG: stacks of kernel-3 convolutions with a max-pool after each stage."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from spectragrid.train.architectures._common import (
    ModelError,
    positive_float,
    require_length,
    trunk_features,
)
from spectragrid.train.architectures.planar import (
    PlanarBatchNorm1d,
    PlanarConv1d,
    PlanarMaxPool1d,
    PlanarSequential,
)

# Convolutions per stage of the VGG configurations "A" (11 layers) and "D" (16 layers).
CONFIGS: dict[str, tuple[int, ...]] = {"vgg11": (1, 1, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3)}
STAGE_WIDTHS = (64, 128, 256, 512, 512)


class AveragePoolTo(nn.Module):
    """Adaptive average pooling to a fixed length, as a constant (L_in, L_out) matrix.

    nn.AdaptiveAvgPool1d does not export to ONNX when L_out does not divide
    L_in; the input length is fixed when the model is built, so the same
    windows (PyTorch's floor/ceil rule) fit in one MatMul that exports and
    matches exactly.
    """

    def __init__(self, length_in: int, length_out: int) -> None:
        super().__init__()
        matrix = torch.zeros(length_in, length_out)
        for i in range(length_out):
            start = (i * length_in) // length_out
            end = -(-((i + 1) * length_in) // length_out)
            matrix[start:end, i] = 1.0 / (end - start)
        # Derived from the build-time length, so it stays out of checkpoints.
        self.register_buffer("matrix", matrix, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.matrix


def trunk_builder(name: str) -> Callable[[int, int, dict], tuple[nn.Module, int]]:
    convs_per_stage = CONFIGS[name]

    def build_trunk(n_channels: int, length: int, params: dict) -> tuple[nn.Module, int]:
        width = positive_float(params, "width")
        batch_norm = bool(params["batch_norm"])
        pooled_length = int(params["pooled_length"])
        if pooled_length < 0:
            raise ModelError(
                f"parameter 'pooled_length' must be >= 0 (0 = flatten), got {pooled_length}"
            )
        n_stages = len(convs_per_stage)
        require_length(length, 2**n_stages, f"{n_stages} max-pools of 2")
        layers: list[nn.Module] = []
        c_in = n_channels
        for n_convs, base in zip(convs_per_stage, STAGE_WIDTHS, strict=True):
            c_out = max(1, round(base * width))
            for index in range(n_convs):
                # A bias before batch norm is cancelled by its mean subtraction.
                layers.append(PlanarConv1d(c_in, c_out, 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(PlanarBatchNorm1d(c_out))
                if index == n_convs - 1:
                    # Pool, then ReLU: the same values and gradients as the
                    # other order, on half as many points.
                    layers.append(PlanarMaxPool1d(2))
                layers.append(nn.ReLU(inplace=True))
                c_in = c_out
        if pooled_length:
            layers.append(AveragePoolTo(length // 2**n_stages, pooled_length))
        trunk = PlanarSequential(*layers)
        return trunk, trunk_features(trunk, n_channels, length)

    return build_trunk
