from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_cases import K, truth_frame, write_cell, write_grid

from spectragrid.report.raw_vs_clean import paired_p_value, paired_raw_clean
from spectragrid.report.summary_tables import add_truth_metrics, load_cells


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, list[Path]]:
    return write_grid(tmp_path)


def test_paired_p_value_chooses_the_test() -> None:
    raw = np.array([0.80, 0.82, 0.79, 0.81, 0.80])
    clean = raw + np.array([0.02, 0.03, 0.01, 0.04, 0.05])
    p, test = paired_p_value(raw, clean)
    assert test == "Wilcoxon" and p == pytest.approx(0.0625)  # exact, all 5 signs agree
    p, test = paired_p_value(raw[:3], clean[:3])
    assert test == "paired t" and 0 < p < 0.2
    assert math.isnan(paired_p_value(raw[:1], clean[:1])[0])
    assert paired_p_value(raw, raw) == (1.0, "none (all differences 0)")
    p, test = paired_p_value(raw[:3], raw[:3] + 0.01)
    assert math.isnan(p) and test.startswith("t")
    p, _ = paired_p_value(np.array([0.8, math.nan, 0.7]), np.array([0.9, 0.9, math.nan]))
    assert math.isnan(p)  # one usable pair only


def test_paired_raw_clean_fold_by_fold(grid) -> None:
    base, paths = grid
    cells = add_truth_metrics(load_cells(paths, base), truth_frame(), paths)
    # a raw cell of another model has no clean twin: no pair
    extra = write_cell(base.parent, "raw", 0, model="mlp")
    cells = pd.concat([cells, load_cells([extra], base)], ignore_index=True)
    paired = paired_raw_clean(cells)
    assert len(paired) == 1
    row = paired.iloc[0]
    assert row["n_folds"] == K and row["folds"] == "0,1,2,3,4"
    raw = cells[(cells.labels == "raw") & (cells.model == "cnn")].sort_values("fold")
    clean = cells[cells.labels == "clean"].sort_values("fold")
    diff = clean["test_accuracy"].to_numpy() - raw["test_accuracy"].to_numpy()
    assert row["test_accuracy_diff_mean"] == pytest.approx(diff.mean())
    assert row["test_accuracy_diff_sd"] == pytest.approx(diff.std(ddof=1))
    assert row["test_accuracy_raw_mean"] == pytest.approx(raw["test_accuracy"].mean())
    assert row["test_accuracy_diffs"].split() == [f"f{f}:{d:+.3f}" for f, d in enumerate(diff)]
    assert row["test_accuracy_p"] == pytest.approx(
        paired_p_value(raw["test_accuracy"], clean["test_accuracy"])[0]
    )
    assert np.isfinite(row["truth_macro_f1_diff_mean"])
    assert row["unflagged_accuracy_clean_mean"] == pytest.approx(clean["unflagged_accuracy"].mean())
    assert row["n_removed_flagged_mean"] == 3
    assert paired_raw_clean(cells.iloc[0:0]).empty
