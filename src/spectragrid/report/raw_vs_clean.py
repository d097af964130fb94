"""Did label cleaning help? Each clean cell against its raw twin, fold by fold.

A raw cell and its clean twin share every coordinate but `labels`, and the
clean cell is tested on exactly the raw cell's test fold, so their metrics
pair up fold by fold (docs/domain.md, "Label noise"). The clean cells'
`unflagged_` metrics (their test fold without the flagged samples) come
along, kept apart: that easier test is not comparable.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from spectragrid.report.summary_tables import PAIR_KEYS, mean_sd_by_group

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


def _signed_ranks(diff: np.ndarray) -> tuple[float, ...]:
    """The differences as sorted signed ranks (zeros stay 0): all the signed-rank test
    sees of them, so equal keys have equal p-values."""
    ranks = np.sign(diff) * stats.rankdata(np.abs(diff))
    return tuple(float(r) for r in np.sort(ranks))


@functools.lru_cache(maxsize=4096)
def _wilcoxon_p(signed_ranks: tuple[float, ...]) -> float:
    # Five folds have a few dozen sign patterns: at 1,000 cells, hundreds of pairs and
    # metrics share them, and scipy's exact test costs milliseconds a call.
    return float(stats.wilcoxon(np.asarray(signed_ranks)).pvalue)


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
            return _wilcoxon_p(_signed_ranks(diff)), "Wilcoxon"
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
    if merged.empty:
        return pd.DataFrame(columns=columns)
    # Plain arrays per pair, not a pandas call per pair and metric: that cost seconds at
    # 1,000 cells.
    frames = {"n_removed_flagged_mean": merged["n_removed_flagged"]}
    for m in metrics:
        frames[f"{m}_raw"] = merged[f"{m}_raw"]
        frames[f"{m}_clean"] = merged[f"{m}_clean"]
        frames[f"{m}_diff"] = merged[f"{m}_clean"] - merged[f"{m}_raw"]
    for m in unflagged:
        frames[f"{m}_clean"] = merged[m]
    numbers = pd.DataFrame(frames).apply(pd.to_numeric, errors="coerce").astype(np.float64)
    grouped = merged.groupby(list(PAIR_KEYS), sort=True)
    pairs = grouped.size().index
    positions = [grouped.indices[key] for key in pairs]
    mean_values, sd_values = mean_sd_by_group(numbers.to_numpy(), positions)
    means = pd.DataFrame(mean_values, index=pairs, columns=numbers.columns)
    sds = pd.DataFrame(sd_values, index=pairs, columns=numbers.columns)
    summary = {"n_removed_flagged_mean": means["n_removed_flagged_mean"]}
    for m in metrics:
        for part in ("raw", "clean", "diff"):
            summary[f"{m}_{part}_mean"] = means[f"{m}_{part}"]
            summary[f"{m}_{part}_sd"] = sds[f"{m}_{part}"]
    for m in unflagged:
        summary[f"{m}_clean_mean"] = means[f"{m}_clean"]
        summary[f"{m}_clean_sd"] = sds[f"{m}_clean"]
    folds = merged["fold"].to_numpy()
    arrays = {c: numbers[c].to_numpy() for c in numbers}
    per_pair = []
    for where in positions:
        row: dict = {"n_folds": len(where), "folds": ",".join(str(f) for f in folds[where])}
        for m in metrics:
            diff = arrays[f"{m}_diff"][where]
            row[f"{m}_diffs"] = " ".join(
                f"f{f}:{d:+.3f}" for f, d in zip(folds[where], diff, strict=True) if np.isfinite(d)
            )
            row[f"{m}_p"], row[f"{m}_test"] = paired_p_value(
                arrays[f"{m}_raw"][where], arrays[f"{m}_clean"][where]
            )
        per_pair.append(row)
    frame = pd.concat([pd.DataFrame(summary), pd.DataFrame(per_pair, index=pairs)], axis=1)
    return frame.rename_axis(list(PAIR_KEYS)).reset_index().reindex(columns=columns)
