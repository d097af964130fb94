"""ONNX export: one calling convention for every model, parity checked on the way out."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from spectragrid.train.batches import Arrays
from spectragrid.train.export import ExportError, check_parity, export_onnx, write_model
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


def test_write_model_checks_the_graph_and_writes_the_metadata_as_text(tmp_path):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], "g", [x], [y])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "model.onnx"
    write_model(proto, path, {"classes": ["a", "b"], "target": "OVA OK"})
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta == {"classes": '["a", "b"]', "target": "OVA OK"}
    broken = helper.make_model(
        helper.make_graph([helper.make_node("Softmax", ["missing"], ["y"])], "g", [x], [y])
    )
    with pytest.raises(onnx.checker.ValidationError):
        write_model(broken, tmp_path / "broken.onnx", {})
    assert not (tmp_path / "broken.onnx").exists()


def test_parity_on_a_cells_test_rows_reads_them_a_batch_at_a_time(tmp_path, monkeypatch):
    """A cell hands the whole data set and its test rows: the same verdict and figures as
    on the rows' copy, the rows gathered at most PARITY_BATCH at a time; predictions too
    read their part batch by batch."""
    from spectragrid.train import export

    torch.manual_seed(1)
    model = build_model("cnn", {"widths": [4, 4], "kernel": 5}, 2, 40, 1, 3)
    rng = np.random.default_rng(1)
    spectra = rng.uniform(0, 100, (50, 2, 40)).astype(np.float32)
    spectra.flags.writeable = False  # the cell's shared array
    tabular = rng.uniform(0, 1, (50, 1)).astype(np.float32)
    rows = np.sort(rng.choice(50, 17, replace=False))
    model.fit_scaling(spectra, tabular, rows=rows)
    path = tmp_path / "model.onnx"
    export_onnx(model, path, 2, 40, 1, {"classes": ["a", "b", "c"]})

    part = Arrays(
        torch.from_numpy(spectra.copy()),
        torch.from_numpy(tabular[rows]),
        torch.zeros(len(rows), dtype=torch.int64),
        rows=torch.from_numpy(rows),
    )
    expected = predict_proba(model, part, batch_size=4)
    assert part._gathered is None  # predicted batch by batch, never gathered whole
    np.testing.assert_array_equal(
        expected,
        predict_proba(
            model,
            Arrays(torch.from_numpy(spectra[rows]), part.tabular, part.labels),
            batch_size=4,
        ),
    )
    gathered = []
    take = export._Rows.__getitem__

    def spy(self, index):
        out = take(self, index)
        gathered.append(len(out))
        return out

    monkeypatch.setattr(export, "PARITY_BATCH", 5)
    monkeypatch.setattr(export._Rows, "__getitem__", spy)
    lazily = check_parity(path, spectra, tabular[rows], expected, rows=rows)
    assert gathered == [5, 5, 5, 2]
    assert lazily == check_parity(path, spectra[rows], tabular[rows], expected)
    assert lazily["n"] == 17 and lazily["argmax_agree"] == 1.0
    with pytest.raises(ExportError, match="onnxruntime disagrees with torch"):
        check_parity(path, spectra, tabular[rows], np.roll(expected, 1, axis=1), rows=rows)
