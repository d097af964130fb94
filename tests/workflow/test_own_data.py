"""A user's own raw files through `spectragrid init` and the real snakemake, per label layout.

Two tiny studies, each run once through every rule (raw cells, label issues,
clean cells, sheets, summary):

- grain: one text label column, a CSV table without an id column, lots of
  three replicates; the review loop with a label patch on top;
- campaign: severity and type, two Parquet files, and a user-defined target
  on the severity column (not the full truth).

Each starts from the config `spectragrid init` writes, shrunk to seconds
(3 folds, one small CNN, 2 epochs).
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from own_data import grain_frame
from tiny_study import Workdir

from spectragrid.core import layout
from spectragrid.data.demo import generate_demo
from spectragrid.data.unpickle import load_pickle_dataframe

pytestmark = pytest.mark.slow

SPECTRAGRID = Path(sys.executable).parent / "spectragrid"


def init(work: Workdir, *paths: str) -> subprocess.CompletedProcess:
    """`spectragrid init PATH... --force` in the study folder, as a user runs it."""
    proc = subprocess.run(
        [str(SPECTRAGRID), "init", *paths, "--force"],
        cwd=work.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def shrink(work: Workdir) -> dict:
    """The config init wrote, made to run in seconds: 3 folds, a tiny CNN, 2 epochs."""
    path = work.path / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["splits"]["k"] = 3
    model = config["models"]["cnn"]
    model["params"]["widths"] = [4] * len(model["params"]["widths"])
    model["train"].update(epochs=2, patience=2, batch_size=64)
    return config


def cells(work: Workdir, dataset: str, labels: str) -> list[Path]:
    root = work.path / layout.DATASET_DIR.format(dataset=dataset) / "cells" / labels
    return sorted(root.glob(f"**/{layout.CELL_FILES['metrics']}"))


@pytest.fixture(scope="module")
def grain(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    work = Workdir(tmp_path_factory.mktemp("grain"))
    (work.path / "data").mkdir()
    grain_frame(180).to_csv(work.path / "data" / "grain.csv", index=False)
    said = init(work, "data/grain.csv").stdout
    assert "  labels: column 'variety', 3 classes" in said
    assert "  group: 'lot' (60 groups)" in said
    work.write_config(shrink(work))
    work.snakemake()
    return work


def test_one_label_column_runs_every_rule(grain: Workdir) -> None:
    raw, clean = cells(grain, "grain", "raw"), cells(grain, "grain", "clean")
    assert len(raw) == len(clean) == 3
    metrics = json.loads(raw[0].read_text())
    assert metrics["target"]["classes"] == ["barley", "rye", "wheat"]
    issues_dir = grain.path / layout.issues_dir("grain", "classes", "all", 0, 3)
    issues = pd.read_csv(issues_dir / layout.ISSUES_FILES["issues"])
    assert set(issues["given_label"]) <= {"barley", "rye", "wheat"}
    summary = pd.read_csv(grain.path / layout.SUMMARY_CSV)
    assert sorted(summary["labels"].unique()) == ["clean", "raw"]
    report = json.loads((grain.path / layout.cleaning_report("grain")).read_text())
    assert report["kept_by_label"] == {"barley": 60, "rye": 60, "wheat": 60}
    assert report["notices"] == []
    clean_table = pd.read_parquet(grain.path / layout.clean_file("grain"))
    assert clean_table["sample_id"].iloc[0] == "grain.csv:0"
    # the own-model veto on 3 classes from one label column: each clean fold spares the
    # flagged training/validation samples its model's raw cells predict as given
    folds = pd.read_parquet(grain.path / layout.folds_file("grain", 0, 3)).set_index("sample_id")
    predicted = pd.concat(pd.read_parquet(p.with_name("predictions.parquet")) for p in raw)
    own = predicted.set_index("sample_id").loc[issues["sample_id"].astype(str)]
    agrees = own.index[(own["pred_index"] == own["label_index"]).to_numpy()]
    for path in clean:
        metrics = json.loads(path.read_text())
        fold = metrics["cell"]["fold"]
        assert metrics["n_spared_flagged"] == int((folds.loc[agrees, "fold"] != fold).sum())


def test_one_label_column_takes_a_label_patch(grain: Workdir) -> None:
    folds = pd.read_parquet(grain.path / layout.folds_file("grain", 0, 3))
    sample = folds.sort_values("sample_id")["sample_id"].iloc[0]
    fold = int(folds.loc[folds["sample_id"] == sample, "fold"].iloc[0])
    patch = grain.path / "config" / "reviewed.csv"
    patch.write_text(f"sample_id,corrected_label\n{sample},rye\n")
    config = yaml.safe_load((grain.path / "config" / "config.yaml").read_text())
    config["dataset"]["label_patch"] = "config/reviewed.csv"
    grain.write_config(config)
    planned = grain.planned_jobs()
    # 6 cells (3 folds x raw/clean): one train job per fold group
    assert planned["train"] == 2 and planned["label_issues"] == 1
    metrics = layout.cell_dir("grain", "raw", "classes", "all", "cnn", 0, fold, 3)
    metrics += f"/{layout.CELL_FILES['metrics']}"
    grain.snakemake(metrics)
    assert json.loads((grain.path / metrics).read_text())["n_label_patched"] == 1
    # a correction that is not a label of the study is refused before any job
    patch.write_text(f"sample_id,corrected_label\n{sample},oats\n")
    refused = grain.snakemake("-n", check=False)
    assert refused.returncode != 0
    assert (
        "config/reviewed.csv line 2: corrected label 'oats' is not a label of "
        "dataset.label_map; write one of barley, rye, wheat"
    ) in refused.stdout + refused.stderr


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    work = Workdir(tmp_path_factory.mktemp("campaign"))
    demo = generate_demo(work.path / "generated", n_samples=240, seed=1)
    (work.path / "data").mkdir()
    names = []
    for path in map(Path, demo["raw_files"]):
        frame = load_pickle_dataframe(path).astype({"mesure_date": str})
        frame.to_parquet(work.path / "data" / f"{path.stem}.parquet")
        names.append(f"data/{path.stem}.parquet")
    said = init(work, *names).stdout
    assert "  labels: severity 'greffon_defaut_severite' and type 'greffon_defaut_type'" in said
    config = shrink(work)
    # a user-defined target on the severity column, not on the full truth
    config["targets"] = {
        "sound": {
            "column": "severity",
            "classes": {"sound": ["OK", "CROCHET"], "defect": ["VR", "NC"]},
        }
    }
    config["grid"]["targets"] = ["sound"]
    work.write_config(config)
    work.snakemake()
    return work


def test_severity_and_type_in_parquet_with_a_target_on_severity(campaign: Workdir) -> None:
    dataset = yaml.safe_load((campaign.path / "config" / "config.yaml").read_text())["dataset"]
    assert len(cells(campaign, dataset["name"], "clean")) == 3
    issues_dir = campaign.path / layout.issues_dir(dataset["name"], "sound", "all", 0, 3)
    issues = pd.read_csv(issues_dir / layout.ISSUES_FILES["issues"])
    assert set(issues["given_label"]) <= {"sound", "defect"}
    metrics = json.loads(cells(campaign, dataset["name"], "raw")[0].read_text())
    assert metrics["target"]["classes"] == ["sound", "defect"]
    report = json.loads((campaign.path / layout.cleaning_report(dataset["name"])).read_text())
    assert [f["file"] for f in report["files"]] == [Path(p).name for p in dataset["raw"]]
    # the demo's rarest full truths have fewer samples than folds: said once, in the
    # cleaning report and on the summary page
    assert report["notices"] and "fewer than splits.k = 3" in report["notices"][0]
    page = (campaign.path / layout.SUMMARY_HTML).read_text()
    assert html.escape(report["notices"][0], quote=True) in page
