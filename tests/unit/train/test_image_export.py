"""An image model's ONNX file: uint8 HWC in, the data set's bands picked inside, parity gate."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from spectragrid.train.export import ExportError
from spectragrid.train.image_export import check_image_parity, export_image_onnx
from spectragrid.train.image_models import build_image_model


def test_uint8_hwc_in_probabilities_out_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = build_image_model("img_lenet", {}, 2, (32, 32), 3)
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)  # R, G, B
    model.fit_scaling(hwc[..., [2, 0]].transpose(0, 3, 1, 2))
    path = tmp_path / "model.onnx"
    export_image_onnx(
        model, path, 32, 32, ["R", "G", "B"], ["B", "R"], {"classes": ["a", "b", "c"]}
    )
    model.eval()
    with torch.no_grad():
        chw = torch.from_numpy(np.ascontiguousarray(hwc[..., [2, 0]].transpose(0, 3, 1, 2)))
        expected = torch.softmax(model(chw), dim=1).numpy()
    parity = check_image_parity(path, hwc, expected)
    assert parity["n"] == 5 and parity["max_abs_diff"] < 1e-5
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "image" and inp.type == "tensor(uint8)" and inp.shape[1:] == [32, 32, 3]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["classes"] == '["a", "b", "c"]'
    with pytest.raises(ExportError, match="onnxruntime disagrees"):
        check_image_parity(path, hwc, expected[:, ::-1].copy())


@pytest.mark.parametrize("size", [16, 40, 64])
def test_lenet_exports_at_sizes_its_pool_does_not_divide(tmp_path, size):
    # the features leave 2x2 (pooled up to 5x5), 7x7 and 13x13: no whole AveragePool
    torch.manual_seed(0)
    model = build_image_model("img_lenet", {}, 1, (size, size), 2)
    rng = np.random.default_rng(size)
    hwc = rng.integers(0, 256, (4, size, size, 1), dtype=np.uint8)
    model.fit_scaling(hwc.transpose(0, 3, 1, 2))
    path = tmp_path / "model.onnx"
    export_image_onnx(model, path, size, size, ["L"], ["L"], {"classes": ["a", "b"]})
    model.eval()
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(hwc.transpose(0, 3, 1, 2))), dim=1)
    assert check_image_parity(path, hwc, expected.numpy())["max_abs_diff"] < 1e-5
