"""Choosing among candidates on the validation rows only."""

import math

import numpy as np
import pytest

from spectragrid.core.metrics import validation_scores
from spectragrid.train.classical.families import Family
from spectragrid.train.classical.heads import AffineHead
from spectragrid.train.classical.selection import candidate_grid, candidate_scores, select


class Threshold:
    """Class 1 when the first feature exceeds the candidate's threshold."""

    def __init__(self, candidate: dict, seed: int, threads: int) -> None:
        self.t = candidate["t"]
        self.fitted_on = None

    def fit(self, x, y, weight):
        self.fitted_on = len(y)

    def predict_proba(self, x):
        p = (x[:, 0] > self.t).astype(np.float64) * 0.8 + 0.1
        return np.stack([1 - p, p], axis=1)

    def head(self):
        return AffineHead(np.zeros((2, 1)), np.zeros(2))


THRESHOLD = Family(Threshold, ("t",), True, "a threshold on the first feature")


def rows(values, labels):
    return np.asarray(values, dtype=np.float64)[:, None], np.asarray(labels)


def test_the_grid_is_every_combination_in_the_listed_order():
    grid = candidate_grid({"a": [1, 2], "b": ["x", "y"], "fixed": 7}, ("a", "b"))
    assert grid == [
        {"fixed": 7, "a": 1, "b": "x"},
        {"fixed": 7, "a": 1, "b": "y"},
        {"fixed": 7, "a": 2, "b": "x"},
        {"fixed": 7, "a": 2, "b": "y"},
    ]


def test_the_validation_rows_choose_even_where_the_test_rows_would_not():
    train = (*rows([0, 1, 2, 3], [0, 0, 1, 1]), None)
    val = rows([0.5, 1.5, 2.5], [0, 1, 1])  # t = 1 separates these
    test_x, test_y = rows([0.5, 1.5, 2.5], [0, 0, 1])  # t = 2 separates those
    selection = select(THRESHOLD, {"t": [2.0, 1.0, 0.0]}, train, val, 2, "val_macro_f1", 0, 1)
    assert selection.chosen.params == {"t": 1.0} and selection.chosen.number == 2
    assert selection.model.fitted_on == 4
    on_test = {
        c.params["t"]: validation_scores(
            test_y, Threshold(c.params, 0, 1).predict_proba(test_x).argmax(1), 2
        )["macro_f1"]
        for c in selection.candidates
    }
    assert max(on_test, key=on_test.get) == 2.0  # the test fold would have chosen another
    assert [c.scores["val_macro_f1"] for c in selection.candidates] == pytest.approx(
        [
            validation_scores(val[1], np.array(p), 2)["macro_f1"]
            for p in ([0, 0, 1], [0, 1, 1], [1, 1, 1])
        ]
    )


def test_a_tie_keeps_the_earlier_candidate():
    train = (*rows([0, 1], [0, 1]), None)
    val = rows([0.5, 5.0], [0, 1])  # t = 1 and t = 2 both separate them
    selection = select(THRESHOLD, {"t": [2.0, 1.0]}, train, val, 2, "val_accuracy", 0, 1)
    assert selection.chosen.params == {"t": 2.0}


def test_without_validation_rows_the_first_candidate_is_kept():
    train = (*rows([0, 1], [0, 1]), None)
    selection = select(THRESHOLD, {"t": [0.0, 1.0]}, train, rows([], []), 2, "val_macro_f1", 0, 1)
    assert selection.chosen.number == 1
    assert math.isnan(selection.candidates[0].scores["val_macro_f1"])


def test_validation_rows_carry_the_loss_and_the_monitored_metrics():
    y = np.array([0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    row = candidate_scores(y, proba, 2)
    assert row["val_loss"] == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.4)) / 3)
    assert row["val_accuracy"] == pytest.approx(2 / 3)


def test_a_fit_that_warns_is_recorded_with_its_warning():
    from spectragrid.train.classical.families import FAMILY_REGISTRY

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = (x[:, 0] + rng.normal(0, 0.5, 60) > 0).astype(int)
    selection = select(
        FAMILY_REGISTRY["logreg"],
        {"C": [1.0], "max_iter": 1},
        (x, y, None),
        (x, y),
        2,
        "val_macro_f1",
        0,
        1,
    )
    assert any(w.startswith("ConvergenceWarning") for w in selection.chosen.warnings)
