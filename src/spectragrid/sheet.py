"""The one-page result sheet users read for every trained model (domain.md §5).

Built on a bare `Figure` + Agg canvas rather than pyplot: no global figure
state and no backend switch imposed on the importing process, so many sheets
can be rendered in one process, and the PNG bytes only depend on the inputs
(no timestamp or software tag in the metadata).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from sklearn.metrics import auc as area_under
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

DPI = 110
RELIABILITY_BINS = 10
TOP_ERRORS = 10

# Class names and display names are user strings: a `$` in them must not
# switch matplotlib into mathtext.
_RC = {"text.parse_math": False, "text.usetex": False, "svg.hashsalt": "spectragrid"}


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


def best_cutoff(y_is_class: np.ndarray, score: np.ndarray) -> tuple[float, float, float]:
    """Score cutoff maximising (1 - FPR)·TPR (the users' reference rule).

    Returns (cutoff, TPR at the cutoff = fraction of the class kept, FPR); NaNs when the
    class or its complement is absent.
    """
    y_is_class = np.asarray(y_is_class, dtype=bool)
    if y_is_class.all() or not y_is_class.any():
        return math.nan, math.nan, math.nan
    fpr, tpr, thresholds = roc_curve(y_is_class, score)
    finite = np.isfinite(thresholds)
    objective = np.where(finite, (1 - fpr) * tpr, -np.inf)
    i = int(np.argmax(objective))
    return float(thresholds[i]), float(tpr[i]), float(fpr[i])


def _fmt_pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{100 * x:.1f}%"


def _curve_classes(n_classes: int) -> list[int]:
    # The two one-vs-all curves of a binary target mirror each other: show class 0 only.
    return [0] if n_classes == 2 else list(range(n_classes))


def _colors(n: int) -> list:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _draw_confusion(
    ax: Axes, y: np.ndarray, pred: np.ndarray, classes: list[str], show_pct: bool
) -> None:
    n = len(classes)
    counts, recall, precision, accuracy = confusion_with_margins(y, pred, n)
    total = max(int(counts.sum()), 1)
    rows = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shade = np.where(rows > 0, counts / np.maximum(rows, 1), np.nan)
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="white")
    ax.imshow(shade, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    size = 9 if n <= 4 else 7 if n <= 8 else 5
    for i in range(n):
        for j in range(n):
            text = f"{counts[i, j]}"
            if show_pct:
                text += f"\n{100 * counts[i, j] / total:.1f}%"
            dark = np.isfinite(shade[i, j]) and shade[i, j] > 0.55
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=size,
                color="white" if dark else "black",
            )
    margin = "#eeeeee"
    for i in range(n):
        ax.add_patch(Rectangle((n - 0.5, i - 0.5), 1, 1, facecolor=margin, edgecolor="white"))
        ax.text(n, i, _fmt_pct(recall[i]), ha="center", va="center", fontsize=size)
    for j in range(n):
        ax.add_patch(Rectangle((j - 0.5, n - 0.5), 1, 1, facecolor=margin, edgecolor="white"))
        ax.text(j, n, _fmt_pct(precision[j]), ha="center", va="center", fontsize=size)
    ax.add_patch(Rectangle((n - 0.5, n - 0.5), 1, 1, facecolor="#d0d0d0", edgecolor="white"))
    ax.text(
        n,
        n,
        f"accuracy\n{_fmt_pct(accuracy)}",
        ha="center",
        va="center",
        fontsize=size,
        fontweight="bold",
    )
    ax.set_xlim(-0.5, n + 0.5)
    ax.set_ylim(n + 0.5, -0.5)
    ax.set_xticks(range(n + 1), [*classes, "recall"], rotation=45 if n > 3 else 0, ha="right")
    ax.set_yticks(range(n + 1), [*classes, "precision"])
    if n <= 3:
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("center")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (given label)")
    ax.set_title("Confusion matrix: counts" + (" and % of total" if show_pct else ""))


def _draw_roc(
    ax: Axes, y: np.ndarray, proba: np.ndarray, classes: list[str], colors: list
) -> list[str]:
    skipped = []
    for c in _curve_classes(len(classes)):
        positive = y == c
        if not positive.any() or positive.all():
            skipped.append(classes[c])
            continue
        fpr, tpr, _ = roc_curve(positive, proba[:, c])
        ax.plot(
            fpr,
            tpr,
            color=colors[c],
            lw=1.5,
            label=f"{classes[c]} (AUC {area_under(fpr, tpr):.3f})",
        )
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, one vs all")
    _note_skipped(ax, skipped)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=7)
    return skipped


def _draw_pr(ax: Axes, y: np.ndarray, proba: np.ndarray, classes: list[str], colors: list) -> None:
    skipped = []
    for c in _curve_classes(len(classes)):
        positive = y == c
        if not positive.any() or positive.all():
            skipped.append(classes[c])
            continue
        precision, recall, _ = precision_recall_curve(positive, proba[:, c])
        ap = average_precision_score(positive, proba[:, c])
        ax.plot(recall, precision, color=colors[c], lw=1.5, label=f"{classes[c]} (AP {ap:.3f})")
        ax.axhline(positive.mean(), color=colors[c], lw=0.6, ls=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall, one vs all (dotted: prevalence)")
    _note_skipped(ax, skipped)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=7)


def _note_skipped(ax: Axes, skipped: list[str]) -> None:
    # In the title rather than over the plot, where it would hide curves.
    if skipped:
        ax.set_title(
            f"{ax.get_title()}\nno curve for {', '.join(skipped)} (absent from the test fold, or "
            "its only class)",
            color="darkred",
        )


def _draw_reliability(
    ax: Axes, y: np.ndarray, proba: np.ndarray, classes: list[str], colors: list
) -> None:
    edges = np.linspace(0, 1, RELIABILITY_BINS + 1)
    for c in _curve_classes(len(classes)):
        score = proba[:, c]
        which = np.clip(np.digitize(score, edges[1:-1], right=True), 0, RELIABILITY_BINS - 1)
        mean_score, observed = [], []
        for b in range(RELIABILITY_BINS):
            mask = which == b
            if mask.any():
                mean_score.append(score[mask].mean())
                observed.append(np.mean(y[mask] == c))
        ax.plot(mean_score, observed, marker="o", ms=3, lw=1.2, color=colors[c], label=classes[c])
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(f"mean predicted probability ({RELIABILITY_BINS} uniform bins)")
    ax.set_ylabel("observed fraction of the class")
    ax.set_title("Reliability (calibration)")
    ax.legend(loc="upper left", fontsize=7)


def _draw_scores(
    ax: Axes, y: np.ndarray, proba: np.ndarray, classes: list[str], colors: list
) -> None:
    bins = np.linspace(0, 1, 21)
    if len(classes) == 2:
        # Binary: where the two given classes fall on the class-0 score is what a cutoff acts on.
        for c in (0, 1):
            mask = y == c
            if mask.any():
                ax.hist(
                    proba[mask, 0],
                    bins=bins,
                    histtype="step",
                    lw=1.5,
                    color=colors[c],
                    label=f"given {classes[c]} (n={int(mask.sum())})",
                )
        ax.set_xlabel(f"predicted probability of {classes[0]}")
    else:
        for c in range(len(classes)):
            mask = y == c
            if mask.any():
                ax.hist(
                    proba[mask, c],
                    bins=bins,
                    histtype="step",
                    lw=1.2,
                    color=colors[c],
                    label=f"{classes[c]} (n={int(mask.sum())})",
                )
        ax.set_xlabel("predicted probability of the given class")
    ax.set_ylabel("samples")
    ax.set_title("Predicted scores per class")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper center", fontsize=7)


def _draw_history(ax: Axes, history: pd.DataFrame | None) -> None:
    ax.set_title("Learning curve (epoch 0 = before training)")
    if history is None or history.empty or "epoch" not in history:
        ax.text(0.5, 0.5, "no history", transform=ax.transAxes, ha="center", va="center")
        ax.set_axis_off()
        return
    history = history.sort_values("epoch")
    epoch = history["epoch"].to_numpy()
    for column, color in (("val_accuracy", "tab:blue"), ("val_macro_f1", "tab:green")):
        if column in history:
            ax.plot(epoch, history[column], marker="o", ms=3, color=color, label=column)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation metric")
    losses = ax.twinx()
    for column, color in (("train_loss", "tab:orange"), ("val_loss", "tab:red")):
        if column in history:
            losses.plot(epoch, history[column], ls="--", color=color, label=column)
    losses.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = losses.get_legend_handles_labels()
    if handles or more_handles:
        ax.legend(handles + more_handles, labels + more_labels, loc="center right", fontsize=7)


def _table(ax: Axes, title: str, header: list[str], rows: list[list[str]], empty: str) -> None:
    ax.set_axis_off()
    ax.set_title(title)
    if not rows:
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center")
        return
    table = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1, 1.25)
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("#cccccc")
        if row == 0:
            cell.set_facecolor("#eeeeee")


def per_class_rows(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> list[list[str]]:
    """Per class: support, recall (per-class accuracy), precision, AUC, best cutoff, kept."""
    pred = proba.argmax(axis=1)
    _, recall, precision, _ = confusion_with_margins(y, pred, len(classes))
    rows = []
    for c, name in enumerate(classes):
        positive = y == c
        cutoff, kept, fpr = best_cutoff(positive, proba[:, c])
        if positive.any() and not positive.all():
            fpr_curve, tpr_curve, _ = roc_curve(positive, proba[:, c])
            roc_auc = f"{area_under(fpr_curve, tpr_curve):.3f}"
        else:
            roc_auc = "–"
        rows.append(
            [
                name,
                str(int(positive.sum())),
                _fmt_pct(recall[c]),
                _fmt_pct(precision[c]),
                roc_auc,
                "–" if not np.isfinite(cutoff) else f"{cutoff:.3f}",
                _fmt_pct(kept),
                _fmt_pct(fpr),
            ]
        )
    return rows


def top_errors(
    predictions: pd.DataFrame, y: np.ndarray, proba: np.ndarray, classes: list[str]
) -> pd.DataFrame:
    """Misclassified samples grouped by (given full truth, predicted class), largest first."""
    pred = proba.argmax(axis=1)
    wrong = pred != y
    truth = (
        predictions["full_truth"].astype(str).to_numpy()
        if "full_truth" in predictions
        else np.asarray(classes, dtype=object)[y]
    )
    frame = pd.DataFrame(
        {
            "full_truth": truth[wrong],
            "predicted": np.asarray(classes, dtype=object)[pred[wrong]],
            "p_true": proba[wrong, y[wrong]] if wrong.any() else np.array([]),
            "p_pred": proba[wrong, pred[wrong]] if wrong.any() else np.array([]),
        }
    )
    if frame.empty:
        return frame.assign(n_errors=[], share=[])
    grouped = (
        frame.groupby(["full_truth", "predicted"], sort=False)
        .agg(
            n_errors=("p_true", "size"),
            p_true_mean=("p_true", "mean"),
            p_true_sd=("p_true", "std"),
            p_pred_mean=("p_pred", "mean"),
            p_pred_sd=("p_pred", "std"),
        )
        .reset_index()
    )
    grouped["share"] = grouped["n_errors"] / int(wrong.sum())
    return grouped.sort_values(
        ["n_errors", "full_truth", "predicted"], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.2f} ± {sd:.2f}" if np.isfinite(sd) else f"{mean:.2f}"


def _arrays(predictions: pd.DataFrame, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    if len(classes) < 2:
        raise ValueError(f"a result sheet needs at least two classes, got {classes!r}")
    columns = [f"prob_{c}" for c in classes]
    missing = [c for c in [*columns, "label_index"] if c not in predictions]
    if missing:
        raise ValueError(f"predictions lack the column(s) {missing}; have {list(predictions)}")
    y = predictions["label_index"].to_numpy(dtype=np.int64)
    if ((y < 0) | (y >= len(classes))).any():
        raise ValueError(f"label_index outside [0, {len(classes)}) in the predictions")
    proba = predictions[columns].to_numpy(dtype=np.float64)
    return y, proba


def render_sheet(
    predictions: pd.DataFrame,
    classes: list[str],
    title: str,
    out_png: Path,
    history: pd.DataFrame | None = None,
) -> None:
    """Render one cell's result sheet (test fold) to `out_png`, atomically."""
    classes = [str(c) for c in classes]
    y, proba = _arrays(predictions, classes)
    pred = proba.argmax(axis=1)
    n = len(classes)
    colors = _colors(n)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)

    with rc_context(_RC):
        fig = Figure(figsize=(18, 15), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        fig.suptitle(f"{title}    n_test = {len(y)}", fontsize=12, fontweight="bold")
        grid = fig.add_gridspec(3, 6, height_ratios=[1.1, 1, 0.9])
        _draw_confusion(fig.add_subplot(grid[0, 0:2]), y, pred, classes, show_pct=n <= 10)
        _draw_roc(fig.add_subplot(grid[0, 2:4]), y, proba, classes, colors)
        _draw_pr(fig.add_subplot(grid[0, 4:6]), y, proba, classes, colors)
        _draw_reliability(fig.add_subplot(grid[1, 0:2]), y, proba, classes, colors)
        _draw_scores(fig.add_subplot(grid[1, 2:4]), y, proba, classes, colors)
        _draw_history(fig.add_subplot(grid[1, 4:6]), history)
        _table(
            fig.add_subplot(grid[2, 0:3]),
            "Per class (cutoff maximises (1 - FPR)·TPR; kept = class samples at or above it)",
            ["class", "n", "recall", "precision", "AUC", "cutoff", "kept", "FPR"],
            per_class_rows(y, proba, classes),
            "no samples",
        )
        errors = top_errors(predictions, y, proba, classes).head(TOP_ERRORS)
        _table(
            fig.add_subplot(grid[2, 3:6]),
            f"Top error contributions ({int((pred != y).sum())} errors)",
            ["full truth", "predicted", "count", "share", "p(true)", "p(predicted)"],
            [
                [
                    str(r.full_truth),
                    str(r.predicted),
                    str(int(r.n_errors)),
                    _fmt_pct(r.share),
                    _pm(r.p_true_mean, r.p_true_sd),
                    _pm(r.p_pred_mean, r.p_pred_sd),
                ]
                for r in errors.itertuples(index=False)
            ],
            "no errors",
        )
        tmp = out_png.with_name(f".{out_png.name}.{os.getpid()}.tmp")
        try:
            fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
            os.replace(tmp, out_png)
        finally:
            tmp.unlink(missing_ok=True)
