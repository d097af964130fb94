"""The review loop: a reviewed-label patch reruns exactly the cells whose data it changes."""

import json

import pandas as pd
import pytest
from tiny_study import Workdir, tiny_config

from spectragrid.core import layout

pytestmark = pytest.mark.slow


def two_target_config() -> dict:
    config = tiny_config()
    config["targets"] = {"OVA_OK": "OVA OK", "OVA_0": "OVA 0"}
    config["models"] = {"small": config["models"]["small"]}
    config["grid"] = {"models": ["small"], "targets": ["OVA_OK", "OVA_0"], "channel_sets": ["all"]}
    config["label_issues"]["models"] = ["small"]
    return config


def metrics_of(work: Workdir, target: str) -> dict:
    cells = work.path / layout.DATASET_DIR.format(dataset="demo") / "cells"
    found = sorted(cells.glob(f"*/{target}/**/{layout.CELL_FILES['metrics']}"))
    assert len(found) == 6, found  # 3 folds x raw/clean
    return {str(p.relative_to(work.path)): p for p in found}


def test_a_patch_reruns_only_the_cells_of_the_targets_it_changes(tmp_path):
    work = Workdir(tmp_path)
    config = two_target_config()
    work.write_config(config)
    work.snakemake()
    labels = pd.read_parquet(work.path / layout.clean_file("demo"))
    labels = labels.sort_values("sample_id")
    sound = labels.loc[labels["full_truth"] == "OK0", "sample_id"].iloc[0]
    defect = labels.loc[labels["full_truth"] == "VR11", "sample_id"].iloc[0]
    assert (labels["full_truth"] == "CROCHET0").sum() >= 3

    # A review that confirms a given label changes no cell's data; the summary
    # only records the new config.
    patch = work.path / "config" / "reviewed.csv"
    patch.write_text(f"sample_id,corrected_label,comment\n{defect},VR11,tasted\n")
    config["dataset"]["label_patch"] = "config/reviewed.csv"
    work.write_config(config)
    assert work.planned_jobs() == {"summary": 1, "all": 1}

    # OK0 -> CROCHET0 moves the sample out of `OK` (OVA OK) but keeps its type 0 (OVA 0).
    patch.write_text(
        f"sample_id,corrected_label,comment\n{defect},VR11,tasted\n{sound},CROCHET0,off-flavour\n"
    )
    # the 6 cells of OVA_OK (3 folds x raw/clean): 2 fold-group jobs each
    assert work.planned_jobs() == {
        "train": 2,
        "label_issues": 1,
        "sheet": 2,
        "summary": 1,
        "all": 1,
    }
    # Run the raw cell that tests on the patched sample: it learns the corrected
    # label, and once run, its parameters are settled (nothing left to do for it).
    folds = pd.read_parquet(work.path / layout.folds_file("demo", 0, 3))
    fold = int(folds.loc[folds["sample_id"] == sound, "fold"].iloc[0])
    cell = layout.cell_dir("demo", "raw", "OVA_OK", "all", "small", 0, fold, 3)
    metrics = f"{cell}/{layout.CELL_FILES['metrics']}"
    assert metrics in metrics_of(work, "OVA_OK")
    work.snakemake(metrics)
    assert json.loads((work.path / metrics).read_text())["n_label_patched"] == 1
    predictions = pd.read_parquet(work.path / cell / layout.CELL_FILES["predictions"])
    row = predictions.loc[predictions["sample_id"] == sound].iloc[0]
    assert (row["full_truth"], row["label"]) == ("CROCHET0", "rest")
    settled = work.snakemake("-n", metrics)
    assert "Nothing to be done" in settled.stdout + settled.stderr

    # A wrong label is refused before any job runs, naming the file and line.
    patch.write_text(f"sample_id,corrected_label\n{sound},CROCHET0\n{defect},VRR11\n")
    failed = work.snakemake("-n", check=False)
    assert failed.returncode != 0
    assert "config/reviewed.csv line 3: corrected label 'VRR11'" in failed.stdout + failed.stderr
