import math

import numpy as np
import pytest

from spectragrid.core.metrics import (
    classification_metrics,
    expected_calibration_error,
    hter,
    validation_scores,
)


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


@pytest.mark.parametrize("n_classes", [2, 4, 15])
def test_validation_scores_equal_the_full_metrics(n_classes):
    """Training's per-epoch figures are the test metrics' figures, classes absent or not."""
    rng = np.random.default_rng(n_classes)
    for trial in range(20):
        n = int(rng.integers(1, 60))
        # Some trials leave classes out of the labels, or out of the predictions.
        y = rng.integers(0, max(1, n_classes - trial % 3), n)
        proba = rng.dirichlet(np.ones(n_classes), n)
        if trial % 4 == 0:
            proba[:, 0] = 0.0
        pred = proba.argmax(axis=1)
        fast = validation_scores(y, pred, n_classes)
        full = classification_metrics(y, proba)
        for key in ("accuracy", "balanced_accuracy", "macro_f1"):
            assert fast[key] == pytest.approx(full[key], abs=1e-12), (trial, key)


def test_validation_scores_on_a_hand_computed_case():
    # class 0: TP 2, FN 1, FP 1 -> F1 4/6; class 1: TP 1, FN 1, FP 1 -> 2/4; class 2 absent -> 0
    scores = validation_scores(np.array([0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 0]), 3)
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert scores["macro_f1"] == pytest.approx((4 / 6 + 2 / 4 + 0) / 3)
    assert all(math.isnan(v) for v in validation_scores(np.array([]), np.array([]), 2).values())


@pytest.mark.parametrize("n_classes", [2, 3, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_scikit_learns_on_random_folds_with_ties_and_absent_classes(
    n_classes: int, seed: int
) -> None:
    from sklearn.metrics import f1_score, log_loss, roc_auc_score

    rng = np.random.default_rng(seed)
    n = 57
    # class 1 left out of the fold, and probabilities rounded so that scores tie
    y = rng.choice([c for c in range(n_classes) if c != 1 or n_classes == 2], size=n)
    proba = np.round(rng.dirichlet(np.ones(n_classes), size=n), 2) + 1e-3
    proba /= proba.sum(axis=1, keepdims=True)
    got = classification_metrics(y, proba)
    pred = proba.argmax(axis=1)
    labels = list(range(n_classes))
    expected_f1 = f1_score(y, pred, labels=labels, average="macro", zero_division=0)
    assert got["macro_f1"] == pytest.approx(expected_f1, abs=1e-12)
    assert got["log_loss"] == pytest.approx(log_loss(y, proba, labels=labels), abs=1e-12)
    if n_classes == 2:
        expected_auc = roc_auc_score(y == 0, proba[:, 0])
    else:
        expected_auc = np.mean([roc_auc_score(y == c, proba[:, c]) for c in np.unique(y)])
    assert got["auc"] == pytest.approx(expected_auc, abs=1e-12)
