"""Every cell of the grid gathered into tables: one row per cell (summary.csv and
summary.parquet), folds aggregated per grid point, metrics against the ground truth,
the best grid point per target and where its errors are.

Clean-label cells are scored on the original, untouched test fold; their
`unflagged_` metrics (test fold minus the flagged samples) are an easier test
and are kept apart so they are never mistaken for the comparable figure
(docs/lab_facts.md, "Label noise"). The raw-vs-clean pairs are `raw_vs_clean`'s,
the label-issue detection quality `issue_stats`'.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from spectragrid.core import layout
from spectragrid.core.atomic import atomic_path
from spectragrid.core.metrics import METRIC_NAMES, classification_metrics
from spectragrid.core.spreadsheet import neutralised
from spectragrid.data.targets import Target, full_truth

COORDINATES: tuple[str, ...] = layout.CELL_COORDINATES
INT_COORDINATES: tuple[str, ...] = layout.INT_COORDINATES
# The folds of one grid point share everything but `fold`.
GROUP_KEYS: tuple[str, ...] = tuple(c for c in COORDINATES if c != "fold")
# A raw grid point and its clean twin share everything but `labels`.
PAIR_KEYS: tuple[str, ...] = tuple(c for c in GROUP_KEYS if c != "labels")
COST_COLUMNS: tuple[str, ...] = (
    "parameters",
    "flops_per_sample",
    "seconds_per_epoch",
    "train_samples_per_second",
    "wall_seconds",
    "device",
)
# Metrics where a smaller value is the better one (the sign of "did cleaning help").
LOWER_IS_BETTER = frozenset({"log_loss", "ece", "hter"})
# Aggregated over folds besides the test_/truth_/unflagged_ metric columns.
EXTRA_AGGREGATED: tuple[str, ...] = ("noise_rate_test", "n_removed_flagged", "wall_seconds")
CELL_COUNTS = ("n_train", "n_val", "n_test", "n_removed_flagged", "best_epoch", "epochs_run")


class SummaryError(ValueError):
    """A cell output or label-issues file that does not follow the contract."""


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise SummaryError(f"{path}: cannot read JSON ({err})") from None


def _float(value: object) -> float:
    # JSON has no NaN: writers may emit null for a metric that could not be computed.
    if value is None:
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _cell_key(metrics: dict, path: Path) -> tuple:
    cell = metrics.get("cell")
    if not isinstance(cell, dict):
        raise SummaryError(f"{path}: no 'cell' object with the grid coordinates")
    missing = [c for c in COORDINATES if c not in cell]
    if missing:
        raise SummaryError(f"{path}: 'cell' lacks {', '.join(missing)}")
    key = []
    for name in COORDINATES:
        value = cell[name]
        if name in INT_COORDINATES:
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise SummaryError(f"{path}: cell.{name} = {value!r} is not an integer") from None
        else:
            value = str(value)
        key.append(value)
    return tuple(key)


def cell_coordinates(metrics_path: Path) -> dict:
    """The grid coordinates a cell's metrics file states, integers where the layout has them."""
    path = Path(metrics_path)
    return dict(zip(COORDINATES, _cell_key(_read_json(path), path), strict=True))


def _link(folder: Path, relative: str, name: str) -> str | None:
    """The path of file `name` of a cell's `folder` as seen from the page (`relative` is the
    folder's), or None when the file does not exist: no link rather than a broken one for
    a missing optional output."""
    return f"{relative}/{name}" if (folder / name).exists() else None


def load_cells(metrics_paths: Iterable[Path], base_dir: Path) -> pd.DataFrame:
    """One row per cell from its metrics.json (and card.json beside it when present).

    `sheet`, `onnx` and `predictions` are paths relative to `base_dir` (the folder of
    summary.html), missing (None/NaN) where the file does not exist.
    """
    rows = []
    seen: dict[tuple, Path] = {}
    base = Path(base_dir).resolve()
    for path in map(Path, metrics_paths):
        metrics = _read_json(path)
        key = _cell_key(metrics, path)
        if key in seen:
            raise SummaryError(f"{path}: same cell {key} as {seen[key]}")
        seen[key] = path
        row: dict = dict(zip(COORDINATES, key, strict=True))
        target = metrics.get("target") or {}
        row["display_name"] = str(metrics.get("display_name", ""))
        # network or classical (spectragrid.train.classical), and the architecture
        row["family"] = str(metrics.get("family", ""))
        row["arch"] = str(metrics.get("arch", ""))
        row["target_code"] = str(target.get("code", ""))
        row["classes"] = json.dumps([str(c) for c in target.get("classes", [])])
        for name in CELL_COUNTS:
            row[name] = _float(metrics.get(name))
        # cells trained before label patches existed used no patch
        row["n_label_patched"] = _float(metrics.get("n_label_patched", 0))
        test = metrics.get("test") or {}
        unflagged = metrics.get("test_unflagged") or {}
        for name in METRIC_NAMES:
            row[f"test_{name}"] = _float(test.get(name))
            row[f"unflagged_{name}"] = _float(unflagged.get(name))
        parity = metrics.get("onnx_parity") or {}
        row["onnx_max_abs_diff"] = _float(parity.get("max_abs_diff"))
        row["onnx_argmax_agree"] = _float(parity.get("argmax_agree"))
        card_path = path.parent / layout.CELL_FILES["card"]
        card = _read_json(card_path) if card_path.exists() else {}
        for name in COST_COLUMNS:
            if name == "device":
                row[name] = str(card[name]) if card.get(name) is not None else None
            else:
                row[name] = _float(card.get(name))
        # One resolve per cell folder, not per file: at 1,000 cells resolving every link
        # cost seconds.
        relative = Path(os.path.relpath(path.parent.resolve(), base)).as_posix()
        for column, name in (
            ("sheet", layout.SHEET_FILES["png"]),
            ("sheet_html", layout.SHEET_FILES["html"]),
            ("onnx", layout.CELL_FILES["onnx"]),
            ("predictions", layout.CELL_FILES["predictions"]),
        ):
            row[column] = _link(path.parent, relative, name)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=_cell_columns())
    for name in INT_COORDINATES:
        frame[name] = frame[name].astype("int64")
    return frame.sort_values(list(COORDINATES), kind="stable").reset_index(drop=True)


def _cell_columns() -> list[str]:
    return [
        *COORDINATES,
        "display_name",
        "family",
        "arch",
        "target_code",
        "classes",
        *CELL_COUNTS,
        "n_label_patched",
        *(f"test_{m}" for m in METRIC_NAMES),
        *(f"unflagged_{m}" for m in METRIC_NAMES),
        "onnx_max_abs_diff",
        "onnx_argmax_agree",
        *COST_COLUMNS,
        "sheet",
        "sheet_html",
        "onnx",
        "predictions",
    ]


def target_of(metrics: dict, where: object = layout.CELL_FILES["metrics"]) -> Target:
    """The cell's Target, rebuilt from the `target` object of its metrics.json."""
    target = metrics.get("target")
    if not isinstance(target, dict) or not {"name", "classes", "members"} <= set(target):
        raise SummaryError(f"{where}: 'target' needs name, classes and members")
    return Target(
        name=str(target["name"]),
        code=str(target.get("code", "")),
        classes=tuple(str(c) for c in target["classes"]),
        members=tuple(tuple(str(v) for v in m) for m in target["members"]),
    )


def truth_series(truth: pd.DataFrame) -> pd.Series:
    """sample_id -> true full truth (from `full_truth`, or built from severity and type)."""
    if "sample_id" not in truth:
        raise SummaryError(f"truth has no sample_id column; columns: {list(truth)}")
    if "full_truth" in truth:
        values = truth["full_truth"].astype(str)
    elif {"severity", "type"} <= set(truth):
        values = full_truth(truth["severity"], truth["type"])
    else:
        raise SummaryError("truth needs a full_truth column, or severity and type")
    series = pd.Series(values.to_numpy(), index=truth["sample_id"].astype(str), name="full_truth")
    duplicated = series.index.duplicated()
    if duplicated.any():
        raise SummaryError(f"truth repeats sample_id {series.index[duplicated][0]!r}")
    return series


TRUTH_COLUMNS: tuple[str, ...] = (
    *(f"truth_{m}" for m in METRIC_NAMES),
    "n_test_truth",
    "noise_rate_test",
)


def add_truth_metrics(
    cells: pd.DataFrame, truth: pd.DataFrame | None, metrics_paths: Iterable[Path]
) -> pd.DataFrame:
    """Add `truth_<metric>` (each cell's probabilities against the noise-free labels),
    `n_test_truth` and `noise_rate_test` (share of the test fold whose given class differs
    from the true class). All NaN without truth."""
    out = cells.copy()
    for column in TRUTH_COLUMNS:
        out[column] = math.nan
    if truth is None or out.empty:
        return out
    true_values = truth_series(truth)
    index = {key: i for i, key in enumerate(out[list(COORDINATES)].itertuples(index=False))}
    # Each target's true class of every sample, once: a cell then only looks its ids up.
    true_classes: dict[Target, np.ndarray] = {}
    rows: list[int] = []
    values: list[dict] = []
    for path in map(Path, metrics_paths):
        metrics = _read_json(path)
        key = _cell_key(metrics, path)
        if key not in index:
            continue
        target = target_of(metrics, path)
        if target not in true_classes:
            true_classes[target] = target.encode(true_values.to_numpy())
        predictions = path.parent / layout.CELL_FILES["predictions"]
        rows.append(index[key])
        values.append(_truth_metrics(predictions, target, true_values.index, true_classes[target]))
    if rows:
        found = pd.DataFrame(values, index=out.index[rows], columns=list(TRUTH_COLUMNS))
        out.loc[found.index, list(TRUTH_COLUMNS)] = found
    return out


def _truth_metrics(
    predictions_path: Path, target: Target, truth_ids: pd.Index, true_classes: np.ndarray
) -> dict:
    prob_columns = [f"prob_{c}" for c in target.classes]
    try:
        # pyarrow straight to numpy: at 1,000 cells pandas' read_parquet doubles the read.
        table = pq.ParquetFile(predictions_path).read(
            columns=["sample_id", "label_index", *prob_columns], use_threads=False
        )
    except (OSError, ValueError, KeyError) as err:
        raise SummaryError(f"{predictions_path}: cannot read predictions ({err})") from None
    ids = table.column("sample_id").to_numpy(zero_copy_only=False).astype(str)
    where = truth_ids.get_indexer(ids)
    y_true = np.where(where >= 0, true_classes[where], -1)
    keep = y_true >= 0
    proba = np.column_stack(
        [table.column(c).to_numpy(zero_copy_only=False) for c in prob_columns]
    ).astype(np.float64)[keep]
    values = {f"truth_{k}": v for k, v in classification_metrics(y_true[keep], proba).items()}
    given = table.column("label_index").to_numpy(zero_copy_only=False).astype(np.int64)[keep]
    values["n_test_truth"] = float(keep.sum())
    values["noise_rate_test"] = float(np.mean(given != y_true[keep])) if keep.any() else math.nan
    return values


def sd_of(values: pd.Series) -> float:
    """Sample sd (n − 1) of the values present; NaN under two (a single fold has none)."""
    values = values.dropna()
    return float(values.std(ddof=1)) if len(values) >= 2 else math.nan


def mean_of(values: pd.Series) -> float:
    """Mean of the values present; NaN when there is none."""
    values = values.dropna()
    return float(values.mean()) if len(values) else math.nan


def aggregated_columns(cells: pd.DataFrame) -> list[str]:
    """The per-cell numeric columns that `aggregate` summarises over folds."""
    prefixes = ("test_", "truth_", "unflagged_")
    return [c for c in cells if c.startswith(prefixes) or c in EXTRA_AGGREGATED]


def aggregate(cells: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over folds (`<column>_mean`, `<column>_sd`) per (dataset, labels, target,
    channels, model, seed, k), with `n_folds` and `folds`."""
    values = aggregated_columns(cells)
    columns = [*GROUP_KEYS, "n_folds", "folds"]
    for c in values:
        columns += [f"{c}_mean", f"{c}_sd"]
    if cells.empty:
        return pd.DataFrame(columns=columns)
    numbers = cells[values].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    grouped = cells.groupby(list(GROUP_KEYS), sort=True)
    points = grouped.size().index
    rows = [grouped.indices[key] for key in points]
    means, sds = mean_sd_by_group(numbers, rows)
    folds = cells["fold"].to_numpy()
    parts: dict[str, object] = {
        "n_folds": [len(r) for r in rows],
        "folds": [",".join(str(f) for f in sorted(folds[r])) for r in rows],
    }
    for j, c in enumerate(values):
        parts[f"{c}_mean"], parts[f"{c}_sd"] = means[:, j], sds[:, j]
    out = pd.concat([points.to_frame(index=False), pd.DataFrame(parts)], axis=1)
    return out[columns]


def mean_sd_by_group(
    values: np.ndarray, groups: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per group of rows of `values` (rows x columns), each column's mean and sample sd
    over the group, NaN skipped: `mean_of` and `sd_of` bit for bit (numpy sums each run of
    values in the order and the way a Series does), without a pandas call per group and
    column, which cost seconds at 1,000 cells."""
    columns = values.T
    means = np.full((len(groups), values.shape[1]), np.nan)
    sds = np.full((len(groups), values.shape[1]), np.nan)
    for i, rows in enumerate(groups):
        block = np.ascontiguousarray(columns[:, rows])
        missing = np.isnan(block)
        whole = ~missing.any(axis=1)
        n = block.shape[1]
        if n and whole.any():
            full = block[whole]
            mean = full.sum(axis=1) / n
            means[i, whole] = mean
            if n >= 2:
                sds[i, whole] = np.sqrt(((mean[:, None] - full) ** 2).sum(axis=1) / (n - 1))
        for j in np.flatnonzero(~whole):
            present = block[j][~missing[j]]
            if len(present):
                means[i, j] = present.sum() / len(present)
            if len(present) >= 2:
                sds[i, j] = np.sqrt(((means[i, j] - present) ** 2).sum() / (len(present) - 1))
    return means, sds


def write_tables(cells: pd.DataFrame, out_csv: Path, out_parquet: Path) -> None:
    """summary.csv and summary.parquet, one row per cell, each written atomically."""
    with atomic_path(out_csv) as tmp:
        neutralised(cells).to_csv(tmp, index=False)
    with atomic_path(out_parquet) as tmp:
        cells.to_parquet(tmp, index=False)


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of `metric` (e.g. `test_log_loss`) is the better one."""
    return metric.split("_", 1)[-1] in LOWER_IS_BETTER


def best_per_target(agg: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (dataset, target, labels), the aggregate row with the best `<metric>_mean`."""
    column = f"{metric}_mean"
    if agg.empty:
        return agg.iloc[0:0]
    if column not in agg:
        known = sorted(c[: -len("_mean")] for c in agg if c.endswith("_mean"))
        raise ValueError(f"best_metric {metric!r} is not aggregated; choose one of {known}")
    chosen = []
    for _, group in agg.groupby(["dataset", "target", "labels"], sort=True):
        scores = pd.to_numeric(group[column], errors="coerce")
        if scores.isna().all():
            continue
        chosen.append(scores.idxmin() if lower_is_better(metric) else scores.idxmax())
    return agg.loc[chosen].reset_index(drop=True)


def folds_of(cells: pd.DataFrame, point: Mapping) -> pd.DataFrame:
    """The fold rows of one grid point (keys of GROUP_KEYS taken from `point`)."""
    mask = np.ones(len(cells), dtype=bool)
    for key in GROUP_KEYS:
        mask &= (cells[key] == point[key]).to_numpy()
    return cells.loc[mask].sort_values("fold")


ERRORS_BY_TRUTH_COLUMNS: tuple[str, ...] = (
    "full_truth",
    "n",
    "n_errors",
    "error_rate",
    "top_wrong",
    "top_wrong_count",
)


def pooled_predictions(folds: pd.DataFrame, base_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """The test predictions of a grid point's folds stacked (each sample once: folds are
    disjoint), and its class list."""
    classes = json.loads(folds["classes"].iloc[0]) if len(folds) else []
    parts = []
    for relative in folds["predictions"].dropna():
        try:
            parts.append(pd.read_parquet(Path(base_dir) / str(relative)))
        except (OSError, ValueError) as err:
            raise SummaryError(f"{relative}: cannot read predictions ({err})") from None
    if not parts:
        return pd.DataFrame(), classes
    return pd.concat(parts, ignore_index=True), classes


def errors_by_truth(predictions: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Per given full truth: samples, misclassified samples, error rate and the class most
    often wrongly predicted for it. Highest error count first."""
    if predictions.empty:
        return pd.DataFrame(columns=list(ERRORS_BY_TRUTH_COLUMNS))
    truth = predictions["full_truth"].astype(str).to_numpy()
    wrong = predictions["pred_index"].to_numpy() != predictions["label_index"].to_numpy()
    names = np.asarray(classes, dtype=object)[predictions["pred_index"].to_numpy()]
    rows = []
    for value in sorted(set(truth)):
        mine = truth == value
        mistakes = pd.Series(names[mine & wrong]).value_counts(sort=True)
        rows.append(
            {
                "full_truth": value,
                "n": int(mine.sum()),
                "n_errors": int((mine & wrong).sum()),
                "error_rate": float((mine & wrong).sum() / mine.sum()),
                "top_wrong": str(mistakes.index[0]) if len(mistakes) else "",
                "top_wrong_count": int(mistakes.iloc[0]) if len(mistakes) else 0,
            }
        )
    frame = pd.DataFrame(rows, columns=list(ERRORS_BY_TRUTH_COLUMNS))
    return frame.sort_values(
        ["n_errors", "error_rate", "full_truth"], ascending=[False, False, True], kind="stable"
    ).reset_index(drop=True)
