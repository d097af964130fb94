"""The numpy curves equal scikit-learn's on tied and untied scores."""

import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from spectragrid.core import curves
from spectragrid.core.metrics import binary_auc


def _cases():
    rng = np.random.default_rng(0)
    for n, decimals, prevalence in ((7, 1, 0.5), (50, 2, 0.2), (300, 6, 0.7), (2000, 1, 0.05)):
        positive = rng.random(n) < prevalence
        positive[:2] = [True, False]  # both classes present
        score = np.round(rng.random(n) * 0.6 + 0.4 * positive, decimals)
        yield positive, score
    # every score tied, and a perfect separation
    yield np.array([True, False, True, False]), np.full(4, 0.5)
    yield np.array([True, True, False, False]), np.array([0.9, 0.8, 0.2, 0.1])


CASES = list(_cases())


@pytest.mark.parametrize(("positive", "score"), CASES)
def test_roc_curve_and_its_area_equal_scikit_learn(positive, score):
    fpr, tpr = curves.roc_curve(positive, score)
    expected_fpr, expected_tpr, _ = sk_roc_curve(positive, score)
    np.testing.assert_array_equal(fpr, expected_fpr)
    np.testing.assert_array_equal(tpr, expected_tpr)
    assert binary_auc(positive, score) == pytest.approx(roc_auc_score(positive, score), abs=1e-15)
    assert curves.area(fpr, tpr) == auc(expected_fpr, expected_tpr)


@pytest.mark.parametrize(("positive", "score"), CASES)
def test_precision_recall_and_average_precision_equal_scikit_learn(positive, score):
    precision, recall = curves.precision_recall_curve(positive, score)
    expected_precision, expected_recall, _ = precision_recall_curve(positive, score)
    np.testing.assert_array_equal(precision, expected_precision)
    np.testing.assert_array_equal(recall, expected_recall)
    assert curves.average_precision(positive, score) == pytest.approx(
        average_precision_score(positive, score), abs=1e-15
    )
    # recall decreases: the area is taken the other way round
    assert curves.area(recall, precision) == auc(expected_recall, expected_precision)


def test_area_refuses_an_x_that_goes_back_and_forth():
    with pytest.raises(ValueError, match="neither increasing nor decreasing"):
        curves.area(np.array([0.0, 1.0, 0.5]), np.array([0.0, 1.0, 1.0]))
