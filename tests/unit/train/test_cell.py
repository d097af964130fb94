"""One training cell through the library: determinism, records, ONNX parity, clean labels."""

import dataclasses
import json

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from cell_cases import inputs, outputs, spec

from spectragrid.train.cell import run_cell
from spectragrid.train.native import build

pytestmark = pytest.mark.slow


def test_same_config_and_seed_give_identical_metrics(prepared):
    a = outputs(prepared / "a")
    b = outputs(prepared / "b")
    run_cell(spec(), *inputs(prepared), a)
    run_cell(spec(), *inputs(prepared), b)
    metrics_a, metrics_b = (json.loads(out.metrics.read_text()) for out in (a, b))
    # the checksums differ only where the card records timings
    sums_a, sums_b = metrics_a.pop("outputs"), metrics_b.pop("outputs")
    assert metrics_a == metrics_b
    assert {k: v for k, v in sums_a.items() if k != "card.json"} == {
        k: v for k, v in sums_b.items() if k != "card.json"
    }
    assert pd.read_parquet(a.predictions).equals(pd.read_parquet(b.predictions))


def test_cell_records(prepared):
    out = outputs(prepared / "records")
    curves = prepared / "records-curves"
    metrics = run_cell(spec(), *inputs(prepared), out, curves_dir=curves)
    assert metrics["target"]["classes"] == ["OK", "CROCHET", "VR", "NC"]
    assert metrics["onnx_parity"]["max_abs_diff"] <= 1e-4
    assert metrics["onnx_parity"]["argmax_agree"] == 1.0
    folds = pd.read_parquet(prepared / "folds.parquet")
    predictions = pd.read_parquet(out.predictions)
    # the test part is exactly fold 1
    assert set(predictions["sample_id"]) == set(folds.loc[folds["fold"] == 1, "sample_id"])
    history = pd.read_csv(out.history)
    assert history["epoch"].tolist() == [0, 1, 2]
    state = torch.load(out.checkpoint, weights_only=True)
    assert state["classes"] == ["OK", "CROCHET", "VR", "NC"]
    model = onnx.load(str(out.onnx))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["classes"]) == ["OK", "CROCHET", "VR", "NC"]
    assert (
        meta["display_name"] == "cnn y=['AVA', 'IN'] c=('277', '380', '425') t=() 1-3 s=0 eps=0.0"
    )
    assert [i.name for i in model.graph.input] == ["data_spectra", "data_tabular"]
    card = json.loads(out.card.read_text())
    assert card["parameters"] > 0 and card["flops_per_sample"] > 0
    # 8 output channels are no stage of the first-stage kernel's form
    pool_relu = "c kernel" if build.load("pool_relu") is not None else "torch layers"
    assert card["native"] == {"first_stage": "not applicable", "pool_relu": pool_relu}
    # the curves hold the history's rows
    logged = pd.read_csv(curves / "metrics.csv").set_index("step")
    assert logged.index.tolist() == [0, 1, 2]
    assert logged.loc[1:, "train_loss"].tolist() == history["train_loss"][1:].tolist()
    assert logged["val_macro_f1"].tolist() == history["val_macro_f1"].tolist()


@pytest.mark.parametrize("native", ["1", "0"])
def test_the_card_says_which_path_trained_the_kernels_stages(prepared, monkeypatch, native):
    if native == "1" and build.load("first_stage") is None:
        pytest.skip("no working C compiler on this machine: the kernels are off by design")
    monkeypatch.setenv("SPECTRAGRID_NATIVE", native)
    out = outputs(prepared / f"native{native}")
    cell = spec(params={"widths": [16, 16, 16]}, train={"epochs": 1, "precision": "bf16-mixed"})
    run_cell(cell, *inputs(prepared), out)
    path = "c kernel" if native == "1" else "torch layers"
    assert json.loads(out.card.read_text())["native"] == {"first_stage": path, "pool_relu": path}


def raw_metrics(prepared):
    """The raw cell's metrics, trained here when no earlier test on this worker left them."""
    out = outputs(prepared / "raw")
    if not out.metrics.exists():
        return run_cell(spec(), *inputs(prepared), out)
    return json.loads(out.metrics.read_text())


def test_clean_cell_drops_flagged_rows_from_training_only(prepared):
    raw = raw_metrics(prepared)
    table = pd.read_parquet(prepared / "clean.parquet", columns=["sample_id"])
    folds = pd.read_parquet(prepared / "folds.parquet")
    fold_of = dict(zip(folds["sample_id"], folds["fold"], strict=True))
    # flag 5 rows of each part: test fold 1, validation fold 2, training fold 0
    flagged = [s for f in (0, 1, 2) for s in [i for i in table["sample_id"] if fold_of[i] == f][:5]]
    issues = prepared / "issues.csv"
    pd.DataFrame(
        {
            "sample_id": flagged,
            "given_label": "OK",
            "suggested_label": "VR",
            "label_quality": 0.1,
            "rank": np.arange(1, 16),
        }
    ).to_csv(issues, index=False)
    clean = run_cell(
        spec("clean"),
        prepared / "clean.parquet",
        prepared / "folds.parquet",
        issues,
        outputs(prepared / "clean"),
    )
    assert clean["n_train"] == raw["n_train"] - 5
    assert clean["n_val"] == raw["n_val"] - 5
    assert clean["n_test"] == raw["n_test"]
    assert clean["n_removed_flagged"] == 10
    predictions = pd.read_parquet(prepared / "clean" / "predictions.parquet")
    assert predictions["flagged"].sum() == 5
    assert clean["test_unflagged"] is not None and raw["test_unflagged"] is None


def test_every_training_option_runs_through_a_cell(prepared):
    cell = spec(
        transforms={"da": True, "new_fluorimeter": True},
        train={
            "epochs": 3,
            "batch_size": 64,
            "patience": 3,
            "optimizer": "adamw",
            "weight_decay": 0.01,
            "scheduler": "three_plateau",
            "eps": 0.1,
            "class_weights": "balanced",
            "focal_gamma": 2.0,
            "mixup_alpha": 0.4,
            "precision": "bf16-mixed",
        },
    )
    out = outputs(prepared / "options")
    metrics = run_cell(cell, *inputs(prepared), out)
    assert metrics["display_name"].startswith(
        "cnn y=['AVA', 'IN'] c=('277', '380', '425') t=('da', 'new_fluorimeter') 1-3 s=0 eps=0.1"
    )
    assert metrics["transforms"] == ["da", "new_fluorimeter"]
    assert metrics["onnx_parity"]["max_abs_diff"] <= 1e-4
    assert set(metrics["test_per_class"]) == {"OK", "CROCHET", "VR", "NC"}
    history = pd.read_csv(out.history)
    # three plateaus over 3 epochs (2e<n: x1, 4e<3n: x0.1, else x0.01) are 2/1/0
    # epochs; each row has the lr its epoch trained with, row 0 the initial lr
    assert history["lr"].round(8).tolist() == [0.001, 0.001, 0.001, 0.0001]
    card = json.loads(out.card.read_text())
    assert card["precision"] == "bf16-mixed"


def test_plateau_schedule_cuts_the_lr_after_each_epoch_without_improvement(prepared):
    """ReduceLROnPlateau on the validation loss, stepped once per epoch, replayed by hand."""
    cell = spec(
        train={
            "epochs": 8,
            "batch_size": 64,
            "patience": 8,
            "lr": 0.01,
            "scheduler": "plateau",
            "plateau_patience": 0,
            "plateau_factor": 0.5,
        },
    )
    out = outputs(prepared / "plateau")
    run_cell(cell, *inputs(prepared), out)
    history = pd.read_csv(out.history)
    expected, lr, best = [0.01, 0.01], 0.01, np.inf
    for val_loss in history["val_loss"][1:-1]:
        if val_loss < best * (1 - 1e-4):  # ReduceLROnPlateau's default relative threshold
            best = val_loss
        else:
            lr *= 0.5
        expected.append(lr)
    assert history["lr"].tolist() == pytest.approx(expected)
    assert expected[-1] < 0.01  # the case exercises at least one cut


@pytest.mark.parametrize("action", ["relabel", "downweight"])
def test_clean_cell_actions(prepared, action):
    table = pd.read_parquet(prepared / "clean.parquet", columns=["sample_id"])
    issues = prepared / f"issues_{action}.csv"
    pd.DataFrame(
        {
            "sample_id": table["sample_id"][:30],
            "given_label": "OK",
            "suggested_label": "VR",
            "label_quality": 0.1,
            "rank": np.arange(1, 31),
        }
    ).to_csv(issues, index=False)
    cell = dataclasses.replace(spec("clean"), action=action, downweight=0.2)
    metrics = run_cell(
        cell,
        prepared / "clean.parquet",
        prepared / "folds.parquet",
        issues,
        outputs(prepared / action),
    )
    raw = raw_metrics(prepared)
    assert metrics["label_action"] == action
    assert metrics["n_removed_flagged"] == 0
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (
        raw["n_train"],
        raw["n_val"],
        raw["n_test"],
    )
    changed = metrics["n_relabelled"] if action == "relabel" else metrics["n_downweighted"]
    # the flagged rows outside the test fold, and no others
    assert 0 < changed < 30


def test_a_class_smaller_than_the_fold_count_fails_the_cell_before_any_output(prepared):
    from spectragrid.data.targets import TargetError

    counts = pd.read_parquet(prepared / "clean.parquet")["full_truth"].value_counts()
    rare = counts.index[counts < 3][0]
    cell = spec(
        target="rare_vs_ok",
        target_spec={"column": "full_truth", "classes": {"ok": ["OK0"], "rare": [rare]}},
    )
    out = outputs(prepared / "rare")
    with pytest.raises(TargetError) as info:
        run_cell(cell, *inputs(prepared), out)
    assert f"targets.rare_vs_ok: class(es) rare ({counts[rare]}) have fewer samples than " in str(
        info.value
    )
    assert "splits.k = 3" in str(info.value)
    assert list((prepared / "rare").iterdir()) == []
