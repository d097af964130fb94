"""What a person reviewing the flagged samples works with, before any page shows it.

Per issues file: the flagged samples by rank with their given (and, where
known, true) full truth, and the CSV a reviewer fills in (`corrected_label`,
`comment`) and hands back as a label patch. Across the grid: how far every
model's own out-of-fold predictions back each flag, and how much the flagged
sets of different channel sets and seeds overlap.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.core import layout
from spectragrid.core.atomic import write_atomic
from spectragrid.core.spreadsheet import neutralised
from spectragrid.data.targets import Target
from spectragrid.train.label_action import read_issues

# A study has one dataset: an issues file is told apart by the other coordinates.
ISSUES_FILE_COORDINATES: tuple[str, ...] = tuple(
    c for c in layout.ISSUES_COORDINATES if c != "dataset"
)
AGREEMENT_COLUMNS: tuple[str, ...] = (
    *ISSUES_FILE_COORDINATES,
    "model",
    "n_flagged",
    "n_predicted",
    "flagged_model_disagrees",
    "flagged_model_suggests",
    "unflagged_model_disagrees",
)
OVERLAP_COLUMNS: tuple[str, ...] = (
    "target",
    "a",
    "b",
    "n_a",
    "n_b",
    "n_both",
    "jaccard",
)
# The reviewer's CSV, in this order: the sample and its rank first, the evidence after.
REVIEW_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "rank",
    "given_label",
    "suggested_label",
    "label_quality",
    "flagged_by",
    "given_full_truth",
)
REVIEWER_COLUMNS: tuple[str, ...] = ("corrected_label", "comment")


def issues_coordinates(path: Path) -> dict:
    """Target, channel set, seed and k of an issues file, read from where it lies.

    Raises `layout.LayoutError` for a file that is not an issues file of the layout.
    """
    path = Path(path)
    name = layout.ISSUES_FILES["issues"]
    if path.name != name:
        raise layout.LayoutError(f"{path}: a label-issues file is named {name}")
    coordinates = layout.parse_issues_dir(path.parent)
    return {c: coordinates[c] for c in ISSUES_FILE_COORDINATES}


def issues_name(coords: Mapping) -> str:
    """File-name stem of an issues file's review sheet and CSV; coordinates are names that
    match the workflow's wildcard pattern, so the stem is a safe file name."""
    return layout.REVIEW_NAME.format(
        target=coords["target"], channels=coords["channels"], seed=coords["seed"], k=coords["k"]
    )


def review_table(
    issues: pd.DataFrame,
    given: pd.Series | None,
    true_values: pd.Series | None,
    target: Target | None,
) -> pd.DataFrame:
    """The flagged samples by rank, with their given (and true) full truth and whether the
    truth says the given class is wrong."""
    table = issues.sort_values("rank", kind="stable").reset_index(drop=True).copy()
    ids = table["sample_id"].astype(str)
    table["given_full_truth"] = ids.map(given) if given is not None else None
    if true_values is not None:
        table["true_full_truth"] = ids.map(true_values)
        if target is not None:
            given_class = target.encode(table["given_full_truth"])
            true_class = target.encode(table["true_full_truth"])
            known = (given_class >= 0) & (true_class >= 0)
            table["truly_mislabelled"] = np.where(
                known, np.where(given_class != true_class, "yes", "no"), ""
            )
    return table


def write_review_csv(table: pd.DataFrame, path: Path) -> None:
    """The flagged samples of `review_table`, most suspicious first, with empty
    `corrected_label` and `comment` columns for the person who reviews them."""
    review = table[[c for c in REVIEW_COLUMNS if c in table]].copy()
    for column in REVIEWER_COLUMNS:
        review[column] = ""
    write_atomic(path, neutralised(review).to_csv(index=False, float_format="%.6g"))


def model_agreement(
    issues_paths: Iterable[Path], cells: pd.DataFrame, base_dir: Path
) -> pd.DataFrame:
    """Per issues file and per model of the grid (its raw cells' out-of-fold test
    predictions): the share of flagged samples whose given label the model disagrees with,
    the share where it predicts cleanlab's suggested class, and, for contrast, the share of
    unflagged samples it disagrees with.

    `cells` has one row per cell: its coordinates, `classes` (a JSON list) and
    `predictions` (the path of its predictions file, relative to `base_dir`).
    """
    rows = []
    raw = cells[cells["labels"] == "raw"] if not cells.empty else cells
    for path in map(Path, issues_paths):
        coords = issues_coordinates(path)
        issues = read_issues(path)
        flagged = set(issues["sample_id"].astype(str))
        suggested = dict(
            zip(issues["sample_id"].astype(str), issues["suggested_label"].astype(str), strict=True)
        )
        if raw.empty:
            continue
        mine = raw[np.logical_and.reduce([raw[c] == coords[c] for c in ISSUES_FILE_COORDINATES])]
        for model, group in mine.groupby("model", sort=True):
            oof = _read_predictions(group, base_dir)
            if oof is None:
                continue
            classes = np.asarray(json.loads(group["classes"].iloc[0]), dtype=object)
            ids = oof["sample_id"].astype(str).to_numpy()
            is_flagged = np.isin(ids, list(flagged))
            disagree = oof["pred_index"].to_numpy() != oof["label_index"].to_numpy()
            predicted = classes[oof["pred_index"].to_numpy()]
            says = np.array([suggested.get(i) for i in ids], dtype=object) == predicted
            rows.append(
                {
                    **coords,
                    "model": model,
                    "n_flagged": len(flagged),
                    "n_predicted": int(is_flagged.sum()),
                    "flagged_model_disagrees": _mean(disagree[is_flagged]),
                    "flagged_model_suggests": _mean(says[is_flagged]),
                    "unflagged_model_disagrees": _mean(disagree[~is_flagged]),
                }
            )
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _read_predictions(group: pd.DataFrame, base_dir: Path) -> pd.DataFrame | None:
    # Agreement is extra evidence for the reviewer: a cell without readable
    # predictions is left out rather than failing the summary.
    parts = []
    for relative in group["predictions"].dropna():
        try:
            parts.append(
                pd.read_parquet(
                    Path(base_dir) / str(relative),
                    columns=["sample_id", "label_index", "pred_index"],
                )
            )
        except (OSError, ValueError, KeyError):
            continue
    return pd.concat(parts, ignore_index=True) if parts else None


def flagged_overlap(issues_paths: Iterable[Path]) -> pd.DataFrame:
    """Per target, every pair of its issues files (channel sets, seeds): flagged counts,
    the count flagged by both and the Jaccard index."""
    sets: dict[str, list[tuple[str, set[str]]]] = {}
    for path in map(Path, issues_paths):
        coords = issues_coordinates(path)
        label = f"{coords['channels']} s{coords['seed']} k{coords['k']}"
        flagged = set(read_issues(path)["sample_id"].astype(str))
        sets.setdefault(coords["target"], []).append((label, flagged))
    rows = []
    for target, entries in sorted(sets.items()):
        for (a, fa), (b, fb) in itertools.combinations(sorted(entries, key=lambda e: e[0]), 2):
            union = fa | fb
            rows.append(
                {
                    "target": target,
                    "a": a,
                    "b": b,
                    "n_a": len(fa),
                    "n_b": len(fb),
                    "n_both": len(fa & fb),
                    "jaccard": len(fa & fb) / len(union) if union else math.nan,
                }
            )
    return pd.DataFrame(rows, columns=list(OVERLAP_COLUMNS))
