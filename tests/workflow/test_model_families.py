"""Every model family, network or classical, goes through the real workflow and exports a
faithful ONNX file."""

import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from tiny_study import Workdir, tiny_config

from spectragrid.core import layout
from spectragrid.core.config import complete_model
from spectragrid.train.cell import CellOutputs, CellSpec, run_cell
from spectragrid.train.checkpoints import load_checkpoint

pytestmark = pytest.mark.slow

FAMILIES = {
    "cnn": {"widths": [4, 4, 4]},
    "vgg11": {"width": 0.0625},
    "vgg16": {"width": 0.0625},
    "resnetv2": {"base_width": 4},
    "transformer": {"dim": 16, "heads": 2, "depth": 1, "patch": 32},
    "mlp": {"hidden": [16]},
}

NETWORK_PREPROCESSING = [
    {"crop": [300, 700]},
    "msc",
    "snv",
    {"savgol": {"window": 9, "polyorder": 2, "deriv": 1}},
    "minmax",
]


def test_every_family_trains_and_exports(tmp_path):
    config = tiny_config()
    base = config["models"]["cnn"]
    config["models"] = {
        name: {
            "arch": name,
            "params": params,
            "transforms": {"da": True},
            "train": {**base["train"], "epochs": 1, "patience": 1},
        }
        for name, params in FAMILIES.items()
    }
    # a network with every kind of step: the ONNX file still takes raw spectra
    config["models"]["cnn"]["preprocessing"] = NETWORK_PREPROCESSING
    config["grid"]["models"] = list(FAMILIES)
    config["label_issues"] = {"enabled": False}
    work = Workdir(tmp_path)
    work.write_config(config)
    targets = {name: work.cell(name) / layout.CELL_FILES["metrics"] for name in FAMILIES}
    work.snakemake(*[str(path.relative_to(work.path)) for path in targets.values()])
    for name in FAMILIES:
        metrics = json.loads(targets[name].read_text())
        parity = metrics["onnx_parity"]
        assert parity["n"] == metrics["n_test"] > 0, name
        assert parity["max_abs_diff"] <= 1e-4, name
        assert parity["argmax_agree"] == 1.0, name
        assert metrics["display_name"].startswith(f"{name} y=['OVA', 'OK']"), name
        assert "t=('da',)" in metrics["display_name"], name
        card = json.loads((targets[name].parent / layout.CELL_FILES["card"]).read_text())
        assert card["parameters"] > 0 and card["flops_per_sample"] > 0
    state = load_checkpoint(targets["cnn"].parent / layout.CELL_FILES["checkpoint"])
    assert state["preprocessing"] == NETWORK_PREPROCESSING


# Small candidate lists, and every preprocessing step somewhere.
CLASSICAL = {
    "pls_da": {
        "params": {"n_components": [2, 4]},
        "preprocessing": [
            {"crop": [300, 700]},
            "snv",
            {"savgol": {"window": 11, "polyorder": 2, "deriv": 1}},
            "standard",
        ],
    },
    "logreg": {
        "params": {"C": [0.0001, 0.001, 0.01, 0.1, 1.0]},
        "preprocessing": ["msc", "standard"],
    },
    "svm": {"params": {"C": [1.0, 10.0], "calibration_folds": 3}},
    "random_forest": {"params": {"n_estimators": 30, "min_samples_leaf": [1, 3]}},
    "hist_gradient_boosting": {
        "params": {"max_iter": 20, "max_leaf_nodes": [7, 15]},
        "preprocessing": [{"savgol": {"window": 5, "polyorder": 2, "deriv": 0}}],
    },
}


def test_every_classical_family_is_fitted_chosen_on_validation_and_exported(tmp_path):
    config = tiny_config()
    config["models"] = {name: {"arch": name, **entry} for name, entry in CLASSICAL.items()}
    config["grid"]["models"] = list(CLASSICAL)
    config["label_issues"] = {"enabled": False}
    work = Workdir(tmp_path)
    work.write_config(config)
    cells = {(name, fold): work.cell(name, fold) for name in CLASSICAL for fold in range(3)}
    wanted = [cells[key] / layout.CELL_FILES["metrics"] for key in cells]
    wanted += [work.cell(name, 0) / layout.SHEET_FILES["png"] for name in CLASSICAL]
    work.snakemake(*[str(path.relative_to(work.path)) for path in wanted])
    for (name, _), folder in cells.items():
        metrics = json.loads((folder / layout.CELL_FILES["metrics"]).read_text())
        parity = metrics["onnx_parity"]
        assert metrics["family"] == "classical" and metrics["arch"] == name
        assert parity["n"] == metrics["n_test"] > 0, name
        assert parity["max_abs_diff"] <= 1e-4 and parity["argmax_agree"] == 1.0, name
        predictions = pd.read_parquet(folder / layout.CELL_FILES["predictions"])
        proba = predictions[[c for c in predictions if c.startswith("prob_")]].to_numpy()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
        card = json.loads((folder / layout.CELL_FILES["card"]).read_text())
        scores = [c["val_macro_f1"] for c in card["candidates"]]
        # the first candidate with the best validation score, whatever the test fold says
        assert card["chosen"] == card["candidates"][scores.index(max(scores))]["params"], name
        assert metrics["display_name"].startswith(f"{name} y=['OVA', 'OK']"), name
        session = ort.InferenceSession(
            str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        assert [i.name for i in session.get_inputs()] == ["data_spectra", "data_tabular"]
        assert session.get_inputs()[0].shape == ["batch", 3, 446]
    for name in CLASSICAL:
        assert (work.cell(name, 0) / layout.SHEET_FILES["png"]).stat().st_size > 0
    _test_fold_would_have_chosen_otherwise(work, config)


def _test_fold_would_have_chosen_otherwise(work: Workdir, config: dict) -> None:
    """Refit each logreg candidate alone on the same cell and score it on the test fold:
    on some fold the test fold prefers another candidate than the one the cell kept."""
    entry = complete_model(config["models"]["logreg"])
    clean = work.path / layout.clean_file("demo")
    folds = work.path / layout.folds_file("demo", 0, 3)
    disagreements = 0
    for fold in range(3):
        card = json.loads((work.cell("logreg", fold) / layout.CELL_FILES["card"]).read_text())
        on_test = []
        for candidate in card["candidates"]:
            params = {**entry["params"], "C": [candidate["params"]["C"]]}
            cell = CellSpec(
                dataset="demo",
                labels="raw",
                target="OVA_OK",
                target_spec="OVA OK",
                channels_name="all",
                channels=["277", "380", "425"],
                model="logreg",
                arch="logreg",
                model_params=params,
                train=entry["train"],
                tabular=["greffon_transmittance", "greffon_brix"],
                seed=0,
                fold=fold,
                k=3,
                transforms=entry["transforms"],
                action=None,
                downweight=None,
                preprocessing=entry["preprocessing"],
            )
            out = work.path / "refit" / f"f{fold}-{candidate['number']}"
            out.mkdir(parents=True)
            files = CellOutputs(**{key: out / name for key, name in layout.CELL_FILES.items()})
            metrics = run_cell(cell, clean, folds, None, files)
            on_test.append(metrics["test"]["macro_f1"])
            # the same fit as inside the cell: its validation score is the card's
            single = json.loads(files.card.read_text())["candidates"][0]
            assert single["val_macro_f1"] == candidate["val_macro_f1"]
        test_best = on_test.index(max(on_test)) + 1
        disagreements += test_best != card["chosen_number"]
    assert disagreements > 0


def test_a_classical_model_judges_the_labels_beside_a_network_and_the_summary_compares(
    tmp_path,
):
    config = tiny_config()
    config["models"] = {
        "cnn": config["models"]["cnn"],
        "pls_da": {"arch": "pls_da", "params": {"n_components": [2, 4]}},
    }
    config["grid"]["models"] = ["cnn", "pls_da"]
    config["label_issues"].update(models=["pls_da", "cnn"], action="downweight")
    work = Workdir(tmp_path)
    work.write_config(config)
    work.snakemake()
    issues_dir = work.path / layout.issues_dir("demo", "OVA_OK", "all", 0, 3)
    flagged = pd.read_csv(issues_dir / layout.ISSUES_FILES["issues"])
    assert len(flagged) > 0
    for fold in range(3):
        clean = json.loads(
            (work.cell("pls_da", fold, "clean") / layout.CELL_FILES["metrics"]).read_text()
        )
        assert clean["label_action"] == "downweight" and clean["n_downweighted"] > 0
        assert clean["onnx_parity"]["argmax_agree"] == 1.0
    summary = pd.read_csv(work.path / layout.SUMMARY_CSV)
    assert set(summary["family"]) == {"network", "classical"}
    assert set(summary.loc[summary["model"] == "pls_da", "arch"]) == {"pls_da"}
    html = (work.path / layout.SUMMARY_HTML).read_text()
    assert "Networks vs classical" in html
    # one plain sentence per target and label set on the baseline
    assert html.count("Baseline, <b>raw</b> labels") == 1
    assert html.count("Baseline, <b>clean</b> labels") == 1
