"""Logistic regression and PLS-DA: probabilities, and heads that compute them."""

import numpy as np
import pytest
from classical_cases import blobs, onnx_probabilities, softmax

from spectragrid.train.classical.linear import LogisticRegressionModel, PlsDaModel


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_logistic_head_reproduces_predict_proba(n_classes):
    x, y = blobs(120, 6, n_classes)
    model = LogisticRegressionModel({"C": 1.0, "max_iter": 1000}, seed=0, threads=1)
    model.fit(x.astype(np.float64), y, None)
    proba = model.predict_proba(x.astype(np.float64))
    head = model.head()
    assert head.weight.shape == (n_classes, 6)
    np.testing.assert_allclose(softmax(x @ head.weight.T + head.bias), proba, atol=1e-12)
    np.testing.assert_allclose(onnx_probabilities(head, x, n_classes), proba, atol=1e-5)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_pls_da_gives_probabilities_and_its_composed_head_matches(n_classes):
    x, y = blobs(200, 30, n_classes, seed=1)
    x64 = x.astype(np.float64) * 40 + 1000  # raw-like units: the scores are standardised
    model = PlsDaModel({"n_components": 3}, seed=0, threads=1)
    model.fit(x64, y, None)
    proba = model.predict_proba(x64)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert (proba.argmax(axis=1) == y).mean() > 0.7
    head = model.head()
    np.testing.assert_allclose(softmax(x64 @ head.weight.T + head.bias), proba, atol=1e-9)


def test_pls_da_weights_act_on_its_logistic_layer():
    x, y = blobs(150, 10, 2, seed=2)
    x = x.astype(np.float64)
    weights = np.ones(len(y))
    weights[:50] = 0.0
    weighted, dropped = (PlsDaModel({"n_components": 2}, 0, 1) for _ in range(2))
    weighted.fit(x, y, weights)
    dropped.fit(x, y, None)
    # the projection is fitted unweighted: only the layer on the scores changes
    np.testing.assert_allclose(weighted.pls.x_rotations_, dropped.pls.x_rotations_)
    assert not np.allclose(weighted.predict_proba(x), dropped.predict_proba(x))
