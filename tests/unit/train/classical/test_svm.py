"""The SVM: its one-vs-one decision values as a kernel expansion, calibrated probabilities."""

import numpy as np
import pytest
from classical_cases import blobs, onnx_probabilities, softmax
from sklearn.svm import SVC

from spectragrid.train.architectures._common import ModelError
from spectragrid.train.classical.svm import SvmModel, ovo_coefficients, scale_gamma

CANDIDATE = {"C": 1.0, "gamma": "scale", "calibration_folds": 5}


def rbf(x: np.ndarray, support: np.ndarray, gamma: float) -> np.ndarray:
    squared = ((x[:, None, :] - support[None, :, :]) ** 2).sum(axis=2)
    return np.exp(-gamma * squared)


@pytest.mark.parametrize("n_classes", [2, 3, 4])
def test_ovo_coefficients_reproduce_the_decision_function(n_classes):
    x, y = blobs(90, 5, n_classes)
    x = x.astype(np.float64)
    svc = SVC(C=2.0, gamma=0.3, decision_function_shape="ovo").fit(x, y)
    weight, bias = ovo_coefficients(svc)
    expected = svc.decision_function(x).reshape(len(x), -1)
    np.testing.assert_allclose(
        rbf(x, svc.support_vectors_, 0.3) @ weight + bias, expected, atol=1e-9
    )


def test_scale_gamma_is_scikit_learns():
    x, y = blobs(50, 4, 2)
    svc = SVC(gamma="scale").fit(x.astype(np.float64), y)
    assert scale_gamma(x) == pytest.approx(svc._gamma, rel=1e-9)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_calibrated_probabilities_and_the_kernel_head(n_classes):
    x, y = blobs(150, 8, n_classes, seed=3)
    x64 = x.astype(np.float64)
    model = SvmModel(CANDIDATE, seed=0, threads=1)
    model.fit(x64, y, None)
    proba = model.predict_proba(x64)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert (proba.argmax(axis=1) == y).mean() > 0.6
    head = model.head()
    logits = rbf(x64, head.support, head.gamma) @ head.weight.T + head.bias
    np.testing.assert_allclose(softmax(logits), proba, atol=1e-9)
    np.testing.assert_allclose(onnx_probabilities(head, x, n_classes), proba, atol=1e-5)


def test_the_calibration_depends_on_the_seed_only_through_its_folds():
    x, y = blobs(80, 4, 2, seed=4)
    x = x.astype(np.float64)
    runs = []
    for seed in (0, 0, 1):
        model = SvmModel(CANDIDATE, seed=seed, threads=1)
        model.fit(x, y, None)
        runs.append(model.predict_proba(x))
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_a_class_with_one_training_row_cannot_be_calibrated():
    x, y = blobs(30, 3, 2)
    y[:] = 0
    y[0] = 1
    with pytest.raises(ModelError, match="at least 2 training rows of each class; one class has 1"):
        SvmModel(CANDIDATE, seed=0, threads=1).fit(x.astype(np.float64), y, None)
