"""How well a set of flagged samples matches the samples that really are mislabelled.

A sample is truly mislabelled for a target when the target class of its given
full truth differs from the target class of its true full truth: for `OVA OK`
a `VR11` recorded as `VR5` is not a label error, a `VR11` recorded as `OK0` is.
Samples outside the target (on the given or the true side) cannot be judged
and are left out.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from spectragrid.data.targets import Target

__all__ = ["agreement_matrix", "detection_scores", "jaccard", "truly_mislabelled"]


def truly_mislabelled(
    given_full_truth: pd.Series, true_full_truth: pd.Series, target: Target
) -> pd.Series:
    """Boolean Series indexed by sample_id (in the order of `given_full_truth`): True where
    the given label's target class differs from the true label's.

    Both inputs are indexed by sample_id. Samples missing from either side, or
    outside the target on either side, are dropped.
    """
    given = pd.Series(
        np.asarray(given_full_truth, dtype=object), index=given_full_truth.index.astype(str)
    )
    true = pd.Series(
        np.asarray(true_full_truth, dtype=object), index=true_full_truth.index.astype(str)
    )
    for name, series in (("given_full_truth", given), ("true_full_truth", true)):
        if series.index.has_duplicates:
            first = series.index[series.index.duplicated()][0]
            raise ValueError(f"{name} repeats sample_id {first!r}")
    given = given[given.index.isin(true.index)]
    given_class = target.encode(given.astype(str))
    true_class = target.encode(true.reindex(given.index).astype(str))
    judged = (given_class >= 0) & (true_class >= 0)
    return pd.Series(
        given_class[judged] != true_class[judged],
        index=pd.Index(given.index[judged], name="sample_id"),
        name="truly_mislabelled",
        dtype=bool,
    )


def detection_scores(flagged: set[str], truly: pd.Series) -> dict:
    """Precision, recall and F1 of `flagged` against `truly` (from `truly_mislabelled`).

    Only flagged samples that `truly` can judge count: a flagged id with no
    known truth is neither a hit nor a false alarm. Precision is NaN when
    nothing judged is flagged, recall when nothing is truly mislabelled, F1
    when either is NaN (0.0 when both are 0).
    """
    judged = set(truly.index.astype(str))
    mislabelled = set(truly.index.astype(str)[truly.to_numpy(dtype=bool)])
    flagged = {str(s) for s in flagged} & judged
    hits = len(flagged & mislabelled)
    precision = hits / len(flagged) if flagged else math.nan
    recall = hits / len(mislabelled) if mislabelled else math.nan
    if math.isnan(precision) or math.isnan(recall):
        f1 = math.nan
    elif precision + recall == 0:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_flagged": len(flagged),
        "n_truly_mislabelled": len(mislabelled),
        "true_positives": hits,
    }


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b|; two empty sets agree completely (1.0)."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def agreement_matrix(sets: dict[str, set]) -> pd.DataFrame:
    """Pairwise Jaccard index of named sets, rows and columns in the order given."""
    names = list(sets)
    values = np.array([[jaccard(sets[a], sets[b]) for b in names] for a in names], dtype=float)
    return pd.DataFrame(
        values.reshape(len(names), len(names)),
        index=pd.Index(names, dtype=object),
        columns=pd.Index(names, dtype=object),
    )
