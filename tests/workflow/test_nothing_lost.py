"""Nothing lost in a full run of the tiny study: raw files, rows, samples per cell.

All checks read the outputs of the shared `finished_tiny_study` run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_study import tiny_config

from spectragrid.core import layout
from spectragrid.data.cleaning import REASONS
from spectragrid.data.demo import generate_demo
from spectragrid.data.unpickle import load_pickle_dataframe
from spectragrid.train.checkpoints import load_checkpoint
from spectragrid.train.models import build_model

pytestmark = pytest.mark.slow


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _report(study) -> dict:
    return json.loads((study.path / layout.cleaning_report("demo")).read_text())


def test_raw_files_are_byte_identical_after_a_full_run(finished_tiny_study, tmp_path: Path):
    # The demo generator writes the same bytes for the same arguments: generating
    # the raw files again here gives their checksums before the run.
    demo = tiny_config()["dataset"]["demo"]
    fresh = generate_demo(tmp_path, **demo)
    report = _report(finished_tiny_study)
    raw_dir = finished_tiny_study.path / "resources" / "demo" / "raw"
    assert [f["file"] for f in report["files"]] == [Path(p).name for p in fresh["raw_files"]]
    for entry, before in zip(report["files"], fresh["raw_files"], strict=True):
        after = raw_dir / entry["file"]
        assert _sha(after) == _sha(Path(before)) == entry["sha256"], entry["file"]
    truth = finished_tiny_study.path / "resources" / "demo" / "truth.csv"
    assert _sha(truth) == _sha(tmp_path / "truth.csv")


def test_every_input_row_is_kept_or_dropped_for_one_reason_per_file(finished_tiny_study):
    results = finished_tiny_study.path / layout.DATASET_DIR.format(dataset="demo")
    report = _report(finished_tiny_study)
    dropped = pd.read_csv(results / "dropped.csv", dtype={"sample_id": str}, keep_default_na=False)
    kept = pd.read_parquet(
        finished_tiny_study.path / layout.clean_file("demo"), columns=["source_file", "source_row"]
    )
    raw_dir = finished_tiny_study.path / "resources" / "demo" / "raw"
    assert len(report["files"]) == 2
    for entry in report["files"]:
        rows = len(load_pickle_dataframe(raw_dir / entry["file"]))
        assert entry["rows"] == rows
        assert sorted(entry["dropped"]) == sorted(REASONS)
        assert entry["kept"] + sum(entry["dropped"].values()) == rows
        mine = dropped.loc[dropped["source_file"] == entry["file"]]
        assert mine["reason"].value_counts().to_dict() == {
            reason: n for reason, n in entry["dropped"].items() if n
        }
        kept_rows = kept.loc[kept["source_file"] == entry["file"], "source_row"].tolist()
        assert len(kept_rows) == entry["kept"]
        assert sorted(kept_rows + mine["source_row"].tolist()) == list(range(rows))
    assert report["input_rows"] == sum(f["rows"] for f in report["files"])
    assert report["kept"] == len(kept)
    # the demo's dirt is there to be dropped: every reason is exercised
    assert all(n > 0 for n in report["dropped"].values()), report["dropped"]


def test_the_summary_states_each_cells_samples_and_they_match_the_folds(finished_tiny_study):
    summary = pd.read_csv(finished_tiny_study.path / layout.SUMMARY_CSV)
    folds = pd.read_parquet(finished_tiny_study.path / layout.folds_file("demo", 0, 3))
    issues = pd.read_csv(
        finished_tiny_study.path
        / layout.issues_dir("demo", "OVA_OK", "all", 0, 3)
        / layout.ISSUES_FILES["issues"],
        dtype={"sample_id": str},
    )
    flagged = folds["sample_id"].isin(issues["sample_id"])
    assert flagged.any()
    k = 3
    assert len(summary) == 12
    for row in summary.itertuples():
        test = folds["fold"] == row.fold
        val = folds["fold"] == (row.fold + 1) % k
        train = ~(test | val)
        # OVA OK covers every sample; clean cells drop the flagged training/validation
        # samples but those their own model's raw cells predict as given (own_model_veto)
        raw = pd.concat(
            pd.read_parquet(
                finished_tiny_study.cell(row.model, f) / layout.CELL_FILES["predictions"]
            )
            for f in range(k)
        )
        agrees = raw.loc[raw["pred_index"] == raw["label_index"], "sample_id"]
        removed = flagged & ~folds["sample_id"].isin(agrees) if row.labels == "clean" else False
        expected = (
            int((train & ~removed).sum()),
            int((val & ~removed).sum()),
            int(test.sum()),
        )
        assert (row.n_train, row.n_val, row.n_test) == expected, (row.labels, row.model, row.fold)
    assert (summary["n_train"] + summary["n_val"] + summary["n_test"] <= len(folds)).all()


def test_a_cell_checkpoint_loads_as_weights_only_and_restores_the_model(finished_tiny_study):
    cell = finished_tiny_study.cell("cnn")
    state = load_checkpoint(cell / layout.CELL_FILES["checkpoint"])
    assert state["classes"] == ["OK", "rest"]
    assert state["channels"] == ["277", "380", "425"]
    model = build_model(state["arch"], state["model_params"], 3, 446, state["n_tabular"], 2)
    model.load_state_dict(state["state_dict"])
    assert all(torch.isfinite(p).all() for p in model.parameters())
