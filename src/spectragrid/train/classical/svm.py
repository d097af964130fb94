"""The SVM family: an RBF-kernel SVC with calibrated probabilities.

The SVC (scikit-learn's libsvm) gives one decision value per pair of classes
(one-vs-one). Its probabilities come from a multinomial logistic regression
fitted on out-of-fold decision values of the training rows: the rows are
split into `calibration_folds` stratified folds, an SVC fitted on the other
folds scores each one, and the logistic layer learns how those values map to
classes; the SVC kept is then fitted on every training row. This is Platt's
scaling (a sigmoid of the decision value), extended to several classes at
once, and like Platt's it calibrates on values the SVC did not see in
training. Sample weights scale each row's penalty in the SVC and its weight
in the logistic layer.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from spectragrid.train.architectures._common import ModelError
from spectragrid.train.classical.heads import KernelHead, two_class_logits


def scale_gamma(x: np.ndarray) -> float:
    """scikit-learn's gamma="scale": 1 / (features x variance of all training values)."""
    variance = float(np.asarray(x, dtype=np.float64).var())
    return 1.0 / (x.shape[1] * variance) if variance > 0 else 1.0


class SvmModel:
    def __init__(self, candidate: dict, seed: int, threads: int) -> None:
        self.C = float(candidate["C"])
        self.gamma = candidate["gamma"]
        self.folds = int(candidate["calibration_folds"])
        self.seed = seed

    def _svc(self, gamma: float) -> SVC:
        return SVC(C=self.C, kernel="rbf", gamma=gamma, decision_function_shape="ovo")

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        # One gamma for the calibration fits and the final one, from every training row.
        gamma = scale_gamma(x) if self.gamma == "scale" else float(self.gamma)
        smallest = int(np.bincount(y).min())
        if smallest < 2:
            raise ModelError(
                "svm: calibrating the probabilities needs at least 2 training rows of each "
                f"class; one class has {smallest}"
            )
        folds = StratifiedKFold(min(self.folds, smallest), shuffle=True, random_state=self.seed)
        out_of_fold = np.zeros((len(y), self._n_pairs(y)))
        for fit_rows, score_rows in folds.split(x, y):
            svc = self._svc(gamma)
            svc.fit(x[fit_rows], y[fit_rows], sample_weight=_rows(weight, fit_rows))
            out_of_fold[score_rows] = self._decision(svc, x[score_rows])
        self.calibration = LogisticRegression(max_iter=1000)
        self.calibration.fit(out_of_fold, y, sample_weight=weight)
        self.svc = self._svc(gamma)
        self.svc.fit(x, y, sample_weight=weight)
        self.fitted_gamma = gamma

    @staticmethod
    def _n_pairs(y: np.ndarray) -> int:
        n = int(y.max()) + 1
        return n * (n - 1) // 2

    @staticmethod
    def _decision(svc: SVC, x: np.ndarray) -> np.ndarray:
        return svc.decision_function(x).reshape(len(x), -1)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.calibration.predict_proba(self._decision(self.svc, x))

    def head(self) -> KernelHead:
        """decision = k(x) D + d (D from the SVC's dual coefficients); logits = decision
        A^T + a (the logistic layer): one linear map of k(x)."""
        pair_weight, pair_bias = ovo_coefficients(self.svc)
        coef, intercept = two_class_logits(self.calibration.coef_, self.calibration.intercept_)
        return KernelHead(
            support=np.asarray(self.svc.support_vectors_, dtype=np.float64),
            gamma=float(self.fitted_gamma),
            weight=coef @ pair_weight.T,
            bias=intercept + coef @ pair_bias,
        )


def ovo_coefficients(svc: SVC) -> tuple[np.ndarray, np.ndarray]:
    """(S, P) weights and (P,) biases with decision_function(x) (ovo) = k(x) W + b.

    libsvm groups the support vectors by class; for the pair (i, j), i < j,
    those of class i carry their coefficient in row j - 1 of dual_coef_ and
    those of class j in row i. (For two classes scikit-learn stores the
    coefficients and intercept already negated, so the same formula holds.)
    """
    dual = np.asarray(svc.dual_coef_, dtype=np.float64)
    counts = np.asarray(svc.n_support_)
    starts = np.concatenate([[0], np.cumsum(counts)])
    n_classes = len(counts)
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    weight = np.zeros((dual.shape[1], len(pairs)))
    for k, (i, j) in enumerate(pairs):
        rows_i = slice(starts[i], starts[i + 1])
        rows_j = slice(starts[j], starts[j + 1])
        weight[rows_i, k] = dual[j - 1, rows_i]
        weight[rows_j, k] = dual[i, rows_j]
    return weight, np.asarray(svc.intercept_, dtype=np.float64)


def _rows(weight: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if weight is None else weight[rows]
