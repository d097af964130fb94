"""What k folds cannot do with these labels and groups, said in the user's terms.

Folds are stratified on the full truth (docs/lab_facts.md, "Training
practice"): each full-truth value is spread over the k folds. A value with
fewer than k samples, or whose samples lie in fewer than k groups (a
group's replicates stay in one fold), cannot be in every fold: some test
folds hold none of it, and scikit-learn only says "The least populated
class in y has only 4 members, which is less than n_splits=5". The study
still runs, so these are notices: the ingest job logs them and writes them
into the cleaning report, whose notices the summary shows.
"""

from __future__ import annotations

import pandas as pd

from spectragrid.data.targets import is_one_column, sorted_labels

__all__ = ["MAX_NOTICES", "fold_notices"]

# A data set with hundreds of rare labels needs the pattern, not every line.
MAX_NOTICES = 30


def fold_notices(table: pd.DataFrame, k: int, grouped: bool, group_column: str | None) -> list[str]:
    """One line per full-truth value that k folds cannot spread, in class order."""
    what = "label" if is_one_column(table) else "full truth"
    counts = table["full_truth"].astype(str).value_counts()
    groups = (
        table.groupby(table["full_truth"].astype(str))["group"].nunique()
        if grouped and group_column is not None
        else counts
    )
    notices = []
    for value in sorted_labels(counts.index, is_one_column(table)):
        n, g = int(counts[value]), int(groups[value])
        if n < k:
            notices.append(
                f"{what} {value!r} has {n} sample{'s' if n != 1 else ''}, fewer than "
                f"splits.k = {k}: {k - n} of the {k} test folds hold none of it, and a target "
                f"class with fewer than {k} samples fails its cells (merge the class into "
                "another, leave it out of the targets, or lower splits.k)"
            )
        elif g < k:
            notices.append(
                f"{what} {value!r}: its {n} samples lie in {g} group{'s' if g != 1 else ''} of "
                f"{group_column!r} (dataset.columns.group), whose samples stay in one fold, "
                f"so only {g} of the {k} test folds hold it"
            )
    if len(notices) > MAX_NOTICES:
        notices = [*notices[:MAX_NOTICES], f"and {len(notices) - MAX_NOTICES} more such notices"]
    return notices
