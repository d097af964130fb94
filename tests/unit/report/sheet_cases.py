"""Shared cases of the result sheet's tests: fake test-fold predictions, a training
history, a model card, and a hand-computed three-class error case."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_predictions(classes: list[str], n: int = 120, absent: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    y = rng.integers(0, len(classes), n)
    if absent is not None:
        y[y == absent] = (absent + 1) % len(classes)
    logits = rng.normal(size=(n, len(classes)))
    logits[np.arange(n), y] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    frame = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "full_truth": np.array(["OK0", "VR11", "NC4", "CROCHET0"])[y % 4],
            "label": np.array(classes)[y],
            "label_index": y,
            "pred_index": proba.argmax(axis=1),
            "flagged": np.zeros(n, bool),
        }
    )
    for i, name in enumerate(classes):
        frame[f"prob_{name}"] = proba[:, i]
    return frame


def fake_history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "epoch": range(6),
            "train_loss": [math.nan, 0.9, 0.7, 0.6, 0.5, 0.45],
            "val_loss": [1.0, 0.8, 0.7, 0.65, 0.6, 0.62],
            "val_accuracy": [0.4, 0.6, 0.7, 0.72, 0.75, 0.74],
            "val_balanced_accuracy": [0.35, 0.55, 0.66, 0.7, 0.72, 0.71],
            "val_macro_f1": [0.3, 0.5, 0.6, 0.65, 0.7, 0.69],
            "lr": [1e-3] * 6,
        }
    )


CARD = {
    "parameters": 4482,
    "flops_per_sample": 280160,
    "seconds_per_epoch": 0.12,
    "train_samples_per_second": 762.2,
    "wall_seconds": 0.95,
    "device": "cpu",
    "threads": 1,
}


# Error-table case: classes A, B, C.
#  i  full truth  given  proba               predicted
#  0  A1          A      .20 .70 .10          B
#  1  A1          A      .40 .50 .10          B
#  2  A2          A      .10 .10 .80          C
#  3  B0          B      .60 .30 .10          A
#  4  A1          A      .30 .30 .40          C
#  5  A1          A      .90 .05 .05          A (right)
#  6  C0          C      .50 .20 .30          A
#  7  B0          B      .70 .20 .10          A
#  8  A1          A      .35 .60 .05          B
ERR_CLASSES = ["A", "B", "C"]
ERR_TRUTH = ["A1", "A1", "A2", "B0", "A1", "A1", "C0", "B0", "A1"]
ERR_Y = np.array([0, 0, 0, 1, 0, 0, 2, 1, 0])
ERR_PROBA = np.array(
    [
        [0.20, 0.70, 0.10],
        [0.40, 0.50, 0.10],
        [0.10, 0.10, 0.80],
        [0.60, 0.30, 0.10],
        [0.30, 0.30, 0.40],
        [0.90, 0.05, 0.05],
        [0.50, 0.20, 0.30],
        [0.70, 0.20, 0.10],
        [0.35, 0.60, 0.05],
    ]
)


def err_predictions() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "sample_id": [f"e{i}" for i in range(9)],
            "full_truth": ERR_TRUTH,
            "label_index": ERR_Y,
        }
    )
    for j, name in enumerate(ERR_CLASSES):
        frame[f"prob_{name}"] = ERR_PROBA[:, j]
    return frame
