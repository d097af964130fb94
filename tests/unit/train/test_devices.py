"""The model card's device facts when a scheduler hands a job a GPU torch cannot open."""

import pytest
import torch

from spectragrid.train.devices import device_report

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")


def test_a_visible_device_that_torch_cannot_open_is_recorded_as_a_cpu_fallback(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    report = device_report("cpu")
    assert report == {
        "device": "cpu",
        "device_index": None,
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


def test_precision_auto_is_bf16_where_the_hardware_computes_it(monkeypatch):
    from spectragrid.train import devices

    monkeypatch.setattr(devices, "native_bf16", lambda: True)
    assert devices.effective_precision("auto") == "bf16-mixed"
    monkeypatch.setattr(devices, "native_bf16", lambda: False)
    assert devices.effective_precision("auto") == "32-true"
    # fp16 autocast is a GPU feature
    assert devices.effective_precision("16-mixed") == "32-true"
    assert devices.effective_precision("bf16-mixed") == "bf16-mixed"


def test_the_training_fabric_runs_on_the_cpu_in_the_precision_asked(monkeypatch):
    from spectragrid.train.devices import training_fabric

    fabric = training_fabric("bf16-mixed", None, [])
    assert fabric.device == torch.device("cpu")
    with fabric.autocast():
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    with training_fabric("32-true", None, []).autocast():
        assert not torch.is_autocast_enabled("cpu")
    assert torch.are_deterministic_algorithms_enabled()
