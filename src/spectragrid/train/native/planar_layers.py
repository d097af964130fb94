"""A planar trunk's layers, with the C kernels wherever they apply."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

import spectragrid.train.native.first_stage as first_stage
import spectragrid.train.native.paths as paths
import spectragrid.train.native.pool_relu as pool_relu


def planar_view(x: torch.Tensor) -> torch.Tensor:
    """(B, C, L) -> (B, C, 1, L), channel axis innermost in memory."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def run_planar(layers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """`layers` applied to the planar view of `x` (B, C, L); returns the planar output.

    A first conv -> max-pool -> ReLU stage of the kernel's form runs as the C
    kernel where it applies and otherwise as float32 layers (the same
    numbers); each later max-pool -> ReLU pair runs as its C kernel where it
    applies (exactly torch's numbers). Training calls note the path they took.
    """
    layers = list(layers)
    training = bool(layers) and layers[0].training and torch.is_grad_enabled()
    i = 0
    if first_stage.fusable(layers):
        if first_stage.applies(layers[0], x):
            h = first_stage.first_stage(layers[0], layers[1], x)
            taken = paths.KERNEL
        else:
            h = first_stage.float32_stage(layers[:3], planar_view(x))
            taken = paths.LAYERS
        if training:
            paths.note("first_stage", taken)
        i = 3
    else:
        h = planar_view(x)
    while i < len(layers):
        if not pool_relu.fusable(layers, i):
            h = layers[i](h)
            i += 1
            continue
        if pool_relu.applies(layers[i], h):
            h = pool_relu.pool_relu(layers[i], h)
            taken = paths.KERNEL
        else:
            h = layers[i + 1](layers[i](h))
            taken = paths.LAYERS
        if training:
            paths.note("pool_relu", taken)
        i += 2
    return h
