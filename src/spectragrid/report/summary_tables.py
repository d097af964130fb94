"""Every cell of the grid gathered into tables: one row per cell, folds aggregated,
raw-vs-clean pairs, metrics against the ground truth and label-issue detection quality.

Clean-label cells are scored on the original, untouched test fold; their
`unflagged_` metrics (test fold minus the flagged samples) are an easier test
and are kept apart so they are never mistaken for the comparable figure
(domain.md §6).
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from spectragrid.core.atomic import atomic_path
from spectragrid.core.metrics import METRIC_NAMES, classification_metrics
from spectragrid.data.targets import Target, full_truth
from spectragrid.issues.flagged_set_scores import detection_scores, truly_mislabelled

COORDINATES: tuple[str, ...] = (
    "dataset",
    "labels",
    "target",
    "channels",
    "model",
    "seed",
    "fold",
    "k",
)
INT_COORDINATES = ("seed", "fold", "k")
# A raw cell and its clean twin share everything but `labels`.
PAIR_KEYS: tuple[str, ...] = ("dataset", "target", "channels", "model", "seed", "k")
GROUP_KEYS: tuple[str, ...] = ("dataset", "labels", "target", "channels", "model", "seed", "k")
COST_COLUMNS: tuple[str, ...] = (
    "parameters",
    "flops_per_sample",
    "seconds_per_epoch",
    "train_samples_per_second",
    "wall_seconds",
    "device",
)
PAIRED_METRICS: tuple[str, ...] = (
    "test_accuracy",
    "test_balanced_accuracy",
    "test_macro_f1",
    "test_auc",
    "test_log_loss",
    "test_ece",
    "test_hter",
    "truth_accuracy",
    "truth_macro_f1",
)
# Metrics where a smaller value is the better one (the sign of "did cleaning help").
LOWER_IS_BETTER = frozenset({"log_loss", "ece", "hter"})
UNFLAGGED_METRICS: tuple[str, ...] = (
    "unflagged_accuracy",
    "unflagged_macro_f1",
    "unflagged_balanced_accuracy",
)
# Aggregated over folds besides the test_/truth_/unflagged_ metric columns.
EXTRA_AGGREGATED: tuple[str, ...] = ("noise_rate_test", "n_removed_flagged", "wall_seconds")
CELL_COUNTS = ("n_train", "n_val", "n_test", "n_removed_flagged", "best_epoch", "epochs_run")
WILCOXON_MIN_PAIRS = 5

_ISSUES_DIR = "label_issues"
_SEED = re.compile(r"s(\d+)")
_K = re.compile(r"k(\d+)")


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


def _relative(path: Path, base_dir: Path) -> str | None:
    # No link rather than a broken one when an optional output is missing.
    if not path.exists():
        return None
    return Path(os.path.relpath(path.resolve(), Path(base_dir).resolve())).as_posix()


def load_cells(metrics_paths: Iterable[Path], base_dir: Path) -> pd.DataFrame:
    """One row per cell from its metrics.json (and card.json beside it when present).

    `sheet`, `onnx` and `predictions` are paths relative to `base_dir` (the folder of
    summary.html), missing (None/NaN) where the file does not exist.
    """
    rows = []
    seen: dict[tuple, Path] = {}
    for path in map(Path, metrics_paths):
        metrics = _read_json(path)
        key = _cell_key(metrics, path)
        if key in seen:
            raise SummaryError(f"{path}: same cell {key} as {seen[key]}")
        seen[key] = path
        row: dict = dict(zip(COORDINATES, key, strict=True))
        target = metrics.get("target") or {}
        row["display_name"] = str(metrics.get("display_name", ""))
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
        card_path = path.parent / "card.json"
        card = _read_json(card_path) if card_path.exists() else {}
        for name in COST_COLUMNS:
            if name == "device":
                row[name] = str(card[name]) if card.get(name) is not None else None
            else:
                row[name] = _float(card.get(name))
        row["sheet"] = _relative(path.parent / "sheet.png", base_dir)
        row["sheet_html"] = _relative(path.parent / "sheet.html", base_dir)
        row["onnx"] = _relative(path.parent / "model.onnx", base_dir)
        row["predictions"] = _relative(path.parent / "predictions.parquet", base_dir)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=_cell_columns())
    for name in INT_COORDINATES:
        frame[name] = frame[name].astype("int64")
    return frame.sort_values(list(COORDINATES), kind="stable").reset_index(drop=True)


def _cell_columns() -> list[str]:
    return [
        *COORDINATES,
        "display_name",
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


def target_of(metrics: dict, where: object = "metrics.json") -> Target:
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
    for path in map(Path, metrics_paths):
        metrics = _read_json(path)
        key = _cell_key(metrics, path)
        if key not in index:
            continue
        target = target_of(metrics, path)
        values = _truth_metrics(path.parent / "predictions.parquet", target, true_values)
        for column, value in values.items():
            out.at[out.index[index[key]], column] = value
    return out


def _truth_metrics(predictions_path: Path, target: Target, true_values: pd.Series) -> dict:
    prob_columns = [f"prob_{c}" for c in target.classes]
    try:
        predictions = pd.read_parquet(
            predictions_path, columns=["sample_id", "label_index", *prob_columns]
        )
    except (OSError, ValueError, KeyError) as err:
        raise SummaryError(f"{predictions_path}: cannot read predictions ({err})") from None
    ids = predictions["sample_id"].astype(str)
    y_true = target.encode(ids.map(true_values))
    keep = y_true >= 0
    proba = predictions[prob_columns].to_numpy(dtype=np.float64)[keep]
    values = {f"truth_{k}": v for k, v in classification_metrics(y_true[keep], proba).items()}
    given = predictions["label_index"].to_numpy(dtype=np.int64)[keep]
    values["n_test_truth"] = float(keep.sum())
    values["noise_rate_test"] = float(np.mean(given != y_true[keep])) if keep.any() else math.nan
    return values


def paired_p_value(raw: np.ndarray, clean: np.ndarray) -> tuple[float, str]:
    """Two-sided p-value of the paired difference clean - raw, and the test used.

    Wilcoxon signed-rank once there are enough non-zero differences to reach a
    meaningful p-value, a paired t-test below that; NaN under two pairs.
    """
    raw = np.asarray(raw, dtype=np.float64)
    clean = np.asarray(clean, dtype=np.float64)
    ok = np.isfinite(raw) & np.isfinite(clean)
    diff = clean[ok] - raw[ok]
    if len(diff) < 2:
        return math.nan, ""
    nonzero = diff[diff != 0]
    if len(nonzero) == 0:
        return 1.0, "none (all differences 0)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if len(nonzero) >= WILCOXON_MIN_PAIRS:
            return float(stats.wilcoxon(diff).pvalue), "Wilcoxon"
        if np.all(diff == diff[0]):
            # Zero variance: the t statistic is undefined, not infinitely significant.
            return math.nan, "t (constant difference)"
        return float(stats.ttest_rel(clean[ok], raw[ok]).pvalue), "paired t"


def _sd(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.std(ddof=1)) if len(values) >= 2 else math.nan


def _mean(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.mean()) if len(values) else math.nan


def paired_raw_clean(cells: pd.DataFrame) -> pd.DataFrame:
    """Clean cells against their raw twins, fold by fold, per (dataset, target, channels,
    model, seed, k).

    Per metric m: `m_raw_mean/_sd`, `m_clean_mean/_sd`, `m_diff_mean/_sd` (clean - raw),
    `m_diffs` (per fold), `m_p` and `m_test`. The clean cells' `unflagged_` metrics come
    as `<name>_clean_mean/_sd`.
    """
    keys = [*PAIR_KEYS, "fold"]
    metrics = [m for m in PAIRED_METRICS if m in cells]
    unflagged = [m for m in UNFLAGGED_METRICS if m in cells]
    columns = [*PAIR_KEYS, "n_folds", "folds", "n_removed_flagged_mean"]
    for m in PAIRED_METRICS:
        columns += [f"{m}_{s}" for s in ("raw_mean", "raw_sd", "clean_mean", "clean_sd")]
        columns += [f"{m}_{s}" for s in ("diff_mean", "diff_sd", "diffs", "p", "test")]
    for m in UNFLAGGED_METRICS:
        columns += [f"{m}_clean_mean", f"{m}_clean_sd"]
    if cells.empty:
        return pd.DataFrame(columns=columns)
    raw = cells.loc[cells["labels"] == "raw", keys + metrics]
    clean = cells.loc[
        cells["labels"] == "clean", keys + metrics + unflagged + ["n_removed_flagged"]
    ]
    merged = raw.merge(clean, on=keys, suffixes=("_raw", "_clean")).sort_values(keys)
    rows = []
    for key, group in merged.groupby(list(PAIR_KEYS), sort=True):
        row: dict = dict(zip(PAIR_KEYS, key, strict=True))
        row["n_folds"] = len(group)
        row["folds"] = ",".join(str(f) for f in group["fold"])
        row["n_removed_flagged_mean"] = _mean(group["n_removed_flagged"])
        for m in PAIRED_METRICS:
            if m not in metrics:
                continue
            r, c = group[f"{m}_raw"], group[f"{m}_clean"]
            diff = c - r
            row[f"{m}_raw_mean"], row[f"{m}_raw_sd"] = _mean(r), _sd(r)
            row[f"{m}_clean_mean"], row[f"{m}_clean_sd"] = _mean(c), _sd(c)
            row[f"{m}_diff_mean"], row[f"{m}_diff_sd"] = _mean(diff), _sd(diff)
            row[f"{m}_diffs"] = " ".join(
                f"f{f}:{d:+.3f}" for f, d in zip(group["fold"], diff, strict=True) if np.isfinite(d)
            )
            row[f"{m}_p"], row[f"{m}_test"] = paired_p_value(r.to_numpy(), c.to_numpy())
        for m in unflagged:
            row[f"{m}_clean_mean"], row[f"{m}_clean_sd"] = _mean(group[m]), _sd(group[m])
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


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
    rows = []
    for key, group in cells.groupby(list(GROUP_KEYS), sort=True):
        row: dict = dict(zip(GROUP_KEYS, key, strict=True))
        row["n_folds"] = len(group)
        row["folds"] = ",".join(str(f) for f in sorted(group["fold"]))
        for c in values:
            numbers = pd.to_numeric(group[c], errors="coerce")
            row[f"{c}_mean"], row[f"{c}_sd"] = _mean(numbers), _sd(numbers)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def parse_issues_path(path: Path) -> dict:
    """Coordinates of `.../label_issues/{target}/{channels}/s{seed}/k{k}/issues.csv`."""
    parts = Path(path).parts
    expected = f"…/{_ISSUES_DIR}/<target>/<channels>/s<seed>/k<k>/issues.csv"
    if _ISSUES_DIR not in parts:
        raise SummaryError(f"{path}: not under a '{_ISSUES_DIR}' folder; expected {expected}")
    i = len(parts) - 1 - parts[::-1].index(_ISSUES_DIR)
    tail = parts[i + 1 :]
    seed = _SEED.fullmatch(tail[2]) if len(tail) == 5 else None
    k = _K.fullmatch(tail[3]) if len(tail) == 5 else None
    if seed is None or k is None:
        raise SummaryError(f"{path}: does not read as {expected}")
    return {"target": tail[0], "channels": tail[1], "seed": int(seed[1]), "k": int(k[1])}


def given_labels(predictions_paths: Iterable[Path]) -> pd.Series:
    """sample_id -> given full truth, from cells' predictions (their test folds together
    cover every sample of a target)."""
    parts = []
    for path in map(Path, predictions_paths):
        try:
            parts.append(pd.read_parquet(path, columns=["sample_id", "full_truth"]))
        except (OSError, ValueError, KeyError) as err:
            raise SummaryError(f"{path}: cannot read sample_id/full_truth ({err})") from None
    if not parts:
        return pd.Series(dtype=object, name="full_truth")
    frame = pd.concat(parts).astype(str).drop_duplicates()
    conflict = frame["sample_id"].duplicated()
    if conflict.any():
        raise SummaryError(
            f"sample {frame['sample_id'][conflict].iloc[0]!r} has different given labels "
            "in different predictions files"
        )
    return frame.set_index("sample_id")["full_truth"].sort_index()


def given_from_cells(metrics_paths: Iterable[Path]) -> pd.Series:
    """sample_id -> given full truth from the raw cells' predictions: per target, the folds
    of one grid point suffice, so not every predictions file has to be read."""
    chosen: dict[str, tuple] = {}
    files: list[tuple[tuple, Path]] = []
    for path in map(Path, metrics_paths):
        key = dict(zip(COORDINATES, _cell_key(_read_json(path), path), strict=True))
        predictions = path.parent / "predictions.parquet"
        if key["labels"] != "raw" or not predictions.exists():
            continue
        point = tuple(key[c] for c in ("dataset", "channels", "model", "seed", "k"))
        files.append(((key["target"], point), predictions))
        if key["target"] not in chosen or point < chosen[key["target"]]:
            chosen[key["target"]] = point
    return given_labels(p for (target, point), p in files if chosen[target] == point)


ISSUE_COLUMNS: tuple[str, ...] = (
    "target",
    "channels",
    "seed",
    "k",
    "n_flagged",
    "n_samples",
    "flagged_fraction",
    "n_truly_mislabelled",
    "true_positives",
    "precision",
    "recall",
    "f1",
    "top_flagged",
    "path",
)
TOP_FLAGGED = 5


def issue_stats(
    issues_paths: Iterable[Path],
    given: pd.Series | None,
    truth: pd.DataFrame | None,
    targets: dict[str, Target],
) -> pd.DataFrame:
    """Per label-issues file: how many samples were flagged, and with `given` (sample_id ->
    given full truth) and `truth`, detection precision, recall and F1 against the samples
    whose given target class differs from their true one."""
    true_values = truth_series(truth) if truth is not None else None
    if given is not None:
        given = pd.Series(given.to_numpy(), index=given.index.astype(str)).astype(str)
    rows = []
    for path in map(Path, issues_paths):
        row: dict = {**parse_issues_path(path), "path": path.as_posix()}
        issues = read_issues(path)
        row["n_flagged"] = len(issues)
        top = issues.sort_values("rank", kind="stable").head(TOP_FLAGGED)
        row["top_flagged"] = "; ".join(
            f"{r.sample_id} ({r.given_label}→{r.suggested_label})"
            for r in top.itertuples(index=False)
        )
        row.update(_detection(issues, row["target"], given, true_values, targets, path))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(ISSUE_COLUMNS))
    return frame.sort_values(["target", "channels", "seed", "k"], kind="stable").reset_index(
        drop=True
    )


def read_issues(path: Path) -> pd.DataFrame:
    needed = {"sample_id", "given_label", "suggested_label", "label_quality", "rank"}
    try:
        issues = pd.read_csv(
            path, dtype={"sample_id": str, "given_label": str, "suggested_label": str}
        )
    except (OSError, ValueError) as err:
        raise SummaryError(f"{path}: cannot read label issues ({err})") from None
    missing = needed - set(issues)
    if missing:
        raise SummaryError(f"{path}: missing column(s) {sorted(missing)}; have {list(issues)}")
    return issues


def _detection(
    issues: pd.DataFrame,
    target_name: str,
    given: pd.Series | None,
    true_values: pd.Series | None,
    targets: dict[str, Target],
    path: Path,
) -> dict:
    out: dict = {}
    if given is None:
        return out
    if target_name not in targets:
        raise SummaryError(f"{path}: unknown target {target_name!r}; known: {sorted(targets)}")
    target = targets[target_name]
    given_class = pd.Series(target.encode(given), index=given.index)
    in_target = given_class[given_class >= 0]
    out["n_samples"] = len(in_target)
    out["flagged_fraction"] = len(issues) / len(in_target) if len(in_target) else math.nan
    if true_values is None:
        return out
    truly = truly_mislabelled(given.reindex(in_target.index), true_values, target)
    scores = detection_scores(set(issues["sample_id"].astype(str)), truly)
    out.update({k: v for k, v in scores.items() if k != "n_flagged"})
    return out


def write_tables(cells: pd.DataFrame, out_csv: Path, out_parquet: Path) -> None:
    """summary.csv and summary.parquet, one row per cell, each written atomically."""
    with atomic_path(out_csv) as tmp:
        cells.to_csv(tmp, index=False)
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
