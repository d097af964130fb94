"""ONNX export: one calling convention for every model, parity checked on the way out."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from spectragrid.train.batches import Arrays
from spectragrid.train.export import ExportError, check_parity, export_onnx
from spectragrid.train.models import build_model
from spectragrid.train.predict import predict_proba


@pytest.mark.parametrize("n_tabular", [0, 2])
def test_every_model_takes_spectra_and_a_tabular_array_even_without_tabular_columns(
    tmp_path, n_tabular
):
    torch.manual_seed(0)
    model = build_model("cnn", {"widths": [4, 4], "kernel": 5}, 2, 40, n_tabular, 3)
    rng = np.random.default_rng(0)
    spectra = rng.uniform(0, 100, (7, 2, 40)).astype(np.float32)
    tabular = rng.uniform(0, 1, (7, n_tabular)).astype(np.float32)
    model.fit_scaling(spectra, tabular)
    path = tmp_path / "model.onnx"
    export_onnx(model, path, 2, 40, n_tabular, {"classes": ["a", "b", "c"]})

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [
        ("data_spectra", ["batch", 2, 40]),
        ("data_tabular", ["batch", n_tabular]),
    ]
    expected = predict_proba(
        model,
        Arrays(
            torch.from_numpy(spectra), torch.from_numpy(tabular), torch.zeros(7, dtype=torch.int64)
        ),
    )
    parity = check_parity(path, spectra, tabular, expected)
    assert parity["max_abs_diff"] <= 1e-4 and parity["argmax_agree"] == 1.0 and parity["n"] == 7
    # a model that drifted from its export is caught
    with pytest.raises(ExportError, match="onnxruntime disagrees with torch"):
        check_parity(path, spectra, tabular, np.roll(expected, 1, axis=1))
