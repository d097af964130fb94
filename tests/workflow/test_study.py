"""The real snakemake on the tiny study: outputs and no-op reruns (edits: test_reruns.py)."""

import json

import pandas as pd
import pytest

from spectragrid.core import layout

pytestmark = pytest.mark.slow


def test_summary_has_one_row_per_cell_with_real_metrics(finished_tiny_study):
    summary = pd.read_csv(finished_tiny_study.path / layout.SUMMARY_CSV)
    assert len(summary) == 2 * 3 * 2  # models x folds x label sets
    assert set(summary["labels"]) == {"raw", "clean"}
    assert set(summary["model"]) == {"cnn", "small"}
    assert sorted(summary["fold"].unique()) == [0, 1, 2]
    for metric in ("test_accuracy", "test_macro_f1", "test_auc"):
        assert summary[metric].between(0, 1).all(), metric
    # clean cells are tested on exactly the raw cells' test folds
    sizes = summary.pivot_table(index=["model", "fold"], columns="labels", values="n_test")
    assert (sizes["raw"] == sizes["clean"]).all()
    # ... but train on fewer samples (flagged ones removed)
    train = summary.pivot_table(index=["model", "fold"], columns="labels", values="n_train")
    assert (train["clean"] <= train["raw"]).all() and (train["clean"] < train["raw"]).any()
    # the demo has a truth file: accuracy against the true labels is reported
    assert summary["truth_accuracy"].between(0, 1).all()
    assert summary["onnx_max_abs_diff"].max() <= 1e-4


def test_outputs_of_a_cell(finished_tiny_study):
    cell = finished_tiny_study.cell("cnn")
    metrics = json.loads((cell / layout.CELL_FILES["metrics"]).read_text())
    assert metrics["target"]["classes"] == ["OK", "rest"]
    assert metrics["onnx_parity"]["argmax_agree"] == 1.0
    history = pd.read_csv(cell / layout.CELL_FILES["history"])
    assert history["epoch"].tolist()[0] == 0  # evaluated before the first epoch
    predictions = pd.read_parquet(cell / layout.CELL_FILES["predictions"])
    assert len(predictions) == metrics["n_test"]
    assert abs(predictions[["prob_OK", "prob_rest"]].sum(axis=1) - 1).max() < 1e-5
    assert (cell / layout.SHEET_FILES["png"]).stat().st_size > 10_000
    html = (finished_tiny_study.path / layout.SUMMARY_HTML).read_text()
    assert "OVA_OK" in html and "https://" not in html


def test_a_finished_study_plans_nothing(finished_tiny_study):
    assert finished_tiny_study.planned_jobs() == {}
