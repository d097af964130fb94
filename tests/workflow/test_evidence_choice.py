"""Which out-of-fold probabilities judge the labels: the evidence choice of the
label_issues rule, on the real workflow (one short snakemake run)."""

import json

import pandas as pd
import pytest
from tiny_study import Workdir, tiny_config

from spectragrid.core import layout
from spectragrid.data.clean_file import read_labels
from spectragrid.data.targets import resolve
from spectragrid.issues.find import chosen_sources, find_issues
from spectragrid.issues.out_of_fold import assemble_oof, mean_oof, oof_log_loss

pytestmark = pytest.mark.slow


def test_a_channel_set_is_judged_by_the_best_sources_of_the_whole_grid(tmp_path):
    config = tiny_config()
    config["channel_sets"]["ex277"] = ["277"]
    config["grid"]["channel_sets"] = ["all", "ex277"]
    config["label_issues"].update(
        models=["cnn", "small"], channel_sets="all", combine="greedy_log_loss"
    )
    work = Workdir(tmp_path)
    work.write_config(config)
    issues_dir = work.path / layout.issues_dir("demo", "OVA_OK", "ex277", 0, 3)
    evidence_file = issues_dir / layout.ISSUES_FILES["evidence"]
    # only what the ex277 label-issues job needs: the raw cells of both models on both sets
    work.snakemake(str(evidence_file.relative_to(work.path)))

    evidence = json.loads(evidence_file.read_text())
    # its own channel set first (named by model), then the other one
    assert list(evidence["log_loss"]) == ["cnn", "small", "cnn/all", "small/all"]
    assert evidence["combine"] == "greedy_log_loss"

    clean = work.path / layout.clean_file("demo")
    labels = read_labels(clean)
    target = resolve("OVA_OK", config["targets"]["OVA_OK"], labels)
    classes = list(target.classes)
    expected_ids = labels["sample_id"][target.encode(labels["full_truth"]) >= 0]
    oofs, losses = {}, {}
    for name in evidence["log_loss"]:
        model, _, channels = name.partition("/")
        files = [
            work.cell(model=model, channels=channels or "ex277", fold=f)
            / layout.CELL_FILES["predictions"]
            for f in range(3)
        ]
        oofs[name] = assemble_oof(files, classes, expected_ids)
        losses[name] = oof_log_loss(oofs[name], classes)
    assert evidence["log_loss"] == pytest.approx(losses)
    names = list(losses)
    best = min(losses, key=losses.get)
    used = [
        names[i]
        for i in chosen_sources(
            list(oofs.values()), list(losses.values()), classes, "greedy_log_loss"
        )
    ]
    # the greedy average starts from the best source; each one added lowered the log-loss
    assert evidence["used"] == used and used[0] == best
    chosen = mean_oof([oofs[n] for n in used], classes) if len(used) > 1 else oofs[best]
    assert evidence["used_log_loss"] == pytest.approx(oof_log_loss(chosen, classes))
    assert evidence["used_log_loss"] <= losses[best]

    # the issues and the probabilities written are those of the chosen average
    settings = {k: config["label_issues"].get(k) for k in ("filter_by", "rank_by")}
    settings["min_examples_per_class"] = config["label_issues"]["min_examples_per_class"]
    expected = find_issues(chosen, classes, **settings)
    issues = pd.read_csv(issues_dir / layout.ISSUES_FILES["issues"], dtype={"sample_id": str})
    assert issues["sample_id"].tolist() == expected["sample_id"].astype(str).tolist()
    oof = pd.read_parquet(issues_dir / layout.ISSUES_FILES["oof"])
    assert oof["prob_OK"].to_numpy() == pytest.approx(chosen["prob_OK"].to_numpy())

    # the plan follows the config: `own` judges ex277 by its own cells only, so the
    # `all` cells are no longer inputs and the job reruns (its params changed)
    config["label_issues"]["channel_sets"] = "own"
    work.write_config(config)
    planned = work.planned_jobs(str(evidence_file.relative_to(work.path)))
    assert planned == {"label_issues": 1}


def test_a_judge_outside_the_grid_weighs_in_without_joining_the_grid(tmp_path):
    """label_issues.models may name a model the grid does not train: its raw cells are
    trained for the evidence only, with no clean twin and no row in the summary."""
    config = tiny_config()
    config["models"]["judge"] = {"arch": "pls_da", "params": {"n_components": [2, 4]}}
    config["grid"]["models"] = ["small"]
    config["label_issues"].update(
        models=["small", "judge"], channel_sets=["all"], combine="model_mean"
    )
    work = Workdir(tmp_path)
    work.write_config(config)
    work.snakemake()

    for fold in range(3):
        assert (work.cell("judge", fold) / layout.CELL_FILES["metrics"]).is_file()
        assert not work.cell("judge", fold, "clean").exists()
        assert (work.cell("small", fold, "clean") / layout.CELL_FILES["metrics"]).is_file()
    summary = pd.read_csv(work.path / layout.SUMMARY_CSV)
    assert set(summary["model"]) == {"small"} and len(summary) == 6
    issues_dir = work.path / layout.issues_dir("demo", "OVA_OK", "all", 0, 3)
    evidence = json.loads((issues_dir / layout.ISSUES_FILES["evidence"]).read_text())
    # one source per model: both weigh in, whatever their log-loss
    assert evidence["combine"] == "model_mean"
    assert evidence["used"] == ["small", "judge"]
    # the judge's training job is benchmarked as the grid's are (the summary's cost reads it)
    judge_bench = work.path / layout.benchmark_file(
        layout.fold_group_key(3).format(
            dataset="demo", labels="raw", target="OVA_OK", channels="all", model="judge", seed=0
        ),
        "train",
    )
    assert judge_bench.is_file()

    # a judge that is not defined is named at the config check
    config["label_issues"]["models"] = ["small", "jugde"]
    work.write_config(config)
    failed = work.snakemake("-n", check=False)
    assert failed.returncode != 0
    assert "label_issues.models: 'jugde' is not defined" in failed.stderr + failed.stdout
