"""One-vs-all ROC and precision-recall curves, their areas and average precision.

Written with numpy rather than taken from scikit-learn for the same reason as
`core.metrics`: every sheet job draws them, and importing sklearn.metrics cost
a sheet job more than a second of its start. They follow scikit-learn's
definitions step for step (its `roc_curve` with `drop_intermediate=True`, its
`precision_recall_curve`, `average_precision_score` and `auc`; the ROC area of
a score is `core.metrics.binary_auc`), and
tests/unit/core/test_roc_pr_curves.py checks them against it on tied and untied scores.
Every function takes a boolean `positive` holding both classes.
"""

from __future__ import annotations

import numpy as np


def threshold_counts(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positives when accepting every score >= each distinct score, highest
    threshold first."""
    order = np.argsort(score, kind="mergesort")[::-1]
    score = np.asarray(score)[order]
    hits = np.asarray(positive, dtype=np.float64)[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(hits, dtype=np.float64)[last_of_each]
    fps = 1 + last_of_each.astype(np.float64) - tps
    return fps, tps


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates from (0, 0), without the points in between and
    collinear with their neighbours (they change neither the plot nor the area)."""
    fps, tps = threshold_counts(positive, score)
    if len(fps) > 2:
        corner = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps = fps[corner], tps[corner]
    fps = np.r_[0.0, fps]
    tps = np.r_[0.0, tps]
    return fps / fps[-1], tps / tps[-1]


def precision_recall_curve(
    positive: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall, recall decreasing, ending at (precision 1, recall 0)."""
    fps, tps = threshold_counts(positive, score)
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]


def average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """The precision-recall step function's integral (no interpolation)."""
    precision, recall = precision_recall_curve(positive, score)
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def area(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoidal area under y(x), x monotonic in either direction."""
    dx = np.diff(x)
    direction = 1.0
    if np.any(dx < 0):
        if not np.all(dx <= 0):
            raise ValueError("x is neither increasing nor decreasing")
        direction = -1.0
    return float(direction * np.trapezoid(y, x))
