"""Linear families: logistic regression and PLS-DA.

PLS-DA regresses the one-hot classes on the features by partial least squares
(scikit-learn's PLSRegression, `scale=False`: the model's preprocessing does
the scaling), keeps the k latent scores of each sample, standardises them
over the training rows and fits a multinomial logistic regression on them
(L2, C = 1, on standardised scores so the penalty means the same whatever the
features' units). The probabilities are that layer's: calibrated, summing to
one, which PLS regression's raw predictions are not. Sample weights (class
weights, the `downweight` of a clean cell) act on the logistic layer; the
PLS projection itself is fitted unweighted, since PLSRegression takes none.
"""

from __future__ import annotations

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import LogisticRegression

from spectragrid.train.classical.heads import AffineHead, two_class_logits


class LogisticRegressionModel:
    """L2-penalised (multinomial for several classes) logistic regression, lbfgs."""

    def __init__(self, candidate: dict, seed: int, threads: int) -> None:
        self.model = LogisticRegression(C=float(candidate["C"]), max_iter=candidate["max_iter"])

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        self.model.fit(x, y, sample_weight=weight)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(x)

    def head(self) -> AffineHead:
        weight, bias = two_class_logits(self.model.coef_, self.model.intercept_)
        return AffineHead(weight=weight, bias=bias)


class PlsDaModel:
    """PLS regression onto the one-hot classes, then a logistic layer on its scores."""

    def __init__(self, candidate: dict, seed: int, threads: int) -> None:
        self.n_components = int(candidate["n_components"])

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        n_classes = int(y.max()) + 1
        self.pls = PLSRegression(n_components=self.n_components, scale=False)
        self.pls.fit(x, np.eye(n_classes)[y])
        scores = self.pls.transform(x)
        self.score_mean = scores.mean(axis=0)
        sd = scores.std(axis=0)
        # a component that is constant over the training rows carries nothing
        self.score_inv_sd = np.where(sd > 0, 1.0 / np.where(sd > 0, sd, 1.0), 0.0)
        self.logistic = LogisticRegression(max_iter=1000)
        self.logistic.fit(self._standardised(scores), y, sample_weight=weight)

    def _standardised(self, scores: np.ndarray) -> np.ndarray:
        return (scores - self.score_mean) * self.score_inv_sd

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.logistic.predict_proba(self._standardised(self.pls.transform(x)))

    def head(self) -> AffineHead:
        """The composed affine map: scores(x) = x R + t0 (t0 = scores(0)), then
        standardised, then the logistic layer."""
        n_features = self.pls.x_rotations_.shape[0]
        rotations = np.asarray(self.pls.x_rotations_, dtype=np.float64)
        offset = self.pls.transform(np.zeros((1, n_features)))[0]
        coef, intercept = two_class_logits(self.logistic.coef_, self.logistic.intercept_)
        scaled = coef * self.score_inv_sd  # (C, k)
        weight = scaled @ rotations.T  # (C, F)
        bias = intercept + scaled @ (offset - self.score_mean)
        return AffineHead(weight=weight, bias=bias)
