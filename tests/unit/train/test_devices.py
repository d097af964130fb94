"""The model card's device facts when a scheduler hands a job a GPU torch cannot open."""

import pytest
import torch

from spectragrid.train.training import device_report

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


def test_a_visible_device_that_torch_cannot_open_is_recorded_as_a_cpu_fallback(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    report = device_report("cpu")
    assert report == {
        "device": "cpu",
        "cuda_visible_devices": "1",
        "cuda_device_count": 0,
        "device_name": "cpu",
        "gpu_fallback": True,
    }


@pytest.mark.parametrize("visible", [None, "", "-1"])
def test_no_device_handed_out_is_no_fallback(monkeypatch, visible):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    report = device_report("cpu")
    assert report["cuda_visible_devices"] == visible
    assert report["gpu_fallback"] is False
