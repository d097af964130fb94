"""A classical cell through the library: the outputs of a network's cell, a choice made on
the validation fold, clean-label actions, and no Lightning."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from cell_cases import inputs, outputs, spec

from spectragrid.core.config import complete_model
from spectragrid.train.architectures._common import ModelError
from spectragrid.train.cell import CellSpec, run_cell
from spectragrid.train.checkpoints import load_checkpoint

SMALL = {
    "pls_da": {"n_components": [2, 4]},
    "logreg": {"C": [0.01, 1.0]},
    "svm": {"C": [1.0], "calibration_folds": 3},
    "random_forest": {"n_estimators": 20, "min_samples_leaf": [1, 5]},
    "hist_gradient_boosting": {"max_iter": 10, "max_leaf_nodes": [7]},
}
CLASSES = ["OK", "CROCHET", "VR", "NC"]


def classical(arch: str, labels: str = "raw", **model) -> CellSpec:
    """fold 1 of 3 of the small demo set, AVA_IN, all channels, as the workflow passes it."""
    entry = complete_model({"arch": arch, "params": SMALL[arch], **model})
    return dataclasses.replace(
        spec(labels),
        model=arch,
        arch=arch,
        model_params=entry["params"],
        train=entry["train"],
        transforms=entry["transforms"],
        preprocessing=entry["preprocessing"],
    )


def issues_file(path: Path, sample_ids, suggested: str = "VR") -> Path:
    pd.DataFrame(
        {
            "sample_id": list(sample_ids),
            "given_label": "OK",
            "suggested_label": suggested,
            "label_quality": 0.1,
            "rank": np.arange(1, len(sample_ids) + 1),
        }
    ).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("arch", list(SMALL))
def test_a_classical_cell_writes_what_a_network_cell_writes(prepared, arch):
    out = outputs(prepared / f"classical-{arch}")
    metrics = run_cell(classical(arch), *inputs(prepared), out)
    assert metrics["family"] == "classical" and metrics["arch"] == arch
    assert metrics["target"]["classes"] == CLASSES
    parity = metrics["onnx_parity"]
    assert parity["n"] == metrics["n_test"] > 0
    assert parity["max_abs_diff"] <= 1e-4 and parity["argmax_agree"] == 1.0

    folds = pd.read_parquet(prepared / "folds.parquet")
    predictions = pd.read_parquet(out.predictions)
    assert set(predictions["sample_id"]) == set(folds.loc[folds["fold"] == 1, "sample_id"])
    proba = predictions[[f"prob_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert (predictions["pred_index"] == proba.argmax(axis=1)).all()

    card = json.loads(out.card.read_text())
    candidates = card["candidates"]
    history = pd.read_csv(out.history)
    assert history["epoch"].tolist() == [c["number"] for c in candidates]
    assert history["val_macro_f1"].tolist() == pytest.approx(
        [c["val_macro_f1"] for c in candidates]
    )
    # the kept candidate is the first with the best validation score
    scores = [c["val_macro_f1"] for c in candidates]
    assert card["chosen_number"] == metrics["best_epoch"] == scores.index(max(scores)) + 1
    assert card["chosen"] == metrics["chosen"] == candidates[scores.index(max(scores))]["params"]
    assert metrics["epochs_run"] == len(candidates) and card["parameters"] > 0

    state = load_checkpoint(out.checkpoint)
    assert state["arch"] == arch and state["classes"] == CLASSES
    assert state["head"]["kind"] in {"affine", "rbf_kernel", "trees"}
    assert any(key.startswith("head.") for key in state["state_dict"])

    session = ort.InferenceSession(str(out.onnx), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["display_name"] == f"{arch} y=['AVA', 'IN'] c=('277', '380', '425') t=() 1-3 s=0"
    assert meta["config_hash"] == metrics["config_hash"]


@pytest.mark.slow
def test_classical_and_network_cells_write_the_same_records(prepared):
    network = outputs(prepared / "contract-network")
    run_cell(spec(), *inputs(prepared), network)
    mine = outputs(prepared / "contract-classical")
    run_cell(classical("logreg"), *inputs(prepared), mine)
    theirs, ours = (json.loads(o.metrics.read_text()) for o in (network, mine))
    assert set(theirs) <= set(ours)
    assert set(theirs["outputs"]) == set(ours["outputs"])
    assert list(pd.read_parquet(network.predictions)) == list(pd.read_parquet(mine.predictions))
    card_theirs, card_ours = (json.loads(o.card.read_text()) for o in (network, mine))
    assert set(card_theirs) <= set(card_ours)
    assert {"epoch", "val_loss", "val_macro_f1"} <= set(pd.read_csv(mine.history))


@pytest.mark.parametrize("action", ["drop", "relabel", "downweight"])
def test_clean_classical_cells_act_on_the_flagged_rows(prepared, action):
    raw = run_cell(classical("logreg"), *inputs(prepared), outputs(prepared / "clf-raw"))
    table = pd.read_parquet(prepared / "clean.parquet", columns=["sample_id"])
    issues = issues_file(prepared / f"clf-issues-{action}.csv", table["sample_id"][:40])
    cell = dataclasses.replace(classical("logreg", "clean"), action=action, downweight=0.2)
    out = outputs(prepared / f"clf-{action}")
    clean = run_cell(cell, prepared / "clean.parquet", prepared / "folds.parquet", issues, out)
    assert clean["label_action"] == action and clean["n_test"] == raw["n_test"]
    changed = {
        "drop": raw["n_train"] + raw["n_val"] - clean["n_train"] - clean["n_val"],
        "relabel": clean["n_relabelled"],
        "downweight": clean["n_downweighted"],
    }[action]
    assert 0 < changed < 40
    before = pd.read_parquet(prepared / "clf-raw" / "predictions.parquet")
    after = pd.read_parquet(out.predictions)
    assert not np.allclose(before["prob_OK"], after["prob_OK"])


def test_balanced_class_weights_change_the_fit(prepared):
    plain = run_cell(classical("logreg"), *inputs(prepared), outputs(prepared / "cw-none"))
    weighted = classical("logreg", train={"class_weights": "balanced"})
    balanced = run_cell(weighted, *inputs(prepared), outputs(prepared / "cw-balanced"))
    assert plain["test"] != balanced["test"]


def test_a_class_left_without_training_rows_fails_the_cell(prepared):
    table = pd.read_parquet(prepared / "clean.parquet", columns=["sample_id", "severity"])
    issues = issues_file(prepared / "no-nc.csv", table.loc[table["severity"] == "NC", "sample_id"])
    cell = classical("pls_da", "clean")
    with pytest.raises(ModelError, match=r"class\(es\) \['NC'\] have no training row"):
        run_cell(
            cell,
            prepared / "clean.parquet",
            prepared / "folds.parquet",
            issues,
            outputs(prepared / "no-nc"),
        )


def test_a_classical_cell_imports_no_lightning_and_no_onnx_before_its_export(prepared, tmp_path):
    """Its fixed cost: importing Lightning takes seconds, onnx is needed only to export."""
    script = f"""
import dataclasses, sys
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
import spectragrid.train.cell
import spectragrid.train.classical.cell
heavy = ("lightning", "lightning_fabric", "onnx", "onnxruntime")
early = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
assert not early, early
from pathlib import Path
from test_classical_cell import classical
from cell_cases import inputs, outputs
cell, out = classical("pls_da"), outputs(Path({str(tmp_path)!r}))
spectragrid.train.cell.run_cell(cell, *inputs(Path({str(prepared)!r})), out)
late = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "lightning_fabric"))
assert not late, late
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "model.onnx").exists()


def test_the_chosen_candidate_is_refitted_on_training_and_validation_rows(prepared):
    kept = run_cell(classical("logreg"), *inputs(prepared), outputs(prepared / "refit-on"))
    alone = classical("logreg")
    alone = dataclasses.replace(alone, train={**alone.train, "refit": False})
    selected = run_cell(alone, *inputs(prepared), outputs(prepared / "refit-off"))
    assert kept["refit_on_validation"] and not selected["refit_on_validation"]
    # the same choice on the same validation fold, then a model that saw a third more rows
    assert kept["chosen"] == selected["chosen"]
    on = json.loads((prepared / "refit-on" / "card.json").read_text())
    off = json.loads((prepared / "refit-off" / "card.json").read_text())
    scores = ("params", "val_loss", "val_macro_f1")
    assert [[c[k] for k in scores] for c in on["candidates"]] == [
        [c[k] for k in scores] for c in off["candidates"]
    ]
    assert on["refit_seconds"] > 0 and off["refit_seconds"] is None
    assert kept["n_test"] == selected["n_test"]
    assert kept["test"]["log_loss"] != selected["test"]["log_loss"]
    assert kept["onnx_parity"]["max_abs_diff"] <= 1e-4
