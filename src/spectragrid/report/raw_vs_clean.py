"""Did label cleaning help? Each clean cell against its raw twin, fold by fold.

A raw cell and its clean twin share every coordinate but `labels`, and the
clean cell is tested on exactly the raw cell's test fold, so their metrics
pair up fold by fold (docs/domain.md, "Label noise"). The clean cells'
`unflagged_` metrics (their test fold without the flagged samples) come
along, kept apart: that easier test is not comparable.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from spectragrid.report.summary_tables import PAIR_KEYS, mean_of, sd_of

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
UNFLAGGED_METRICS: tuple[str, ...] = (
    "unflagged_accuracy",
    "unflagged_macro_f1",
    "unflagged_balanced_accuracy",
)
# Below this many non-zero differences the signed-rank test cannot reach a small p-value.
WILCOXON_MIN_PAIRS = 5


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
        row["n_removed_flagged_mean"] = mean_of(group["n_removed_flagged"])
        for m in PAIRED_METRICS:
            if m not in metrics:
                continue
            r, c = group[f"{m}_raw"], group[f"{m}_clean"]
            diff = c - r
            row[f"{m}_raw_mean"], row[f"{m}_raw_sd"] = mean_of(r), sd_of(r)
            row[f"{m}_clean_mean"], row[f"{m}_clean_sd"] = mean_of(c), sd_of(c)
            row[f"{m}_diff_mean"], row[f"{m}_diff_sd"] = mean_of(diff), sd_of(diff)
            row[f"{m}_diffs"] = " ".join(
                f"f{f}:{d:+.3f}" for f, d in zip(group["fold"], diff, strict=True) if np.isfinite(d)
            )
            row[f"{m}_p"], row[f"{m}_test"] = paired_p_value(r.to_numpy(), c.to_numpy())
        for m in unflagged:
            row[f"{m}_clean_mean"], row[f"{m}_clean_sd"] = mean_of(group[m]), sd_of(group[m])
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
