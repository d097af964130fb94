"""Networks against the classical baseline: the paired test, the verdicts, the plain words."""

import math

import numpy as np
import pandas as pd
import pytest

from spectragrid.report.baseline import networks_vs_classical, verdict
from spectragrid.report.summary_page import _baseline_lines, _baseline_section

F1 = "test_macro_f1"


def cells(points: dict[tuple[str, str, str], list[float]], labels: str = "raw") -> pd.DataFrame:
    """(model, family, channels) -> one metric value per fold."""
    rows = [
        {
            "dataset": "demo",
            "labels": labels,
            "target": "OVA_OK",
            "channels": channels,
            "model": model,
            "seed": 0,
            "fold": fold,
            "k": len(values),
            "family": family,
            F1: value,
            "test_log_loss": 1 - value,
        }
        for (model, family, channels), values in points.items()
        for fold, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


BASE = [0.80, 0.82, 0.78, 0.81]


def plus(values: list[float], deltas: list[float]) -> list[float]:
    return list(np.asarray(values) + np.asarray(deltas))


def test_the_baseline_is_the_best_classical_point_and_every_network_is_paired_with_it():
    table = cells(
        {
            ("pls_da", "classical", "all"): BASE,
            ("pls_da", "classical", "ex277"): [0.6] * 4,
            ("svm", "classical", "all"): [0.7] * 4,
            ("cnn", "network", "all"): plus(BASE, [0.05, 0.08, 0.06, 0.07]),
            ("cnn", "network", "ex277"): plus(BASE, [-d for d in [0.05, 0.09, 0.06, 0.08]]),
        }
    )
    result = networks_vs_classical(table, F1).set_index("channels")
    assert set(result["baseline_model"]) == {"pls_da"} and set(result["baseline_channels"]) == {
        "all"
    }
    better, worse = result.loc["all"], result.loc["ex277"]
    assert better["diff_mean"] == pytest.approx(0.065) and better["n_network_better"] == 4
    # four non-zero differences: the paired t-test
    assert better["test"] == "paired t" and better["p"] < 0.05 and better["verdict"] == "better"
    assert worse["verdict"] == "worse" and worse["n_network_better"] == 0
    assert better["diffs"] == "f0:+0.050 f1:+0.080 f2:+0.060 f3:+0.070"


def test_five_folds_all_one_way_are_no_detectable_difference_for_the_signed_rank_test():
    base = [0.8, 0.81, 0.79, 0.82, 0.8]
    table = cells(
        {
            ("logreg", "classical", "all"): base,
            ("cnn", "network", "all"): plus(base, [0.01, 0.02, 0.03, 0.04, 0.05]),
        }
    )
    row = networks_vs_classical(table, F1).iloc[0]
    assert row["test"] == "Wilcoxon" and row["p"] == pytest.approx(0.0625)
    assert row["smallest_p"] == pytest.approx(2 / 32)
    assert row["verdict"] == "no detectable difference" and row["n_network_better"] == 5


def test_a_lower_is_better_metric_turns_the_comparison_around():
    table = cells(
        {
            ("pls_da", "classical", "all"): BASE,
            ("cnn", "network", "all"): plus(BASE, [0.05, 0.08, 0.06, 0.07]),
        }
    )
    row = networks_vs_classical(table, "test_log_loss").iloc[0]
    # a higher macro-F1 here is a lower log-loss: still better, and the sign says lower
    assert row["diff_mean"] == pytest.approx(-0.065) and row["verdict"] == "better"


def test_verdicts():
    assert verdict(0.01, 0.02, lower=False) == "better"
    assert verdict(0.01, 0.02, lower=True) == "worse"
    assert verdict(0.2, 0.02, lower=False) == "no detectable difference"
    assert verdict(math.nan, 0.02, lower=False) == "cannot tell"


def test_without_a_classical_model_there_is_nothing_to_compare():
    table = cells({("cnn", "network", "all"): BASE})
    assert networks_vs_classical(table, F1).empty


def test_one_shared_fold_cannot_tell():
    table = cells({("pls_da", "classical", "all"): [0.8], ("cnn", "network", "all"): [0.9]})
    row = networks_vs_classical(table, F1).iloc[0]
    assert row["verdict"] == "cannot tell" and row["n_folds"] == 1


def test_the_summary_says_plainly_when_no_network_beats_the_baseline():
    base = [0.8, 0.81, 0.79, 0.82, 0.8]
    table = cells(
        {
            ("pls_da", "classical", "all"): base,
            ("cnn", "network", "all"): plus(base, [0.01, -0.02, 0.015, -0.01, 0.005]),
        }
    )
    comparison = networks_vs_classical(table, F1)
    (line,) = _baseline_lines(comparison, "OVA_OK")
    assert "<b>no network beats the classical baseline</b> <b>pls_da</b> on all" in line
    assert "no detectable difference at p &lt; 0.05" in line
    assert "the network higher on 3 of 5" in line
    # the folds do not all go one way: the limit of the signed-rank test is not the point
    assert "cannot go below" not in line
    section = _baseline_section(comparison)
    assert "no detectable difference" in section and "pls_da" in section


def test_the_summary_says_when_five_folds_cannot_detect_a_difference():
    base = [0.8, 0.81, 0.79, 0.82, 0.8]
    table = cells(
        {
            ("logreg", "classical", "all"): base,
            ("cnn", "network", "all"): plus(base, [0.01, 0.02, 0.03, 0.04, 0.05]),
        }
    )
    (line,) = _baseline_lines(networks_vs_classical(table, F1), "OVA_OK")
    assert "With 5 folds the signed-rank test cannot go below p 0.062" in line


def test_the_summary_names_a_network_that_beats_the_baseline():
    table = cells(
        {
            ("pls_da", "classical", "all"): BASE,
            ("cnn", "network", "all"): plus(BASE, [0.05, 0.08, 0.06, 0.07]),
        }
    )
    (line,) = _baseline_lines(networks_vs_classical(table, F1), "OVA_OK")
    assert "<b>cnn</b> on all beats the classical baseline</span> <b>pls_da</b> on all" in line


def test_without_a_classical_model_the_section_says_how_to_add_one():
    assert "add one (arch pls_da" in _baseline_section(networks_vs_classical(cells({}), F1))
