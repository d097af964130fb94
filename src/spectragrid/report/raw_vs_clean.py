"""Did label cleaning help? Each clean cell against its raw twin, fold by fold.

A raw cell and its clean twin share every coordinate but `labels`, and the
clean cell is tested on exactly the raw cell's test fold, so their metrics
pair up fold by fold (docs/lab_facts.md, "Label noise"). The clean cells'
`unflagged_` metrics (their test fold without the flagged samples) come
along, kept apart: that easier test is not comparable.

A verdict says "helped" or "hurt" only when the paired test over the folds
(and seeds, when pooled) is significant at the study's level
(`report.significance`); otherwise "no detectable difference", which says
these folds cannot tell raw from clean apart, not that they are equal. The
interval beside it is the t interval of the mean paired difference at the
same level. Fold differences are not independent (training folds overlap), so
p-values and intervals are approximate. Where a truth file scores the cells,
the verdict is taken on the truth metric: the given test labels carry the
very noise cleaning removes, and a cleaned model that predicts the true class
of a mislabelled test sample is marked wrong by them.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from spectragrid.report.summary_tables import PAIR_KEYS, lower_is_better, mean_sd_by_group

PAIRED_METRICS: tuple[str, ...] = (
    "test_accuracy",
    "test_balanced_accuracy",
    "test_macro_f1",
    "test_auc",
    "test_log_loss",
    "test_ece",
    "test_hter",
    "truth_accuracy",
    "truth_balanced_accuracy",
    "truth_macro_f1",
    "truth_auc",
    "truth_log_loss",
    "truth_ece",
    "truth_hter",
)
VERDICTS = ("helped", "hurt", "no detectable difference", "cannot tell")
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


def cleaning_verdict(p: float, diff_mean: float, lower: bool, level: float) -> str:
    """`helped` or `hurt` at p < `level`, `no detectable difference` above it, `cannot
    tell` without a p-value (under two pairs). `lower`: smaller values are better."""
    if math.isnan(p) or math.isnan(diff_mean):
        return "cannot tell"
    if p >= level or diff_mean == 0:
        return "no detectable difference"
    better = diff_mean < 0 if lower else diff_mean > 0
    return "helped" if better else "hurt"


def mean_interval(diff: np.ndarray, level: float) -> tuple[float, float]:
    """The two-sided (1 - level) t interval of the mean of `diff` (NaN under two values)."""
    diff = np.asarray(diff, dtype=np.float64)
    diff = diff[np.isfinite(diff)]
    if len(diff) < 2:
        return math.nan, math.nan
    half = stats.t.ppf(1 - level / 2, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff))
    return float(diff.mean() - half), float(diff.mean() + half)


def verdict_metric(metric: str, paired: pd.DataFrame) -> str:
    """The metric a raw/clean verdict is taken on: the truth counterpart of a `test_`
    metric where the pairs carry it (a truth file scored the cells), else the metric."""
    truth = "truth_" + metric.removeprefix("test_")
    column = f"{truth}_diff_mean"
    if column in paired and pd.to_numeric(paired[column], errors="coerce").notna().any():
        return truth
    return metric


def paired_raw_clean(
    cells: pd.DataFrame, level: float = 0.05, pool_seeds: bool = False
) -> pd.DataFrame:
    """Clean cells against their raw twins, fold by fold, per (dataset, target, channels,
    model, seed, k), or with `pool_seeds` per (dataset, target, channels, model, k) with
    the pairs of every seed in one test (`seed` is then -1).

    Per metric m: `m_raw_mean/_sd`, `m_clean_mean/_sd`, `m_diff_mean/_sd` (clean - raw),
    `m_diffs` (per fold), `m_p` and `m_test`, `m_ci_low/_high` (the (1 - level) interval
    of the mean difference) and `m_verdict` (`cleaning_verdict` at `level`). The clean
    cells' `unflagged_` metrics come as `<name>_clean_mean/_sd`.
    """
    if pool_seeds and not cells.empty:
        # one pooled "seed" per grid point; each (seed, fold) becomes one pair
        cells = cells.assign(fold=cells["seed"].astype(str) + "/" + cells["fold"].astype(str))
        cells = cells.assign(seed=-1)
    keys = [*PAIR_KEYS, "fold"]
    metrics = [m for m in PAIRED_METRICS if m in cells]
    unflagged = [m for m in UNFLAGGED_METRICS if m in cells]
    columns = [*PAIR_KEYS, "n_folds", "folds", "n_removed_flagged_mean"]
    for m in PAIRED_METRICS:
        columns += [f"{m}_{s}" for s in ("raw_mean", "raw_sd", "clean_mean", "clean_sd")]
        columns += [f"{m}_{s}" for s in ("diff_mean", "diff_sd", "diffs", "p", "test")]
        columns += [f"{m}_{s}" for s in ("ci_low", "ci_high", "verdict")]
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
            p, row[f"{m}_test"] = paired_p_value(
                arrays[f"{m}_raw"][where], arrays[f"{m}_clean"][where]
            )
            row[f"{m}_p"] = p
            row[f"{m}_ci_low"], row[f"{m}_ci_high"] = mean_interval(diff, level)
            finite = diff[np.isfinite(diff)]
            mean = float(finite.mean()) if len(finite) else math.nan
            row[f"{m}_verdict"] = cleaning_verdict(p, mean, lower_is_better(m), level)
        per_pair.append(row)
    frame = pd.concat([pd.DataFrame(summary), pd.DataFrame(per_pair, index=pairs)], axis=1)
    return frame.rename_axis(list(PAIR_KEYS)).reset_index().reindex(columns=columns)
