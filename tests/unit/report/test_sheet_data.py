from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from report_cases import default_costs, default_rule
from sheet_cases import (
    ERR_CLASSES,
    ERR_PROBA,
    ERR_TRUTH,
    ERR_Y,
    err_predictions,
    fake_predictions,
)

from spectragrid.report.business_cost import CostTable
from spectragrid.report.sheet_data import (
    arrays,
    confusion_with_margins,
    error_contributions,
    sheet_data,
)


def test_confusion_with_margins_hand_computed() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 1, 0, 1, 1, 1])
    counts, recall, precision, accuracy = confusion_with_margins(y, pred, 3)
    np.testing.assert_array_equal(counts, [[2, 1, 0], [0, 2, 0], [0, 1, 0]])
    np.testing.assert_allclose(recall, [2 / 3, 1.0, 0.0])
    # column 2 is never predicted: its precision does not exist
    np.testing.assert_allclose(precision[:2], [1.0, 0.5])
    assert math.isnan(precision[2])
    assert accuracy == pytest.approx(4 / 6)


def test_confusion_with_margins_absent_row_and_empty() -> None:
    counts, recall, precision, accuracy = confusion_with_margins(
        np.array([0, 0]), np.array([0, 1]), 3
    )
    assert counts.sum() == 2
    assert math.isnan(recall[1]) and math.isnan(recall[2])
    assert precision[0] == 1.0 and precision[1] == 0.0
    assert accuracy == 0.5
    _, _, _, empty = confusion_with_margins(np.array([], int), np.array([], int), 2)
    assert math.isnan(empty)


def test_confusion_with_margins_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="class indices"):
        confusion_with_margins(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_with_margins(np.array([0, 1]), np.array([0]), 2)


def test_error_contributions_hand_computed_rows_and_statistics() -> None:
    errors = error_contributions(ERR_TRUTH, ERR_Y, ERR_PROBA, ERR_CLASSES)
    rows = list(errors[["full_truth", "predicted", "count"]].itertuples(index=False, name=None))
    # largest count first; ties by full truth, then predicted class
    assert rows == [("A1", "B", 3), ("B0", "A", 2), ("A1", "C", 1), ("A2", "C", 1), ("C0", "A", 1)]
    assert errors["share"].tolist() == pytest.approx([3 / 8, 2 / 8, 1 / 8, 1 / 8, 1 / 8])
    first = errors.iloc[0]  # samples 0, 1, 8
    assert first["p_true_mean"] == pytest.approx((0.20 + 0.40 + 0.35) / 3)
    assert first["p_true_sd"] == pytest.approx(np.std([0.20, 0.40, 0.35], ddof=1))
    assert first["p_pred_mean"] == pytest.approx(0.6)
    assert first["p_pred_sd"] == pytest.approx(0.1)
    second = errors.iloc[1]  # samples 3, 7
    assert second["p_true_mean"] == pytest.approx(0.25)
    assert second["p_pred_mean"] == pytest.approx(0.65)
    assert second["p_true_sd"] == pytest.approx(np.std([0.3, 0.2], ddof=1))
    # single-sample groups: their own scores, and no sd
    singles = errors.iloc[2:].set_index(["full_truth", "predicted"])
    assert singles.loc[("A1", "C"), "p_true_mean"] == pytest.approx(0.30)
    assert singles.loc[("A1", "C"), "p_pred_mean"] == pytest.approx(0.40)
    assert singles.loc[("A2", "C"), "p_true_mean"] == pytest.approx(0.10)
    assert singles.loc[("A2", "C"), "p_pred_mean"] == pytest.approx(0.80)
    assert singles.loc[("C0", "A"), "p_true_mean"] == pytest.approx(0.30)
    assert singles.loc[("C0", "A"), "p_pred_mean"] == pytest.approx(0.50)
    assert singles["p_true_sd"].isna().all()


def test_error_contributions_after_cutoffs_leave_abstentions_out() -> None:
    keep = np.array([True, False, True, True, True, True, False, True, True])
    errors = error_contributions(ERR_TRUTH, ERR_Y, ERR_PROBA, ERR_CLASSES, keep=keep)
    rows = list(errors[["full_truth", "predicted", "count"]].itertuples(index=False, name=None))
    assert rows == [("A1", "B", 2), ("B0", "A", 2), ("A1", "C", 1), ("A2", "C", 1)]
    assert errors["share"].tolist() == pytest.approx([2 / 6, 2 / 6, 1 / 6, 1 / 6])
    assert errors.iloc[0]["p_true_mean"] == pytest.approx((0.20 + 0.35) / 2)
    assert errors.iloc[0]["p_pred_mean"] == pytest.approx((0.70 + 0.60) / 2)
    none = error_contributions(ERR_TRUTH, ERR_Y, ERR_PROBA, ERR_CLASSES, keep=np.zeros(9, bool))
    assert none.empty and list(none.columns)[:3] == ["full_truth", "predicted", "count"]


def test_sheet_data_cutoffs_abstentions_and_after_matrix_agree() -> None:
    data = sheet_data(
        err_predictions(), ERR_CLASSES, "t", rule=default_rule(), costs=default_costs()
    )
    # class A on p(A): given A 0.2 .4 .1 .3 .9 .35 vs others .6 .5 .7 -> best product at 0.9
    # (TPR 1/6, FPR 0 -> 1/6) vs 0.35 (TPR 3/6, FPR 1 -> 0)... checked through the rule itself
    cuts = [c.cutoff for c in data.cutoffs]
    pred = ERR_PROBA.argmax(axis=1)
    expected = np.array(
        [
            ERR_PROBA[i, pred[i]] < cuts[pred[i]] if not math.isnan(cuts[pred[i]]) else False
            for i in range(9)
        ]
    )
    np.testing.assert_array_equal(data.abstain, expected)
    counts, _, _, accuracy = confusion_with_margins(ERR_Y[~expected], pred[~expected], 3)
    np.testing.assert_array_equal(data.after.counts, counts)
    assert data.after.accuracy == pytest.approx(accuracy, nan_ok=True)
    assert data.abstention_rate == pytest.approx(expected.mean())
    for c, row in data.per_class.iterrows():
        mine = np.equal(ERR_Y, c)
        assert row["kept"] == pytest.approx(np.mean(ERR_PROBA[mine, c] >= cuts[c]))
        assert row["abstained"] == pytest.approx(expected[mine].mean())
    expected_errors = error_contributions(ERR_TRUTH, ERR_Y, ERR_PROBA, ERR_CLASSES, ~expected)
    pd.testing.assert_frame_equal(data.errors_after, expected_errors)
    assert data.cost is None and "binary" in data.cost_note


def test_sheet_data_binary_has_a_cost_curve() -> None:
    predictions = fake_predictions(["OK", "rest"])
    costs = CostTable.from_config({"OK0": -1})
    data = sheet_data(predictions, ["OK", "rest"], "t", rule=default_rule(), costs=costs)
    assert data.cost is not None
    assert data.cost.unmatched == ["VR11"]  # binary y: OK0 and VR11 only
    assert data.per_class["class"].tolist() == ["OK", "rest"]


def test_sheet_data_carries_the_rule_and_cost_table_it_was_given() -> None:
    rule = default_rule(rule="recall", recall=0.8)
    predictions = fake_predictions(["OK", "rest"])
    data = sheet_data(
        predictions,
        ["OK", "rest"],
        "t",
        rule=rule,
        costs=default_costs(),
        metrics={"best_epoch": 4},
    )
    assert data.rule == rule and data.metrics == {"best_epoch": 4} and data.card == {}
    assert data.cost_table == default_costs()
    assert data.n == 120 and data.n_errors == int((data.pred != data.y).sum())
    assert data.per_class["cutoff"].tolist() == [c.cutoff for c in data.cutoffs]


def test_arrays_check_the_class_list() -> None:
    predictions = fake_predictions(["OK", "rest"])
    y, proba = arrays(predictions, ["OK", "rest"])
    assert y.tolist() == predictions["label_index"].tolist() and proba.shape == (120, 2)
    with pytest.raises(ValueError, match="at least two classes"):
        arrays(predictions, ["OK"])
    with pytest.raises(ValueError, match="prob_NC"):
        arrays(predictions, ["OK", "NC"])
