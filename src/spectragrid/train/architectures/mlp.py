"""Multi-layer perceptron on the flattened spectra."""

from __future__ import annotations

from torch import nn

from spectragrid.train.architectures._common import int_list


def build_trunk(n_channels: int, length: int, params: dict) -> tuple[nn.Module, int]:
    """Linear [+ batch norm] + ReLU + dropout per hidden layer; no hidden layer = raw points."""
    hidden = int_list(params, "hidden", allow_empty=True)
    batch_norm = bool(params["batch_norm"])
    dropout = float(params["dropout"])
    layers: list[nn.Module] = [nn.Flatten()]
    features = n_channels * length
    for width in hidden:
        # A bias before batch norm is cancelled by its mean subtraction.
        layers.append(nn.Linear(features, width, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
        features = width
    return nn.Sequential(*layers), features
