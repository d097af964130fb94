"""Per-class decision cutoffs of the result sheet (docs/lab_facts.md, "The result sheet").

For class c the score is p(c). A cutoff t "keeps" the class-c samples (by
given label) whose p(c) >= t: kept = TPR(t). After cutoffs, a sample
abstains when the score of its predicted class is below that class's cutoff.

The cutoff is chosen on the same test predictions it is reported on: it
describes the cell, it is not a tuned deployment threshold (that would need
a validation set of its own).

Rules (`report.cutoff.rule`; its default, and the default recall and
precision targets, are the config schema's):

- `youden_product`: maximise (1 - FPR)·TPR, exactly this product (not Youden's
  J = TPR - FPR); ties go to the highest cutoff.
- `recall`: the highest cutoff whose TPR >= R.
- `precision`: the lowest cutoff whose precision >= P. When no cutoff reaches
  P, the class is "unreachable": its cutoff is +inf and every prediction of
  that class abstains.

Candidate cutoffs are the observed scores, so "p >= t" never depends on how a
threshold between two scores would be rounded. A class absent from the test
fold (or the only class in it, for `youden_product`) has no cutoff (NaN) and
never abstains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RULES: tuple[str, ...] = ("youden_product", "recall", "precision")
# Fractions such as 7/10 against a target of 0.7 must count as reached.
_TOLERANCE = 1e-12


class CutoffError(ValueError):
    """A cutoff rule that cannot be applied as configured."""


@dataclass(frozen=True)
class CutoffRule:
    rule: str
    recall: float
    precision: float

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise CutoffError(f"cutoff rule {self.rule!r} is not one of {list(RULES)}")
        for name in ("recall", "precision"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < float(value) <= 1:
                raise CutoffError(f"cutoff {name} must lie in (0, 1], got {value!r}")

    @classmethod
    def from_config(cls, config: Mapping) -> CutoffRule:
        """From the validated `report.cutoff` (the schema fills in every key)."""
        keys = {"rule", "recall", "precision"}
        unknown = sorted(set(config) - keys)
        if unknown:
            raise CutoffError(f"report.cutoff has unknown key(s) {unknown}")
        missing = sorted(keys - set(config))
        if missing:
            raise CutoffError(
                f"report.cutoff lacks {missing}: pass the config as validated against its schema"
            )
        return cls(rule=str(config["rule"]), recall=config["recall"], precision=config["precision"])

    def describe(self) -> str:
        if self.rule == "youden_product":
            return "cutoff maximises (1 − FPR)·TPR"
        if self.rule == "recall":
            return f"highest cutoff reaching recall (TPR) ≥ {self.recall:g}"
        return f"lowest cutoff reaching precision ≥ {self.precision:g}"


@dataclass(frozen=True)
class ClassCutoff:
    """One class's cutoff. `status`: ok, absent (no sample of the class), only class
    (no other class to tell it from), unreachable (precision target never met)."""

    name: str
    n: int
    cutoff: float
    kept: float
    fpr: float
    precision: float
    status: str

    @property
    def applied(self) -> bool:
        return not math.isnan(self.cutoff)


@dataclass(frozen=True)
class OperatingPoints:
    """Every candidate cutoff (the distinct scores, ascending) with the counts at it."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_pos: int
    n_neg: int


def operating_points(is_class: np.ndarray, score: np.ndarray) -> OperatingPoints:
    """Counts of class / other samples with score >= t, for each distinct score t."""
    is_class = np.asarray(is_class, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    if is_class.shape != score.shape:
        raise CutoffError(f"labels have shape {is_class.shape}, scores {score.shape}")
    if np.isnan(score).any():
        raise CutoffError("scores contain NaN")
    thresholds = np.unique(score)
    pos = np.sort(score[is_class])
    neg = np.sort(score[~is_class])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    return OperatingPoints(thresholds, tp, fp, len(pos), len(neg))


def _result(name: str, points: OperatingPoints, i: int, status: str = "ok") -> ClassCutoff:
    tp, fp = int(points.tp[i]), int(points.fp[i])
    return ClassCutoff(
        name=name,
        n=points.n_pos,
        cutoff=float(points.thresholds[i]),
        kept=tp / points.n_pos,
        fpr=fp / points.n_neg if points.n_neg else math.nan,
        precision=tp / (tp + fp) if tp + fp else math.nan,
        status=status,
    )


def choose_cutoff(
    is_class: np.ndarray, score: np.ndarray, rule: CutoffRule, name: str = ""
) -> ClassCutoff:
    """The cutoff of one class under `rule` (see the module docstring)."""
    points = operating_points(is_class, score)
    if points.n_pos == 0:
        return ClassCutoff(name, 0, math.nan, math.nan, math.nan, math.nan, "absent")
    if rule.rule == "youden_product":
        if points.n_neg == 0:
            return ClassCutoff(name, points.n_pos, math.nan, math.nan, math.nan, 1.0, "only class")
        # Integer products: equal objectives compare equal, so ties are exact.
        objective = (points.n_neg - points.fp) * points.tp
        best = np.flatnonzero(objective == objective.max())
        return _result(name, points, int(best[-1]))
    if rule.rule == "recall":
        tpr = points.tp / points.n_pos
        return _result(name, points, int(np.flatnonzero(tpr >= rule.recall - _TOLERANCE)[-1]))
    accepted = points.tp + points.fp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(accepted > 0, points.tp / np.maximum(accepted, 1), np.nan)
    reaching = np.flatnonzero(precision >= rule.precision - _TOLERANCE)
    if len(reaching) == 0:
        return ClassCutoff(name, points.n_pos, math.inf, 0.0, 0.0, math.nan, "unreachable")
    return _result(name, points, int(reaching[0]))


def class_cutoffs(
    y: np.ndarray, proba: np.ndarray, classes: Sequence[str], rule: CutoffRule
) -> list[ClassCutoff]:
    """One cutoff per class, each on that class's own score p(c), one vs all."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    return [choose_cutoff(y == c, proba[:, c], rule, str(name)) for c, name in enumerate(classes)]


def abstentions(proba: np.ndarray, cutoffs: Sequence[ClassCutoff]) -> np.ndarray:
    """True where the predicted (argmax) class's score is below that class's cutoff."""
    proba = np.asarray(proba, dtype=np.float64)
    pred = proba.argmax(axis=1)
    limits = np.array([c.cutoff for c in cutoffs], dtype=np.float64)[pred]
    chosen = proba[np.arange(len(pred)), pred]
    return np.where(np.isnan(limits), False, chosen < limits)
