"""The `models.<name>.train` settings of a cell, typed, built once from a complete dict."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class SettingsError(ValueError):
    """A train mapping that is not the complete set of settings."""


@dataclass(frozen=True)
class TrainSettings:
    """Every `models.<name>.train` key (config/README.md documents them).

    No defaults here: they live in the config schema (`$defs/train`), which
    fills them in for the workflow (`spectragrid.core.config.validate`) and for
    code outside a study (`spectragrid.core.config.complete_model`).
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    optimizer: str
    scheduler: str
    step_size: int
    step_gamma: float
    plateau_patience: int
    plateau_factor: float
    eps: float  # label smoothing
    class_weights: str | tuple[float, ...]
    focal_gamma: float
    mixup_alpha: float
    patience: int
    monitor: str
    precision: str
    freeze: str  # "none" or "backbone" (spectragrid.train.phases)
    unfreeze: tuple[str, ...] | int  # blocks opened in phase 2: names, or the last N
    unfreeze_after: int  # epochs of phase 1
    unfreeze_lr: float | None  # lr of the opened blocks; None: `lr`

    @classmethod
    def from_config(cls, train: Mapping[str, Any]) -> TrainSettings:
        """The settings of a complete `train` mapping; a missing or unknown key is an error."""
        names = [field.name for field in dataclasses.fields(cls)]
        missing = [name for name in names if name not in train]
        unknown = [key for key in train if key not in names]
        if missing or unknown:
            problems = [f"missing {missing}"] if missing else []
            problems += [f"unknown {unknown}"] if unknown else []
            raise SettingsError(
                f"train settings: {'; '.join(problems)}; pass the complete mapping "
                "(spectragrid.core.config.complete_model fills in the schema's defaults)"
            )
        values = dict(train)
        weights = values["class_weights"]
        if not isinstance(weights, str):
            values["class_weights"] = tuple(float(w) for w in weights)
        if not isinstance(values["unfreeze"], int):
            values["unfreeze"] = tuple(str(name) for name in values["unfreeze"])
        return cls(**values)
