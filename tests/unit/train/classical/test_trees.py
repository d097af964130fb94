"""Tree ensembles read out node by node: the ONNX graph routes and sums as scikit-learn does."""

import numpy as np
import pytest
from classical_cases import blobs, onnx_probabilities

from spectragrid.train.classical.trees import GradientBoostingModel, RandomForestModel

FOREST = {"n_estimators": 25, "max_features": "sqrt", "min_samples_leaf": 1, "max_depth": None}
BOOSTING = {
    "max_iter": 30,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 5,
    "l2_regularization": 0.0,
}


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize(
    ("family", "candidate"), [(RandomForestModel, FOREST), (GradientBoostingModel, BOOSTING)]
)
def test_the_onnx_trees_give_scikit_learns_probabilities(family, candidate, n_classes):
    x, y = blobs(300, 12, n_classes, seed=5)
    weights = np.where(np.arange(len(y)) % 4 == 0, 0.25, 1.0)
    model = family(candidate, seed=0, threads=1)
    model.fit(x, y, weights)
    head = model.head()
    assert head.output == (
        "identity" if family is RandomForestModel else ("sigmoid" if n_classes == 2 else "softmax")
    )
    # the training rows hold every threshold's neighbours: the exact routing is tested
    fresh, _ = blobs(200, 12, n_classes, seed=6)
    for features in (x, fresh):
        expected = model.predict_proba(features)
        got = onnx_probabilities(head, features, n_classes)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def test_every_threshold_value_itself_goes_left():
    x, y = blobs(200, 4, 2, seed=7)
    model = RandomForestModel(FOREST, seed=1, threads=1)
    model.fit(x, y, None)
    head = model.head()
    splits = ~head.is_leaf
    # samples placed exactly on the float32 thresholds, in every feature
    on = np.repeat(x[:1], splits.sum(), axis=0)
    on[np.arange(splits.sum()), head.feature[splits]] = head.threshold[splits]
    np.testing.assert_allclose(onnx_probabilities(head, on, 2), model.predict_proba(on), atol=1e-6)
