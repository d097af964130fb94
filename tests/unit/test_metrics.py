import math

import numpy as np
import pytest

from spectragrid.metrics import classification_metrics, expected_calibration_error, hter


def test_binary_metrics_on_a_hand_computed_case():
    y = np.array([0, 0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.55, 0.45]])
    m = classification_metrics(y, proba)
    assert m["accuracy"] == pytest.approx(3 / 5)
    # recalls: class 0 = 2/3, class 1 = 1/2
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    # FRR (class 0 rejected) = 1/3, FAR (class 1 accepted as 0) = 1/2
    assert m["hter"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    # AUC of class 0 scores: pairs (pos, neg) ranked right: 0.9>0.2,0.9>0.55,0.6>0.2,0.6>0.55,
    # 0.3>0.2 -> 5 of 6
    assert m["auc"] == pytest.approx(5 / 6)


def test_absent_class_gives_nan_not_an_exception():
    y = np.array([0, 0])
    proba = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])
    m = classification_metrics(y, proba)
    assert m["accuracy"] == 1.0
    assert math.isnan(m["auc"])
    assert math.isnan(m["hter"])


def test_calibration_error_is_zero_for_calibrated_scores():
    y = np.array([0, 0, 0, 1])
    proba = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(y, proba) == pytest.approx(0.0)
    assert hter(np.array([0, 1]), np.array([0, 1])) == 0.0
