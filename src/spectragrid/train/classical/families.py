"""The classical families: how to build one candidate, and which parameters are tuned.

Every parameter of a family listed in `tuned` takes a list of candidates in
the config (`C: [0.01, 0.1, 1, 10]`); the others take one value. Their
types, ranges and defaults are the schema's `$defs/params_<family>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from spectragrid.train.classical.heads import Head
from spectragrid.train.classical.linear import LogisticRegressionModel, PlsDaModel
from spectragrid.train.classical.svm import SvmModel
from spectragrid.train.classical.trees import GradientBoostingModel, RandomForestModel


class Estimator(Protocol):
    """One fitted candidate: scikit-learn's estimator behind, a Head in front."""

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...

    def head(self) -> Head: ...


@dataclass(frozen=True)
class Family:
    make: Callable[[dict, int, int], Estimator]  # (candidate, seed, threads)
    tuned: tuple[str, ...]
    # float64 features for estimators that compute in float64 (scikit-learn would
    # convert anyway); trees compare float32 features, as the ONNX graph does.
    float64: bool
    summary: str


FAMILY_REGISTRY: dict[str, Family] = {
    "pls_da": Family(
        PlsDaModel,
        ("n_components",),
        True,
        "PLS regression onto the one-hot classes, logistic layer on the latent scores",
    ),
    "logreg": Family(
        LogisticRegressionModel,
        ("C",),
        True,
        "L2 logistic regression (multinomial for several classes)",
    ),
    "svm": Family(
        SvmModel,
        ("C", "gamma"),
        True,
        "RBF-kernel SVC, probabilities calibrated on out-of-fold decision values",
    ),
    "random_forest": Family(
        RandomForestModel,
        ("max_features", "min_samples_leaf", "max_depth"),
        False,
        "random forest of fully grown (or max_depth) trees, averaged leaf frequencies",
    ),
    "hist_gradient_boosting": Family(
        GradientBoostingModel,
        ("learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization"),
        False,
        "histogram gradient boosting, no early stopping",
    ),
}
