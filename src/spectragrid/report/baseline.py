"""Do the networks beat the classical baseline? Each network grid point against the best
classical grid point of its target, label set and seed, fold by fold.

Cell f of every model tests on the same fold f, so a network's and a
classical model's test metrics pair up fold by fold, as a raw cell's and its
clean twin's do, and the same paired test is used (raw_vs_clean.paired_p_value:
Wilcoxon signed-rank with at least 5 non-zero differences, a paired t-test
below that). A difference counts only at p below the study's level
(`report.significance`, SIGNIFICANCE by default); otherwise the
verdict is "no detectable difference", which says that these folds cannot
tell the two apart, not that they are equal. Fold differences are not
independent (the training folds overlap), so the p-values are approximate,
and the baseline is the best classical model on these same test folds,
which leans against a network: a network that "beats" it has cleared a
slightly high bar.
"""

from __future__ import annotations

import math

import pandas as pd

from spectragrid.report.raw_vs_clean import paired_p_value
from spectragrid.report.summary_tables import lower_is_better, mean_of, sd_of

SIGNIFICANCE = 0.05
# Grid points compared with each other share these; model and channels may differ.
BASELINE_KEYS: tuple[str, ...] = ("dataset", "labels", "target", "seed", "k")
VERDICTS = ("better", "worse", "no detectable difference", "cannot tell")
COLUMNS: tuple[str, ...] = (
    *BASELINE_KEYS,
    "model",
    "channels",
    "baseline_model",
    "baseline_channels",
    "metric",
    "network_mean",
    "network_sd",
    "baseline_mean",
    "baseline_sd",
    "diff_mean",
    "diff_sd",
    "diffs",
    "n_folds",
    "n_network_better",
    "p",
    "test",
    "smallest_p",
    "verdict",
)


def _classical(cells: pd.DataFrame) -> pd.Series:
    if "family" not in cells:
        return pd.Series(False, index=cells.index)
    return cells["family"].astype(str) == "classical"


def _network(cells: pd.DataFrame) -> pd.Series:
    if "family" not in cells:
        return pd.Series(False, index=cells.index)
    return cells["family"].astype(str) == "network"


def networks_vs_classical(
    cells: pd.DataFrame, metric: str, level: float = SIGNIFICANCE
) -> pd.DataFrame:
    """One row per network grid point (model, channels) that has a classical baseline:
    its paired difference (network - baseline) on `metric` and the verdict."""
    if cells.empty or metric not in cells or not _classical(cells).any():
        return pd.DataFrame(columns=list(COLUMNS))
    lower = lower_is_better(metric)
    rows = []
    for key, group in cells.groupby(list(BASELINE_KEYS), sort=True):
        baseline = _best_point(group[_classical(group)], metric, lower)
        if baseline is None:
            continue
        base_folds = _folds(group, baseline, metric)
        networks = group[_network(group)]
        for point, _ in networks.groupby(["model", "channels"], sort=True):
            net_folds = _folds(group, point, metric)
            paired = pd.concat([net_folds, base_folds], axis=1, join="inner").dropna()
            paired.columns = ["network", "baseline"]
            rows.append(_row(key, point, baseline, paired, metric, lower, level))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _best_point(classical: pd.DataFrame, metric: str, lower: bool) -> tuple[str, str] | None:
    if classical.empty:
        return None
    means = classical.groupby(["model", "channels"], sort=True)[metric].mean().dropna()
    if means.empty:
        return None
    return means.idxmin() if lower else means.idxmax()


def _folds(group: pd.DataFrame, point: tuple[str, str], metric: str) -> pd.Series:
    mine = group[(group["model"] == point[0]) & (group["channels"] == point[1])]
    return pd.to_numeric(mine.set_index("fold")[metric], errors="coerce").sort_index()


def _row(
    key: tuple,
    point: tuple[str, str],
    baseline: tuple[str, str],
    paired: pd.DataFrame,
    metric: str,
    lower: bool,
    level: float,
) -> dict:
    diff = paired["network"] - paired["baseline"]
    p, test = paired_p_value(paired["baseline"].to_numpy(), paired["network"].to_numpy())
    better = diff < 0 if lower else diff > 0
    n_nonzero = int((diff != 0).sum())
    row = dict(zip(BASELINE_KEYS, key, strict=True))
    row.update(
        model=point[0],
        channels=point[1],
        baseline_model=baseline[0],
        baseline_channels=baseline[1],
        metric=metric,
        network_mean=mean_of(paired["network"]),
        network_sd=sd_of(paired["network"]),
        baseline_mean=mean_of(paired["baseline"]),
        baseline_sd=sd_of(paired["baseline"]),
        diff_mean=mean_of(diff),
        diff_sd=sd_of(diff),
        diffs=" ".join(f"f{f}:{d:+.3f}" for f, d in diff.items()),
        n_folds=len(paired),
        n_network_better=int(better.sum()),
        p=p,
        test=test,
        # the signed-rank test cannot go below 2 / 2^n on n non-zero differences
        smallest_p=2.0 / 2**n_nonzero if test == "Wilcoxon" else math.nan,
        verdict=verdict(p, float(mean_of(diff)), lower, level),
    )
    return row


def verdict(p: float, diff_mean: float, lower: bool, level: float = SIGNIFICANCE) -> str:
    """`better` or `worse` (for the network) at p < `level`, `no detectable difference`
    above it, `cannot tell` without a p-value (under two paired folds)."""
    if math.isnan(p) or math.isnan(diff_mean):
        return "cannot tell"
    if p >= level or diff_mean == 0:
        return "no detectable difference"
    better = diff_mean < 0 if lower else diff_mean > 0
    return "better" if better else "worse"


def best_network_rows(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, labels, target, seed, k), the network point with the best mean."""
    if comparison.empty:
        return comparison
    chosen = []
    for _, group in comparison.groupby(list(BASELINE_KEYS), sort=True):
        means = pd.to_numeric(group["network_mean"], errors="coerce")
        if means.isna().all():
            continue
        lower = lower_is_better(str(group["metric"].iloc[0]))
        chosen.append(means.idxmin() if lower else means.idxmax())
    return comparison.loc[chosen].reset_index(drop=True)
