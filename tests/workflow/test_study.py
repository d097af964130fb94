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


def test_jobs_are_grouped_by_the_cluster_profiles_only(finished_tiny_study):
    # a local dry run lists plain jobs: no group to plan at 10,000 cells
    proc = finished_tiny_study.snakemake("-n", "--forcerun", "sheet")
    assert "Group job" not in proc.stdout + proc.stderr
    assert "rule sheet:" in proc.stdout + proc.stderr
    slurm = finished_tiny_study.snakemake(
        "-n", "--forcerun", "sheet", "--profile", "profiles/slurm", "--executor", "local"
    )
    assert "Group job sheets" in slurm.stdout + slurm.stderr


def test_each_models_clean_cells_spare_the_flagged_samples_its_raw_cells_predict_as_given(
    finished_tiny_study,
):
    work = finished_tiny_study
    issues_dir = work.path / layout.issues_dir("demo", "OVA_OK", "all", 0, 3)
    flagged = pd.read_csv(issues_dir / layout.ISSUES_FILES["issues"], dtype={"sample_id": str})
    folds = pd.read_parquet(work.path / layout.folds_file("demo", 0, 3)).set_index("sample_id")
    spared_any = 0
    for model in ("cnn", "small"):
        raw = pd.concat(
            pd.read_parquet(work.cell(model, fold) / layout.CELL_FILES["predictions"])
            for fold in range(3)
        ).set_index("sample_id")
        own = raw.loc[flagged["sample_id"]]
        agrees = own.index[(own["pred_index"] == own["label_index"]).to_numpy()]
        for fold in range(3):
            metrics = json.loads(
                (work.cell(model, fold, "clean") / layout.CELL_FILES["metrics"]).read_text()
            )
            # spared: flagged, predicted as given, and training or validating in this fold
            expected = int((folds.loc[agrees, "fold"] != fold).sum())
            assert metrics["n_spared_flagged"] == expected, (model, fold)
            spared_any += expected
    assert spared_any > 0


def test_the_study_s_train_sheet_and_summary_jobs_ran_in_the_warm_interpreters(
    finished_tiny_study,
):
    """Four train and four sheet jobs and the summary: the run started a job server for
    the training jobs and one for the sheets and the summary, and every one of those
    jobs ran in a child of its server, which recorded what it used beside the job's
    benchmark file; the summary's cost table reads those figures."""
    results = finished_tiny_study.path / "results"
    log = (finished_tiny_study.path / layout.log_file("", "job_server")).read_text()
    assert "job server: train modules loaded" in log
    assert "job server: sheet, summary modules loaded" in log
    benchmarks = results / "benchmarks"
    for rule, jobs in (("train", 4), ("sheet", 4), ("summary", 1)):
        files = sorted(benchmarks.rglob(f"{rule}.tsv"))
        assert len(files) == jobs, rule
        for tsv in files:
            usage = json.loads(tsv.with_suffix(".usage.json").read_text())
            # the child did the work: far more CPU than the script that waited for it
            script_cpu = float(tsv.read_text().splitlines()[1].split("\t")[-1])
            assert usage["cpu_seconds"] > 2 * script_cpu, (tsv, usage)
            assert usage["max_rss_mb"] > 100
