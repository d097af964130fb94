"""Choosing a classical model's hyper-parameters on the cell's validation fold.

Every combination of the candidate lists is fitted on the training rows and
scored on the validation rows; the one with the best `train.monitor` value
is kept, the earliest in the listed order on a tie (list the simpler
candidates first). The test fold plays no part: it is scored once, by the
candidate kept, as a network's best epoch is. Each candidate's validation
scores (and the warnings its fit raised, a solver that did not converge for
one) are recorded, for the model card and history.csv.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from spectragrid.core.metrics import validation_scores
from spectragrid.train.architectures._common import ModelError
from spectragrid.train.classical.families import Estimator, Family

log = logging.getLogger(__name__)
# Keeps log(p) finite for a probability of exactly 0.
_LOG_FLOOR = 1e-15


@dataclass
class Candidate:
    number: int  # 1-based, in the listed order
    params: dict  # the tuned values
    scores: dict[str, float]  # val_loss, val_accuracy, val_balanced_accuracy, val_macro_f1
    fit_seconds: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class Selection:
    model: Estimator  # the candidate kept, fitted on the training rows
    chosen: Candidate
    candidates: list[Candidate]

    @property
    def fit_seconds(self) -> float:
        return float(sum(c.fit_seconds for c in self.candidates))


def candidate_grid(params: dict, tuned: tuple[str, ...]) -> list[dict]:
    """Every combination of the tuned lists (first key slowest, values in their order),
    each merged with the fixed parameters."""
    fixed = {k: v for k, v in params.items() if k not in tuned}
    keys = [k for k in tuned if k in params]
    return [
        {**fixed, **dict(zip(keys, values, strict=True))}
        for values in itertools.product(*(params[k] for k in keys))
    ]


def candidate_scores(y: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float]:
    """The validation scores a network records per epoch, from probabilities."""
    if len(y) == 0:
        nan = math.nan
        return {
            k: nan for k in ("val_loss", "val_accuracy", "val_balanced_accuracy", "val_macro_f1")
        }
    p_true = np.clip(proba[np.arange(len(y)), y], _LOG_FLOOR, 1.0)
    scores = validation_scores(y, proba.argmax(axis=1), n_classes)
    return {
        "val_loss": float(-np.log(p_true).mean()),
        "val_accuracy": scores["accuracy"],
        "val_balanced_accuracy": scores["balanced_accuracy"],
        "val_macro_f1": scores["macro_f1"],
    }


def select(
    family: Family,
    params: dict,
    train: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    val: tuple[np.ndarray, np.ndarray],
    n_classes: int,
    monitor: str,
    seed: int,
    threads: int,
) -> Selection:
    """Fit every candidate on `train` (features, labels, weights), score it on `val`
    (features, labels), keep the best on `monitor`."""
    x_train, y_train, w_train = train
    x_val, y_val = val
    best: tuple[float, Estimator, Candidate] | None = None
    records = []
    for number, candidate in enumerate(candidate_grid(params, family.tuned), start=1):
        tuned = {k: candidate[k] for k in family.tuned if k in candidate}
        model = family.make(candidate, seed, threads)
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model.fit(x_train, y_train, w_train)
            except ValueError as err:
                raise ModelError(f"candidate {tuned}: {err}") from None
        seconds = time.perf_counter() - started
        scores = candidate_scores(y_val, model.predict_proba(x_val), n_classes)
        record = Candidate(number, tuned, scores, seconds, _messages(caught))
        records.append(record)
        log.info(
            "candidate %d %s: %s %.4f (fit %.2f s)%s",
            number,
            tuned,
            monitor,
            scores[monitor],
            seconds,
            "".join(f"; {m}" for m in record.warnings),
        )
        value = scores[monitor]
        # Strictly better only: on a tie the earlier candidate stays.
        if best is None or (math.isfinite(value) and not value <= best[0]):
            best = (value if math.isfinite(value) else -math.inf, model, record)
    if best is None:
        raise ModelError("no candidate to fit: every candidate list is empty")
    return Selection(model=best[1], chosen=best[2], candidates=records)


def _messages(caught: list[warnings.WarningMessage]) -> list[str]:
    """Each distinct warning once, first line only."""
    seen: dict[str, None] = {}
    for item in caught:
        seen.setdefault(f"{item.category.__name__}: {str(item.message).splitlines()[0]}", None)
    return list(seen)
