"""Which flagged samples one model's clean cells act on: its own model's veto.

The label issues of a (target, channel set, seed) come from the study's best
evidence, which may see far more than one model on one channel set does. A
flagged sample whose given label that model's own raw cells predict, out of
fold, is one the model finds consistent with its inputs: acting on it takes
away a sample the model learns from without removing noise it can see. On the
demo's one-channel cnn, dropping every flagged sample cost truth accuracy
under symmetric noise, while sparing those it predicts gained
(docs/label_cleaning.md has the figures).

The clean train job reads the K raw cells' test predictions of its own model
beside the issues file (`IssuesSource.own_predictions`) and marks each
flagged sample `acted` or not here, in memory: no job of its own, so a large
grid plans and starts no more jobs than without the veto.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.train.label_action import ACTED_COLUMN, IssuesSource, read_issues
from spectragrid.train.output_checksums import verify_cell


class VetoError(ValueError):
    """Raw predictions that cannot decide the veto: a flagged sample missing or repeated,
    or predicted under another label than the issues file gives it."""


def own_predictions(files: Sequence[Path]) -> pd.DataFrame:
    """Given label and predicted class of every sample, by sample_id, from one model's K
    raw cells (each tests on its own fold, so together they are out of fold)."""
    frames = []
    for path in files:
        table = pd.read_parquet(path, columns=["sample_id", "label", "label_index", "pred_index"])
        table["source"] = str(path)
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)
    table["sample_id"] = table["sample_id"].astype(str)
    repeated = table["sample_id"].duplicated(keep=False)
    if repeated.any():
        first = table[repeated].iloc[0]
        raise VetoError(
            f"sample {first['sample_id']!r} is predicted by more than one cell "
            f"(e.g. {first['source']}): the raw cells' test folds overlap"
        )
    return table.set_index("sample_id")


def mark_acted(issues: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """The issues, with `acted` False where the model predicts the given label."""
    ids = issues["sample_id"].astype(str)
    missing = ~ids.isin(predictions.index)
    if missing.any():
        raise VetoError(
            f"{int(missing.sum())} flagged sample(s) have no raw prediction of this model, "
            f"e.g. {ids[missing].iloc[0]!r}"
        )
    own = predictions.loc[ids.to_numpy()]
    given = issues["given_label"].astype(str).to_numpy()
    other_label = own["label"].astype(str).to_numpy() != given
    if other_label.any():
        at = int(np.flatnonzero(other_label)[0])
        raise VetoError(
            f"sample {ids.iloc[at]!r}: the issues give label {given[at]!r}, "
            f"the raw cell {own['source'].iloc[at]} trained with {own['label'].iloc[at]!r}; "
            "rerun the label-issues job"
        )
    predicts_given = own["pred_index"].to_numpy() == own["label_index"].to_numpy()
    marked = issues.copy()
    marked[ACTED_COLUMN] = ~predicts_given
    return marked


def read_acted_issues(source: IssuesSource, check_outputs: bool = True) -> pd.DataFrame:
    """The issues a clean cell acts on: every flagged sample, marked `acted` by the
    model's own raw predictions where the source names them (as they are otherwise).
    Read once for the K folds of a job (a rewritten file is read again)."""
    stats = tuple((s.st_size, s.st_mtime_ns) for s in (Path(p).stat() for p in source.files))
    return _read_acted_cached(source, stats, check_outputs).copy()


@functools.lru_cache(maxsize=1)
def _read_acted_cached(
    source: IssuesSource, stats: tuple[tuple[int, int], ...], check_outputs: bool
) -> pd.DataFrame:
    issues = read_issues(source.path)
    if not source.own_predictions:
        return issues
    if check_outputs:
        for path in source.own_predictions:
            verify_cell(Path(path).parent, names=[Path(path).name])
    try:
        return mark_acted(issues, own_predictions(source.own_predictions))
    except VetoError as err:
        raise VetoError(f"{source.path}: {err}") from None
