"""Business cost of auto-accepting samples (docs/lab_facts.md, "Business cost").

The sorting use case: a binary target whose first class is the "accept" class
(e.g. `OVA OK`). Accepting a sample means predicting class 0 (argmax) with
p(class 0) >= t. A wrong acceptance costs according to the sample's full
truth (its given full truth, the only one known in production):

    cost(t) = sum over accepted samples of cost[full_truth]

The table (`report.costs`, whose default is the config schema's) maps full
truths to costs. A key ending in `*` is a prefix pattern (`NC*` matches NC1,
NC11, …); an exact key wins over any pattern and the longest matching prefix
wins among patterns. A full truth that nothing
matches costs 0 and is listed as unmatched, so a gap in the table is visible
instead of silently cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


class CostError(ValueError):
    """A cost table that cannot be read as configured."""


@dataclass(frozen=True)
class CostTable:
    exact: tuple[tuple[str, float], ...]
    # (prefix, cost, key as written), longest prefix first
    patterns: tuple[tuple[str, float, str], ...]

    @classmethod
    def from_config(cls, config: Mapping) -> CostTable:
        """From the validated `report.costs`."""
        exact: list[tuple[str, float]] = []
        patterns: list[tuple[str, float, str]] = []
        for key, value in config.items():
            key = str(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CostError(f"report.costs[{key!r}] must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                raise CostError(f"report.costs[{key!r}] must be finite, got {value!r}")
            if "*" in key[:-1]:
                raise CostError(
                    f"report.costs key {key!r}: '*' is only allowed at the end (a prefix)"
                )
            if key.endswith("*"):
                patterns.append((key[:-1], float(value), key))
            else:
                exact.append((key, float(value)))
        patterns.sort(key=lambda p: (-len(p[0]), p[0]))
        return cls(tuple(exact), tuple(patterns))

    def lookup(self, full_truth: str) -> tuple[float, str | None]:
        """(cost, the key that matched); (0, None) when nothing matches."""
        for key, value in self.exact:
            if key == full_truth:
                return value, key
        for prefix, value, key in self.patterns:
            if full_truth.startswith(prefix):
                return value, key
        return 0.0, None

    def costs(self, full_truth: Iterable[str]) -> tuple[np.ndarray, list[str]]:
        """Cost per sample and the sorted distinct full truths no key matched."""
        values = [str(v) for v in full_truth]
        table = {v: self.lookup(v) for v in set(values)}
        cost = np.array([table[v][0] for v in values], dtype=np.float64)
        unmatched = sorted(v for v, (_, key) in table.items() if key is None)
        return cost, unmatched

    def as_rows(self) -> list[tuple[str, float]]:
        """The table as configured: exact keys, then patterns (most specific first)."""
        return [*self.exact, *((key, value) for _, value, key in self.patterns)]


@dataclass(frozen=True)
class CostCurve:
    """cost(t) at every distinct p(class 0) of the samples predicted as class 0.

    `points` columns: threshold (ascending), n_accepted, cost, accept_fraction (of the
    class-0 samples by given label). Above the last threshold nothing is accepted
    (cost 0). `best_threshold` is the minimum-cost cutoff (ties: the lowest, which
    accepts the most samples at that cost); +inf when accepting nothing is cheapest.
    """

    points: pd.DataFrame
    best_threshold: float
    best_cost: float
    best_n_accepted: int
    best_accept_fraction: float
    argmax_cost: float
    unmatched: list[str]
    breakdown: pd.DataFrame
    n_class0: int


def cost_curve(
    full_truth: Iterable[str],
    label_index: np.ndarray,
    proba: np.ndarray,
    table: CostTable,
) -> CostCurve:
    """The cost curve of a binary target (see the module docstring)."""
    truth = np.asarray([str(v) for v in full_truth], dtype=object)
    y = np.asarray(label_index, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != 2:
        raise CostError(f"the cost curve needs a binary target, got {proba.shape[1]} classes")
    if not len(truth) == len(y) == len(proba):
        raise CostError("full truth, labels and probabilities differ in length")
    cost, unmatched = table.costs(truth)
    p0 = proba[:, 0]
    candidate = proba.argmax(axis=1) == 0
    n_class0 = int((y == 0).sum())

    thresholds = np.unique(p0[candidate])
    order = np.argsort(p0[candidate], kind="stable")
    sorted_p = p0[candidate][order]
    sorted_cost = cost[candidate][order]
    sorted_ok = (y[candidate] == 0)[order]
    # Accepted at t = the candidates with p0 >= t: a suffix of the ascending order.
    start = np.searchsorted(sorted_p, thresholds, side="left")
    suffix_cost = np.concatenate([np.cumsum(sorted_cost[::-1])[::-1], [0.0]])
    suffix_ok = np.concatenate([np.cumsum(sorted_ok[::-1])[::-1], [0]])
    n_accepted = len(sorted_p) - start
    costs = suffix_cost[start]
    fraction = suffix_ok[start] / n_class0 if n_class0 else np.full(len(start), math.nan)
    points = pd.DataFrame(
        {
            "threshold": thresholds,
            "n_accepted": n_accepted.astype(np.int64),
            "cost": costs,
            "accept_fraction": fraction,
        }
    )
    if len(points) and costs.min() <= 0:
        i = int(np.flatnonzero(costs == costs.min())[0])
        best = (float(thresholds[i]), float(costs[i]), int(n_accepted[i]), float(fraction[i]))
    else:
        best = (math.inf, 0.0, 0, 0.0 if n_class0 else math.nan)
    accepted = candidate & (p0 >= best[0])
    breakdown = _breakdown(truth, cost, accepted, candidate, table)
    return CostCurve(
        points=points,
        best_threshold=best[0],
        best_cost=best[1],
        best_n_accepted=best[2],
        best_accept_fraction=best[3],
        argmax_cost=float(cost[candidate].sum()),
        unmatched=unmatched,
        breakdown=breakdown,
        n_class0=n_class0,
    )


def _breakdown(
    truth: np.ndarray,
    cost: np.ndarray,
    accepted: np.ndarray,
    candidate: np.ndarray,
    table: CostTable,
) -> pd.DataFrame:
    """Per full truth: unit cost, matching key, test samples, accepted by argmax alone and
    at the minimum-cost cutoff, and the cost at that cutoff."""
    frame = pd.DataFrame(
        {
            "full_truth": truth,
            "unit_cost": cost,
            "n": 1,
            "accepted_argmax": candidate.astype(np.int64),
            "accepted": accepted.astype(np.int64),
        }
    )
    grouped = (
        frame.groupby("full_truth", sort=True)
        .agg(
            unit_cost=("unit_cost", "first"),
            n=("n", "sum"),
            accepted_argmax=("accepted_argmax", "sum"),
            accepted=("accepted", "sum"),
        )
        .reset_index()
    )
    grouped["key"] = [table.lookup(v)[1] or "(unmatched: 0)" for v in grouped["full_truth"]]
    grouped["cost"] = grouped["unit_cost"] * grouped["accepted"]
    return grouped[["full_truth", "key", "unit_cost", "n", "accepted_argmax", "accepted", "cost"]]
