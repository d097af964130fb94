"""How well the label-issues files found the mislabelled samples: one row per file.

Every issues file is counted (flagged samples, share of the target, the most
suspicious ones); with the given labels (from the raw cells' predictions) and
a truth file, its flagged set is scored against the samples whose given
target class differs from their true one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from spectragrid.core import layout
from spectragrid.data.targets import Target
from spectragrid.issues.flagged_set_scores import detection_scores, truly_mislabelled
from spectragrid.issues.review import issues_coordinates
from spectragrid.report.summary_tables import SummaryError, cell_coordinates, truth_series
from spectragrid.train.label_action import read_issues


def parse_issues_path(path: Path) -> dict:
    """Target, channel set, seed and k of an issues file, from where it lies in the layout."""
    try:
        return issues_coordinates(Path(path))
    except layout.LayoutError as err:
        raise SummaryError(str(err)) from None


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
        key = cell_coordinates(path)
        predictions = path.parent / layout.CELL_FILES["predictions"]
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
