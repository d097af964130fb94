"""Classification metrics of one cell's test predictions.

Every metric tolerates a fold where a class is absent: a metric that cannot
be computed is NaN, never an exception, so one unlucky fold cannot sink the
summary.
"""

from __future__ import annotations

import math

import numpy as np

# Written with numpy rather than taken from scikit-learn: every training job
# computes them, and importing sklearn.metrics (with scipy.stats) costs a
# training job of the demo's size more than its training. Equal to
# scikit-learn's f1_score(average="macro", zero_division=0), roc_auc_score and
# log_loss up to float rounding (tests/unit/core/test_metrics.py).

METRIC_NAMES = (
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "auc",
    "log_loss",
    "ece",
    "hter",
)


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Top-label calibration error over uniform confidence bins."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def hter(y: np.ndarray, pred: np.ndarray, positive: int = 0) -> float:
    """Half total error rate (FAR + FRR) / 2 with class `positive` as the accepted class."""
    pos = y == positive
    neg = ~pos
    if not pos.any() or not neg.any():
        return math.nan
    frr = float(np.mean(pred[pos] != positive))
    far = float(np.mean(pred[neg] == positive))
    return (far + frr) / 2


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in `y`."""
    recalls = [np.mean(pred[y == c] == c) for c in np.unique(y)]
    return float(np.mean(recalls)) if recalls else math.nan


def validation_scores(y: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro-F1 of predicted classes, from one confusion matrix.

    The figures training watches after every epoch, equal to those of
    `classification_metrics` (scikit-learn's macro-F1 over all `n_classes`
    labels with zero_division=0; balanced accuracy over the classes present)
    at a small fraction of its cost: it runs once per epoch of every cell.
    """
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    if len(y) == 0:
        return {"accuracy": math.nan, "balanced_accuracy": math.nan, "macro_f1": math.nan}
    confusion = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    present = support > 0
    denominator = support + predicted
    f1 = np.divide(2 * hits, denominator, out=np.zeros(n_classes), where=denominator > 0)
    return {
        "accuracy": float(hits.sum() / len(y)),
        "balanced_accuracy": float(np.mean(hits[present] / support[present])),
        "macro_f1": float(f1.mean()),
    }


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of `score` for the boolean `positive`: the chance that a
    positive scores above a negative, ties counting half (Mann-Whitney U over n+ n-)."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both a positive and a negative sample")
    order = np.argsort(score, kind="mergesort")
    ranked = np.asarray(score)[order]
    # average ranks (1-based) over runs of tied scores
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.r_[starts[1:], len(ranked)]
    ranks = np.empty(len(ranked), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true class (rows of `proba` sum to 1)."""
    return float(np.mean(-np.log(proba[np.arange(len(y)), y])))


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Metrics of integer labels `y` (N,) against probabilities `proba` (N, C)."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    if len(y) == 0:
        return {name: math.nan for name in METRIC_NAMES}
    pred = proba.argmax(axis=1)
    out: dict[str, float] = {
        "accuracy": float(np.mean(pred == y)),
        "balanced_accuracy": balanced_accuracy(y, pred),
        "macro_f1": validation_scores(y, pred, n_classes)["macro_f1"],
    }
    present = np.unique(y)
    try:
        if n_classes == 2:
            out["auc"] = binary_auc(y == 0, proba[:, 0]) if len(present) == 2 else math.nan
        else:
            # macro one-vs-rest over the classes present in this fold
            aucs = [binary_auc(y == c, proba[:, c]) for c in present if 0 < np.sum(y == c) < len(y)]
            out["auc"] = float(np.mean(aucs)) if aucs else math.nan
    except ValueError:
        out["auc"] = math.nan
    clipped = np.clip(proba, 1e-7, 1.0)
    out["log_loss"] = log_loss(y, clipped / clipped.sum(axis=1, keepdims=True))
    out["ece"] = expected_calibration_error(y, proba)
    out["hter"] = hter(y, pred) if n_classes == 2 else math.nan
    return out


def per_class_accuracy(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, dict]:
    """Per class (by given label): sample count and the fraction predicted as that class."""
    pred = np.asarray(proba).argmax(axis=1) if len(proba) else np.zeros(0, dtype=np.int64)
    out = {}
    for i, name in enumerate(classes):
        mask = np.asarray(y) == i
        n = int(mask.sum())
        out[name] = {"n": n, "accuracy": float(np.mean(pred[mask] == i)) if n else math.nan}
    return out
