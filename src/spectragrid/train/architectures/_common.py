"""Helpers shared by the trunk families."""

from __future__ import annotations

import torch
from torch import nn


class ModelError(ValueError):
    """A model that cannot be built from its parameters and the data's shape."""


def trunk_features(trunk: nn.Module, n_channels: int, length: int) -> int:
    """Size of the flattened trunk output, from a dry forward on one zero sample."""
    was_training = trunk.training
    # Eval mode: batch-norm statistics must not move, and a batch of one with a
    # single remaining position would make training-mode batch norm fail.
    trunk.eval()
    with torch.no_grad():
        features = int(trunk(torch.zeros(1, n_channels, length)).numel())
    trunk.train(was_training)
    return features


def require_length(length: int, minimum: int, why: str) -> None:
    if length < minimum:
        raise ModelError(f"spectra of length {length} are too short: {why} needs >= {minimum}")


def positive_int(params: dict, key: str, minimum: int = 1) -> int:
    value = params[key]
    if value < minimum:
        raise ModelError(f"parameter {key!r} must be >= {minimum}, got {value!r}")
    return int(value)


def positive_float(params: dict, key: str) -> float:
    value = params[key]
    if not value > 0:
        raise ModelError(f"parameter {key!r} must be > 0, got {value!r}")
    return float(value)


def int_list(params: dict, key: str, allow_empty: bool = False) -> list[int]:
    values = list(params[key])
    if (not values and not allow_empty) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ModelError(f"parameter {key!r} must be a list of positive integers, got {values!r}")
    return values


def group_count(channels: int, max_groups: int = 32) -> int:
    """Largest number of GroupNorm groups <= `max_groups` that divides `channels`."""
    return max(g for g in range(1, min(max_groups, channels) + 1) if channels % g == 0)
