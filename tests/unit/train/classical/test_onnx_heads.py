"""A classical model's ONNX file: raw spectra and tabular columns in, probabilities out."""

import json

import numpy as np
import onnxruntime as ort
import pytest
from classical_cases import blobs

from spectragrid.train.classical.families import FAMILY_REGISTRY
from spectragrid.train.classical.features import FeatureMap
from spectragrid.train.classical.onnx_heads import export_classical
from spectragrid.train.export import check_parity
from spectragrid.train.preprocessing import build_preprocessing

CANDIDATES = {
    "logreg": {"C": 1.0, "max_iter": 1000},
    "pls_da": {"n_components": 3},
    "svm": {"C": 1.0, "gamma": "scale", "calibration_folds": 3},
    "random_forest": {
        "n_estimators": 10,
        "max_features": "sqrt",
        "min_samples_leaf": 1,
        "max_depth": None,
    },
    "hist_gradient_boosting": {
        "max_iter": 10,
        "learning_rate": 0.1,
        "max_leaf_nodes": 7,
        "min_samples_leaf": 5,
        "l2_regularization": 0.0,
    },
}


@pytest.mark.parametrize("n_tabular", [0, 2])
@pytest.mark.parametrize("arch", list(CANDIDATES))
def test_every_family_exports_with_its_preprocessing_inside(arch, n_tabular, tmp_path):
    x, y = blobs(90, 3 * 20, 3, seed=8)
    spectra = (x.reshape(90, 3, 20) * 50 + 1000).astype(np.float32)
    tabular = np.random.default_rng(0).uniform(0, 10, (90, n_tabular)).astype(np.float32)
    steps = [{"crop": [402, 417]}, "snv", {"savgol": {"window": 5, "polyorder": 2, "deriv": 1}}]
    features = FeatureMap(build_preprocessing(steps, 3, 20, 400 + np.arange(20.0)), n_tabular)
    features.fit(spectra, tabular)
    family = FAMILY_REGISTRY[arch]
    values = features.transform(spectra, tabular)
    values = values.astype(np.float64) if family.float64 else values
    model = family.make(CANDIDATES[arch], 0, 1)
    model.fit(values, y, None)
    expected = model.predict_proba(values).astype(np.float32)
    path = tmp_path / "model.onnx"
    export_classical(
        features, model.head(), path, 3, 20, 3, {"classes": ["a", "b", "c"], "target": "T"}
    )

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [
        ("data_spectra", ["batch", 3, 20]),
        ("data_tabular", ["batch", n_tabular]),
    ]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == ["a", "b", "c"] and meta["target"] == "T"
    parity = check_parity(path, spectra, tabular, expected)
    assert parity["n"] == 90 and parity["argmax_agree"] == 1.0
    for batch in (1, 7):
        got = session.run(
            ["probabilities"], {"data_spectra": spectra[:batch], "data_tabular": tabular[:batch]}
        )[0]
        np.testing.assert_allclose(got, expected[:batch], atol=1e-4)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
