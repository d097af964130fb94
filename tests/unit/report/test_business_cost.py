"""The business-cost table and curve against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from report_cases import default_costs, schema_report

from spectragrid.report.business_cost import CostError, CostTable, cost_curve


def test_default_table_matches_domain_figures() -> None:
    table = default_costs()
    expected = {
        "OK0": -1,
        "CROCHET0": 0,
        "NC1": 100,
        "NC11": 100,
        "VR5": 50,
        "VR2": 20,
        "VR14": 20,  # exact key beats the VR* pattern
        "VR1": 10,
        "VR11": 10,
        "VR12": 10,
    }
    for truth, cost in expected.items():
        assert table.lookup(truth)[0] == cost, truth
    assert table.lookup("VR14") == (20, "VR14")
    assert table.lookup("VR13") == (10, "VR*")
    assert table.lookup("OK1") == (0.0, None)
    assert dict(table.as_rows()) == {k: float(v) for k, v in schema_report()["costs"].items()}


def test_longest_pattern_wins_and_unmatched_are_listed() -> None:
    table = CostTable.from_config({"V*": 1, "VR1*": 3, "VR*": 2, "X": 7})
    assert table.lookup("VR11") == (3, "VR1*")
    assert table.lookup("VR2") == (2, "VR*")
    assert table.lookup("VX") == (1, "V*")
    costs, unmatched = table.costs(["X", "VR2", "OK0", "Q", "OK0"])
    assert costs.tolist() == [7, 2, 0, 0, 0]
    assert unmatched == ["OK0", "Q"]


def test_bad_tables_are_refused() -> None:
    with pytest.raises(CostError, match="only allowed at the end"):
        CostTable.from_config({"N*C": 1})
    with pytest.raises(CostError, match="number"):
        CostTable.from_config({"NC*": "a lot"})
    with pytest.raises(CostError, match="number"):
        CostTable.from_config({"NC*": True})


# Hand-computed case: classes (OK, rest).
#  i  full truth  given  p(OK)  cost
#  0  OK0         OK     0.95   -1
#  1  OK0         OK     0.80   -1
#  2  NC4         rest   0.90   100
#  3  VR5         rest   0.60   50
#  4  CROCHET0    rest   0.70   0
#  5  VR11        rest   0.30   (predicted rest: never accepted)
#  6  OK0         OK     0.40   (predicted rest: never accepted)
#  7  XX9         rest   0.85   0 (unmatched)
TRUTH = ["OK0", "OK0", "NC4", "VR5", "CROCHET0", "VR11", "OK0", "XX9"]
GIVEN = np.array([0, 0, 1, 1, 1, 1, 0, 1])
P_OK = np.array([0.95, 0.80, 0.90, 0.60, 0.70, 0.30, 0.40, 0.85])


def test_cost_curve_hand_computed() -> None:
    proba = np.column_stack([P_OK, 1 - P_OK])
    curve = cost_curve(TRUTH, GIVEN, proba, default_costs())
    points = curve.points
    # accepted at t: the predicted-OK samples with p(OK) >= t
    assert points["threshold"].tolist() == [0.60, 0.70, 0.80, 0.85, 0.90, 0.95]
    assert points["n_accepted"].tolist() == [6, 5, 4, 3, 2, 1]
    # 0.60: -1 -1 +100 +50 +0 +0; 0.70 drops VR5; 0.80 drops CROCHET0; 0.85 drops an OK0;
    # 0.90 drops XX9; 0.95 drops NC4
    assert points["cost"].tolist() == [148, 98, 98, 99, 99, -1]
    assert points["accept_fraction"].tolist() == pytest.approx([2 / 3] * 3 + [1 / 3] * 3)
    assert curve.best_threshold == 0.95 and curve.best_cost == -1
    assert curve.best_n_accepted == 1 and curve.best_accept_fraction == pytest.approx(1 / 3)
    assert curve.argmax_cost == 148
    assert curve.unmatched == ["XX9"]
    assert curve.n_class0 == 3
    breakdown = curve.breakdown.set_index("full_truth")
    assert breakdown.loc["OK0", "n"] == 3
    assert breakdown.loc["OK0", "accepted_argmax"] == 2
    assert breakdown.loc["OK0", "accepted"] == 1 and breakdown.loc["OK0", "cost"] == -1
    assert breakdown.loc["NC4", "key"] == "NC*" and breakdown.loc["NC4", "accepted"] == 0
    assert breakdown.loc["XX9", "key"].startswith("(unmatched")
    assert breakdown["cost"].sum() == curve.best_cost


def test_cost_curve_ties_go_to_the_lowest_cutoff() -> None:
    # OK0 at 0.9 (-1) and CROCHET0 at 0.8 (0): cost -1 at both cutoffs; 0.8 accepts more.
    proba = np.array([[0.9, 0.1], [0.8, 0.2]])
    curve = cost_curve(["OK0", "CROCHET0"], np.array([0, 1]), proba, default_costs())
    assert curve.points["cost"].tolist() == [-1, -1]
    assert curve.best_threshold == 0.8 and curve.best_n_accepted == 2


def test_cost_curve_accepting_nothing_when_every_cutoff_costs() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    curve = cost_curve(["NC1", "OK0"], np.array([1, 0]), proba, default_costs())
    assert curve.points["cost"].tolist() == [100]
    assert math.isinf(curve.best_threshold) and curve.best_cost == 0
    assert curve.best_n_accepted == 0 and curve.best_accept_fraction == 0
    assert curve.breakdown["accepted"].sum() == 0


def test_cost_curve_refuses_multiclass() -> None:
    with pytest.raises(CostError, match="binary"):
        cost_curve(["OK0"], np.array([0]), np.array([[0.5, 0.3, 0.2]]), default_costs())
