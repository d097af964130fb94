"""Cutoff rules, the fraction kept and abstentions, each against a hand-computed case."""

from __future__ import annotations

import math

import numpy as np
import pytest
from report_cases import default_rule, schema_report

from spectragrid.report.cutoffs import (
    ClassCutoff,
    CutoffError,
    CutoffRule,
    abstentions,
    choose_cutoff,
    class_cutoffs,
    operating_points,
)

# Three samples of the class (scores 0.9, 0.8, 0.3) and three others (0.4, 0.2, 0.1).
IS_CLASS = np.array([True, True, True, False, False, False])
SCORE = np.array([0.9, 0.8, 0.3, 0.4, 0.2, 0.1])


def test_operating_points_count_samples_at_or_above_each_score() -> None:
    points = operating_points(IS_CLASS, SCORE)
    assert points.thresholds.tolist() == [0.1, 0.2, 0.3, 0.4, 0.8, 0.9]
    assert points.tp.tolist() == [3, 3, 3, 2, 2, 1]
    assert points.fp.tolist() == [3, 2, 1, 1, 0, 0]
    assert (points.n_pos, points.n_neg) == (3, 3)


def test_youden_product_is_the_product_with_ties_to_the_highest_cutoff() -> None:
    # (1 - FPR)·TPR: 0.1 -> 0, 0.2 -> 1/3, 0.3 -> 2/3, 0.4 -> 4/9, 0.8 -> 2/3, 0.9 -> 1/3.
    # 0.3 and 0.8 tie at 2/3 (in floats they differ by one ulp); the highest wins.
    cut = choose_cutoff(IS_CLASS, SCORE, default_rule(rule="youden_product"), "OK")
    assert cut.cutoff == 0.8
    assert cut.kept == pytest.approx(2 / 3)
    assert cut.fpr == 0.0 and cut.precision == 1.0
    assert cut.status == "ok" and cut.name == "OK" and cut.n == 3


def test_youden_product_is_not_youden_j() -> None:
    # 15 class samples, 2 others, by falling score: 5 class (0.9), 1 other (0.6), 7 class
    # (0.5), 1 other (0.3), 3 class (0.2).
    # t=0.9: TPR 1/3, FPR 0   -> J = 0.333, (1 - FPR)·TPR = 0.333
    # t=0.5: TPR 0.8, FPR 0.5 -> J = 0.300, (1 - FPR)·TPR = 0.400
    # Youden's J would pick 0.9; the users' rule picks 0.5.
    is_class = np.array([True] * 5 + [False] + [True] * 7 + [False] + [True] * 3)
    score = np.array([0.9] * 5 + [0.6] + [0.5] * 7 + [0.3] + [0.2] * 3)
    cut = choose_cutoff(is_class, score, default_rule(rule="youden_product"))
    assert cut.cutoff == 0.5 and cut.kept == pytest.approx(0.8) and cut.fpr == 0.5


def test_recall_rule_takes_the_highest_cutoff_reaching_the_target() -> None:
    cut = choose_cutoff(IS_CLASS, SCORE, default_rule(rule="recall", recall=0.95))
    assert cut.cutoff == 0.3 and cut.kept == 1.0
    assert cut.fpr == pytest.approx(1 / 3) and cut.precision == pytest.approx(3 / 4)
    cut = choose_cutoff(IS_CLASS, SCORE, default_rule(rule="recall", recall=0.6))
    assert cut.cutoff == 0.8 and cut.kept == pytest.approx(2 / 3)
    cut = choose_cutoff(IS_CLASS, SCORE, default_rule(rule="recall", recall=1 / 3))
    assert cut.cutoff == 0.9


def test_recall_rule_counts_an_exact_hit_as_reached() -> None:
    # 7 of 10 is exactly 0.7, although 0.7 * 10 is 7.000000000000001 in floats.
    is_class = np.array([True] * 10 + [False] * 2)
    score = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.1, 0.2])
    cut = choose_cutoff(is_class, score, default_rule(rule="recall", recall=0.7))
    assert cut.cutoff == 0.65 and cut.kept == pytest.approx(0.7)


def test_precision_rule_takes_the_lowest_cutoff_reaching_the_target() -> None:
    # precision at 0.1, 0.2, 0.3, 0.4, 0.8, 0.9: 3/6, 3/5, 3/4, 2/3, 1, 1
    cut = choose_cutoff(IS_CLASS, SCORE, default_rule(rule="precision", precision=0.95))
    assert cut.cutoff == 0.8 and cut.precision == 1.0 and cut.kept == pytest.approx(2 / 3)
    # Not monotone: 0.4 misses 0.7 but the lower 0.3 reaches it; the lowest wins.
    cut = choose_cutoff(IS_CLASS, SCORE, default_rule(rule="precision", precision=0.7))
    assert cut.cutoff == 0.3 and cut.precision == 0.75 and cut.kept == 1.0


def test_precision_rule_unreachable_abstains_on_the_class() -> None:
    cut = choose_cutoff(
        np.array([False, True]),
        np.array([0.9, 0.1]),
        default_rule(rule="precision", precision=0.95),
    )
    assert cut.status == "unreachable" and math.isinf(cut.cutoff)
    assert cut.kept == 0.0 and cut.applied


def test_absent_or_only_class_has_no_cutoff() -> None:
    absent = choose_cutoff(np.zeros(3, bool), np.array([0.1, 0.5, 0.9]), default_rule())
    assert absent.status == "absent" and math.isnan(absent.cutoff) and not absent.applied
    assert absent.n == 0 and math.isnan(absent.kept)
    only = choose_cutoff(np.ones(3, bool), np.array([0.1, 0.5, 0.9]), default_rule())
    assert only.status == "only class" and math.isnan(only.cutoff)
    # The recall rule needs no other class.
    recall = choose_cutoff(np.ones(3, bool), np.array([0.1, 0.5, 0.9]), default_rule(rule="recall"))
    assert recall.cutoff == 0.1 and recall.kept == 1.0 and math.isnan(recall.fpr)


def test_kept_is_the_share_of_the_class_at_or_above_the_cutoff() -> None:
    rng = np.random.default_rng(0)
    is_class = rng.random(200) < 0.4
    score = np.round(np.where(is_class, rng.beta(4, 2, 200), rng.beta(2, 4, 200)), 2)
    for rule in (
        default_rule(),
        default_rule(rule="recall", recall=0.8),
        default_rule(rule="precision"),
    ):
        cut = choose_cutoff(is_class, score, rule)
        if math.isfinite(cut.cutoff):
            assert cut.kept == pytest.approx(np.mean(score[is_class] >= cut.cutoff))
            assert cut.fpr == pytest.approx(np.mean(score[~is_class] >= cut.cutoff))


def test_abstentions_hand_computed() -> None:
    proba = np.array(
        [
            [0.7, 0.2, 0.1],  # predicted 0, 0.7 >= 0.5: decides
            [0.4, 0.35, 0.25],  # predicted 0, 0.4 < 0.5: abstains
            [0.1, 0.8, 0.1],  # predicted 1, class 1 has no cutoff: decides
            [0.2, 0.3, 0.5],  # predicted 2, unreachable: abstains
            [0.5, 0.3, 0.2],  # predicted 0, exactly at the cutoff: decides
        ]
    )
    cuts = [
        ClassCutoff("a", 2, 0.5, 1.0, 0.0, 1.0, "ok"),
        ClassCutoff("b", 2, math.nan, math.nan, math.nan, math.nan, "absent"),
        ClassCutoff("c", 1, math.inf, 0.0, 0.0, math.nan, "unreachable"),
    ]
    assert abstentions(proba, cuts).tolist() == [False, True, False, True, False]


def test_class_cutoffs_one_per_class_on_its_own_score() -> None:
    y = np.array([0, 0, 1, 1, 2])
    proba = np.array(
        [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7]]
    )
    cuts = class_cutoffs(y, proba, ["a", "b", "c"], default_rule())
    assert [c.name for c in cuts] == ["a", "b", "c"]
    # class a on p(a): others 0.3, 0.5, 0.1; cutoff 0.6 keeps both with no false positive
    assert cuts[0].cutoff == 0.6 and cuts[0].kept == 1.0 and cuts[0].fpr == 0.0
    # class b on p(b): 0.6, 0.4 vs 0.1, 0.3, 0.2 -> 0.4 separates perfectly
    assert cuts[1].cutoff == 0.4 and cuts[1].kept == 1.0
    assert cuts[2].cutoff == 0.7


def test_rule_from_config_and_validation() -> None:
    schema = schema_report()["cutoff"]
    assert CutoffRule.from_config(schema) == CutoffRule("youden_product", 0.95, 0.95)
    rule = CutoffRule.from_config({**schema, "rule": "recall", "recall": 0.9})
    assert rule.rule == "recall" and rule.recall == 0.9 and rule.precision == 0.95
    assert "0.9" in rule.describe()
    assert "(1 − FPR)·TPR" in default_rule().describe()
    with pytest.raises(CutoffError, match="youden"):
        default_rule(rule="youden_j")
    with pytest.raises(CutoffError, match="recall"):
        default_rule(rule="recall", recall=1.5)
    with pytest.raises(CutoffError, match="unknown"):
        CutoffRule.from_config({**schema, "rule": "recall", "recal": 0.9})
    with pytest.raises(CutoffError, match="lacks"):
        CutoffRule.from_config({"rule": "recall", "recall": 0.9})
    with pytest.raises(CutoffError, match="NaN"):
        operating_points(np.array([True, False]), np.array([0.5, math.nan]))
