"""The raw/clean verdict: "helped" or "hurt" only when the paired test over folds (and
seeds) is significant at the study's level, on the truth where there is one."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from spectragrid.report.raw_vs_clean import (
    cleaning_verdict,
    mean_interval,
    paired_raw_clean,
    verdict_metric,
)
from spectragrid.report.summary_page import _cleaning_verdict

POINT = {"dataset": "demo", "target": "OVA_OK", "channels": "all", "model": "cnn", "k": 5}


def cells(truth_diff, given_diff, seeds=(0, 1), truth=True) -> pd.DataFrame:
    """Raw and clean cells of one grid point over `seeds` x 5 folds; the clean cells
    differ from their raw twins by the given per-pair differences."""
    rows = []
    rng = np.random.default_rng(0)
    pairs = [(s, f) for s in seeds for f in range(5)]
    for i, (seed, fold) in enumerate(pairs):
        base = 0.80 + rng.normal(0, 0.01)
        for labels, shift in (("raw", 0.0), ("clean", 1.0)):
            rows.append(
                {
                    **POINT,
                    "labels": labels,
                    "seed": seed,
                    "fold": fold,
                    "test_macro_f1": base + shift * given_diff[i],
                    "test_ece": 0.03 + shift * 0.07,
                    "truth_macro_f1": (base - 0.05 + shift * truth_diff[i]) if truth else np.nan,
                    "truth_ece": (0.15 - shift * 0.13) if truth else np.nan,
                    "n_removed_flagged": 30 * shift,
                }
            )
    return pd.DataFrame(rows)


def verdict_html(frame: pd.DataFrame, level: float = 0.05) -> str:
    best = pd.DataFrame([{**POINT, "labels": "raw", "seed": 0}])
    pooled = paired_raw_clean(frame, level, pool_seeds=True)
    return _cleaning_verdict(best, pooled, "test_macro_f1", level)


def first_paragraph(html: str) -> str:
    return html.split("</p>")[0]


UP = [0.02, 0.03, 0.01, 0.04, 0.02, 0.03, 0.01, 0.02, 0.05, 0.02]
MIXED = [0.02, -0.03, 0.01, -0.01, 0.02, -0.02, 0.01, -0.02, 0.03, -0.01]


def test_a_significant_gain_on_the_truth_says_helped_with_the_given_labels_beside() -> None:
    # the given test labels say the opposite: the verdict still follows the truth
    html = verdict_html(cells(UP, [-d for d in UP]))
    head = first_paragraph(html)
    assert '<span class="better"><b>helped</b></span>' in head
    assert "against the truth" in head and "truth macro-F1" in head
    assert "10 pairs" in head and "Wilcoxon" in head and "p 0.002" in head
    assert re.search(r"95% interval \[\+0\.0\d\d, \+0\.0\d\d\]", head)
    given = html.split("</p>")[1]
    assert "Against the given (noisy) test labels" in given and "macro-F1 raw" in given
    assert "helped" not in given and "hurt" not in given
    # calibration against both, raw -> clean
    assert "against the truth 0.150 → 0.020" in html
    assert "against the given labels 0.030 → 0.100" in html


def test_a_significant_loss_says_hurt() -> None:
    head = first_paragraph(verdict_html(cells([-d for d in UP], UP)))
    assert '<span class="worse"><b>hurt</b></span>' in head
    assert "helped" not in head


def test_no_significant_difference_says_so_with_the_interval() -> None:
    head = first_paragraph(verdict_html(cells(MIXED, MIXED)))
    assert '<span class=""><b>no detectable difference</b></span>' in head
    assert "helped" not in head and "hurt" not in head
    low, high = mean_interval(np.array(MIXED), 0.05)
    assert low < 0 < high
    assert f"95% interval [{low:+.3f}, {high:+.3f}]" in head


def test_five_folds_cannot_reach_five_percent_and_the_page_says_why() -> None:
    # all five differences agree: the exact signed-rank p is 2/32 = 0.0625
    head = first_paragraph(verdict_html(cells(UP[:5], UP[:5], seeds=(0,))))
    assert "<b>no detectable difference</b>" in head
    assert "cannot go below p 0.062" in head and "splits.seeds" in head
    # the level comes from the config: at 0.1 the same folds are significant
    head = first_paragraph(verdict_html(cells(UP[:5], UP[:5], seeds=(0,)), level=0.1))
    assert "<b>helped</b>" in head and "90% interval" in head


def test_without_truth_the_given_labels_decide() -> None:
    frame = cells(UP, UP, truth=False)
    pooled = paired_raw_clean(frame, 0.05, pool_seeds=True)
    assert verdict_metric("test_macro_f1", pooled) == "test_macro_f1"
    html = verdict_html(frame)
    assert "<b>helped</b>" in first_paragraph(html)
    assert "against the truth" not in html and "noisy" not in html
    assert "against the given labels 0.030 → 0.100" in html


def test_seeds_pool_into_one_test_and_stay_apart_otherwise() -> None:
    frame = cells(UP, UP)
    pooled = paired_raw_clean(frame, 0.05, pool_seeds=True)
    assert len(pooled) == 1 and pooled["n_folds"].iloc[0] == 10
    assert pooled["truth_macro_f1_verdict"].iloc[0] == "helped"
    per_seed = paired_raw_clean(frame, 0.05)
    assert per_seed["n_folds"].tolist() == [5, 5]
    # five agreeing folds per seed: p = 0.0625 each, not significant at 0.05
    assert set(per_seed["truth_macro_f1_verdict"]) == {"no detectable difference"}


@pytest.mark.parametrize(
    ("p", "diff", "lower", "expected"),
    [
        (0.01, 0.02, False, "helped"),
        (0.01, -0.02, False, "hurt"),
        (0.01, -0.02, True, "helped"),  # a lower log-loss or calibration error is better
        (0.05, 0.02, False, "no detectable difference"),  # p must be below the level
        (1.0, -0.02, False, "no detectable difference"),
        (float("nan"), 0.02, False, "cannot tell"),
    ],
)
def test_cleaning_verdict_wording(p, diff, lower, expected) -> None:
    assert cleaning_verdict(p, diff, lower, 0.05) == expected
