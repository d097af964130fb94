"""Every number of the result sheet users read for every trained model, on its test fold
(docs/lab_facts.md, "The result sheet").

`sheet_data` computes every number once; the PNG (`sheet_png`) and the HTML
(`sheet_html`) both render from it, so the two can never disagree. Definitions
the sheet states (and the tests check):

- confusion matrix: rows = given class, columns = predicted class (argmax);
  recall margin per row, precision margin per column, overall accuracy.
- cutoffs: see `spectragrid.report.cutoffs` (rule from `report.cutoff`). After cutoffs a
  sample abstains when its predicted class's score is below that class's cutoff;
  the confusion after cutoffs leaves abstentions out and reports their rate.
- error contributions: misclassified samples grouped by (given full truth,
  predicted class): count, share of the errors, mean and sd (n − 1) of p(given
  class) and of p(predicted class) over the group's own samples; before cutoffs,
  and after (abstentions removed, shares of the remaining errors).
- business cost: see `spectragrid.report.business_cost` (binary targets only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spectragrid.core import curves
from spectragrid.core.metrics import binary_auc
from spectragrid.report.business_cost import CostCurve, CostTable, cost_curve
from spectragrid.report.cutoffs import ClassCutoff, CutoffRule, abstentions, class_cutoffs

TOP_ERRORS = 10
ERROR_COLUMNS: tuple[str, ...] = (
    "full_truth",
    "predicted",
    "count",
    "share",
    "p_true_mean",
    "p_true_sd",
    "p_pred_mean",
    "p_pred_sd",
)


@dataclass(frozen=True)
class Confusion:
    counts: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    accuracy: float


def confusion_with_margins(
    y: np.ndarray, pred: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Counts (rows = true class, columns = predicted), recall per row, precision per column
    and overall accuracy. A row or column without samples has a NaN margin."""
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    if y.shape != pred.shape:
        raise ValueError(f"y has shape {y.shape} but pred has shape {pred.shape}")
    outside = (y < 0) | (y >= n_classes) | (pred < 0) | (pred >= n_classes)
    if outside.any():
        raise ValueError(f"class indices must lie in [0, {n_classes}); got {np.unique(y[outside])}")
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (y, pred), 1)
    diagonal = np.diag(counts).astype(float)
    rows = counts.sum(axis=1)
    cols = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(rows > 0, diagonal / rows, np.nan)
        precision = np.where(cols > 0, diagonal / cols, np.nan)
    total = int(counts.sum())
    accuracy = float(diagonal.sum() / total) if total else math.nan
    return counts, recall, precision, accuracy


def error_contributions(
    full_truth: Sequence[str] | np.ndarray,
    y: np.ndarray,
    proba: np.ndarray,
    classes: Sequence[str],
    keep: np.ndarray | None = None,
) -> pd.DataFrame:
    """Misclassified samples (among `keep`) grouped by (given full truth, predicted class).

    Columns `ERROR_COLUMNS`; largest count first, then full truth and predicted class in
    order. Every statistic is aggregated within its own group, so a row's numbers belong
    to that row's samples.
    """
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    truth = np.asarray([str(v) for v in full_truth], dtype=object)
    pred = proba.argmax(axis=1)
    wrong = pred != y
    if keep is not None:
        wrong &= np.asarray(keep, dtype=bool)
    idx = np.flatnonzero(wrong)
    frame = pd.DataFrame(
        {
            "full_truth": truth[idx],
            "pred_index": pred[idx],
            "p_true": proba[idx, y[idx]],
            "p_pred": proba[idx, pred[idx]],
        }
    )
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in ERROR_COLUMNS}).astype(
            {"full_truth": object, "predicted": object, "count": np.int64}
        )
    grouped = (
        frame.groupby(["full_truth", "pred_index"], sort=True)
        .agg(
            count=("p_true", "size"),
            p_true_mean=("p_true", "mean"),
            p_true_sd=("p_true", "std"),
            p_pred_mean=("p_pred", "mean"),
            p_pred_sd=("p_pred", "std"),
        )
        .reset_index()
    )
    grouped["predicted"] = np.asarray([str(c) for c in classes], dtype=object)[
        grouped["pred_index"].to_numpy()
    ]
    grouped["share"] = grouped["count"] / len(idx)
    grouped = grouped.sort_values(
        ["count", "full_truth", "pred_index"], ascending=[False, True, True], kind="stable"
    )
    return grouped[list(ERROR_COLUMNS)].reset_index(drop=True)


def _one_vs_all(y: np.ndarray, proba: np.ndarray, c: int) -> tuple[float, float]:
    positive = y == c
    if not positive.any() or positive.all():
        return math.nan, math.nan
    return (
        binary_auc(positive, proba[:, c]),
        curves.average_precision(positive, proba[:, c]),
    )


@dataclass(frozen=True)
class SheetData:
    title: str
    classes: list[str]
    y: np.ndarray
    proba: np.ndarray
    pred: np.ndarray
    full_truth: np.ndarray
    rule: CutoffRule
    cutoffs: list[ClassCutoff]
    abstain: np.ndarray
    before: Confusion
    after: Confusion
    per_class: pd.DataFrame
    errors_before: pd.DataFrame
    errors_after: pd.DataFrame
    cost_table: CostTable
    cost: CostCurve | None
    cost_note: str
    history: pd.DataFrame | None
    card: dict
    metrics: dict

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def n_abstained(self) -> int:
        return int(self.abstain.sum())

    @property
    def abstention_rate(self) -> float:
        return self.n_abstained / self.n if self.n else math.nan

    @property
    def n_errors(self) -> int:
        return int((self.pred != self.y).sum())

    @property
    def n_errors_after(self) -> int:
        return int(((self.pred != self.y) & ~self.abstain).sum())


def arrays(predictions: pd.DataFrame, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Given class indices and the probability matrix, checked against the class list."""
    if len(classes) < 2:
        raise ValueError(f"a result sheet needs at least two classes, got {list(classes)!r}")
    columns = [f"prob_{c}" for c in classes]
    missing = [c for c in [*columns, "label_index"] if c not in predictions]
    if missing:
        raise ValueError(f"predictions lack the column(s) {missing}; have {list(predictions)}")
    y = predictions["label_index"].to_numpy(dtype=np.int64)
    if ((y < 0) | (y >= len(classes))).any():
        raise ValueError(f"label_index outside [0, {len(classes)}) in the predictions")
    proba = predictions[columns].to_numpy(dtype=np.float64)
    if np.isnan(proba).any():
        raise ValueError("predictions hold NaN probabilities")
    return y, proba


def sheet_data(
    predictions: pd.DataFrame,
    classes: Sequence[str],
    title: str,
    *,
    rule: CutoffRule,
    costs: CostTable,
    history: pd.DataFrame | None = None,
    card: Mapping | None = None,
    metrics: Mapping | None = None,
) -> SheetData:
    """Every number of one cell's sheet."""
    classes = [str(c) for c in classes]
    y, proba = arrays(predictions, classes)
    n_classes = len(classes)
    pred = proba.argmax(axis=1)
    truth = (
        predictions["full_truth"].astype(str).to_numpy(dtype=object)
        if "full_truth" in predictions
        else np.asarray(classes, dtype=object)[y]
    )
    cutoffs = class_cutoffs(y, proba, classes, rule)
    abstain = abstentions(proba, cutoffs)
    before = Confusion(*confusion_with_margins(y, pred, n_classes))
    after = Confusion(*confusion_with_margins(y[~abstain], pred[~abstain], n_classes))

    rows = []
    for c, name in enumerate(classes):
        mine = y == c
        roc_auc, ap = _one_vs_all(y, proba, c)
        cut = cutoffs[c]
        remaining = mine & ~abstain
        rows.append(
            {
                "class": name,
                "n": int(mine.sum()),
                "recall": before.recall[c],
                "precision": before.precision[c],
                "auc": roc_auc,
                "ap": ap,
                "cutoff": cut.cutoff,
                "status": cut.status,
                "kept": cut.kept,
                "fpr_at_cutoff": cut.fpr,
                "precision_at_cutoff": cut.precision,
                "abstained": float(abstain[mine].mean()) if mine.any() else math.nan,
                "recall_after": (
                    float(np.mean(pred[remaining] == c)) if remaining.any() else math.nan
                ),
            }
        )
    if n_classes == 2:
        cost: CostCurve | None = cost_curve(truth, y, proba, costs)
        cost_note = ""
    else:
        cost = None
        cost_note = (
            f"Business cost applies to binary targets whose first class is the accept class; "
            f"this target has {n_classes} classes."
        )
    return SheetData(
        title=str(title),
        classes=classes,
        y=y,
        proba=proba,
        pred=pred,
        full_truth=truth,
        rule=rule,
        cutoffs=cutoffs,
        abstain=abstain,
        before=before,
        after=after,
        per_class=pd.DataFrame(rows),
        errors_before=error_contributions(truth, y, proba, classes),
        errors_after=error_contributions(truth, y, proba, classes, keep=~abstain),
        cost_table=costs,
        cost=cost,
        cost_note=cost_note,
        history=history,
        card=dict(card or {}),
        metrics=dict(metrics or {}),
    )
