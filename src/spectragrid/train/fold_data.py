"""The rows of one cell, as the cell prepared them: what a model family fits on.

`spectragrid.train.cell` reads the clean file, the folds and, for a clean
cell, the label issues, and hands a classical family this bundle; the
network path uses the same arrays. Keeping it plain numpy (and pandas for the
ids) lets the classical families run without the network code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from spectragrid.data.targets import Target
from spectragrid.train.label_action import CleanedLabels, IssuesSource


@dataclass(frozen=True)
class FoldData:
    """One cell's data: every row of the clean file, and which rows play which part."""

    table: pd.DataFrame  # sample_id and full_truth of every row
    target: Target
    y_all: np.ndarray  # class index per row, -1 outside the target
    cleaned: CleanedLabels  # the labels, kept rows and weights training uses
    train_rows: np.ndarray
    val_rows: np.ndarray
    test_rows: np.ndarray
    spectra: np.ndarray  # float32 (N, C, L), raw units
    tabular: np.ndarray  # float32 (N, T)
    wavelengths: np.ndarray  # nm, one per point of the channels' common axis
    channel_wavelengths: list[list[float]]  # each channel's own axis (ONNX metadata)
    issues: IssuesSource | None  # the label issues a clean cell acted on; None for raw

    @property
    def in_target(self) -> np.ndarray:
        return self.y_all >= 0
