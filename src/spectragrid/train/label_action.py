"""What a clean cell does with the samples the label_issues rule flagged.

The issues file (`issues.csv`, one row per flagged sample with its given and
suggested class) is read here, on the training side, and acted on for a
cell's training and validation rows only: the test fold is never changed.
`read_issues` is the one reader of that file: the label-issues stage and the
report read it through here too, so they all agree on what it must hold. A
model's own veto (`spectragrid.train.own_model_veto`) adds an `acted` column in
memory: its clean cells act on the rows marked True only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.core.spreadsheet import restored

ACTIONS = ("drop", "relabel", "downweight")
# What every issues file holds, one row per flagged sample (more columns may follow).
ISSUES_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "given_label",
    "suggested_label",
    "label_quality",
    "rank",
)
# Added in memory by the own-model veto: False where a clean cell spares a flagged sample.
ACTED_COLUMN = "acted"


@dataclass(frozen=True)
class IssuesSource:
    """Where a clean cell's label issues come from: the issues file and, with the
    own-model veto (label_issues.own_model_veto), the test predictions of the K raw
    cells of the cell's own model."""

    path: Path
    own_predictions: tuple[Path, ...] = ()

    @property
    def files(self) -> list[Path]:
        """Every file the cell's cleaning reads: part of what it was made from."""
        return [Path(self.path), *(Path(p) for p in self.own_predictions)]


def issues_source(value: IssuesSource | Path | str | None) -> IssuesSource | None:
    """A source as given, or the issues file alone (no veto) from a path."""
    if value is None or isinstance(value, IssuesSource):
        return value
    return IssuesSource(Path(value))


class IssuesFileError(ValueError):
    """An issues file that cannot be read, or lacks a column every reader relies on."""


@dataclass(frozen=True)
class CleanedLabels:
    """Labels, kept rows and loss weights of a dataset after acting on its issues."""

    labels: np.ndarray  # int64 class index per row
    keep: np.ndarray  # bool per row
    weights: np.ndarray  # float32 loss weight per row
    flagged: np.ndarray  # bool per row: flagged, whether or not it could be acted on
    # bool per row: a flagged training or validation row left as it is, because
    # the cell's own model predicts its given label (own_model_veto)
    spared: np.ndarray


def apply_action(
    action: str,
    issues: pd.DataFrame,
    sample_ids: pd.Series,
    labels: np.ndarray,
    classes: list[str],
    editable: np.ndarray,
    weight: float = 0.1,
) -> CleanedLabels:
    """Drop, relabel or down-weight the flagged rows among the `editable` ones.

    `editable` marks the training and validation rows of a cell: test rows are
    never changed, whatever the issues say. Rows whose `acted` column (where the
    issues have one) is False are spared: flagged, but left as they are.
    """
    if action not in ACTIONS:
        raise ValueError(f"label_issues.action: {action!r} is not one of {', '.join(ACTIONS)}")
    ids = sample_ids.astype(str).to_numpy()
    flagged = np.isin(ids, issues["sample_id"].astype(str).to_numpy())
    acted = flagged & editable
    spared = np.zeros(len(ids), dtype=bool)
    if ACTED_COLUMN in issues:
        vetoed = issues.loc[~issues[ACTED_COLUMN].astype(bool), "sample_id"].astype(str)
        spared = acted & np.isin(ids, vetoed.to_numpy())
        acted &= ~spared
    labels = labels.copy()
    keep = np.ones(len(ids), dtype=bool)
    weights = np.ones(len(ids), dtype=np.float32)
    if action == "drop":
        keep[acted] = False
    elif action == "downweight":
        weights[acted] = weight
    else:
        index = {name: i for i, name in enumerate(classes)}
        suggested = issues.set_index(issues["sample_id"].astype(str))["suggested_label"].astype(str)
        unknown = set(suggested) - set(index)
        if unknown:
            raise ValueError(f"issues suggest classes {sorted(unknown)} outside {classes}")
        labels[acted] = suggested.reindex(ids[acted]).map(index).to_numpy(dtype=np.int64)
    return CleanedLabels(labels=labels, keep=keep, weights=weights, flagged=flagged, spared=spared)


def read_issues(path: Path) -> pd.DataFrame:
    """The flagged samples of one issues file, ids and class names as text."""
    try:
        issues = pd.read_csv(
            path, dtype={"sample_id": str, "given_label": str, "suggested_label": str}
        )
    except (OSError, ValueError) as err:
        raise IssuesFileError(f"{path}: cannot read label issues ({err})") from None
    missing = [c for c in ISSUES_COLUMNS if c not in issues]
    if missing:
        raise IssuesFileError(f"{path}: missing column(s) {missing}; have {list(issues)}")
    return restored(issues)
