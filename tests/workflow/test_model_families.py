"""Every model family trains one epoch through the real workflow and exports a faithful ONNX."""

import json

import pytest
from tiny_study import Workdir, tiny_config

from spectragrid.core import layout

pytestmark = pytest.mark.slow

FAMILIES = {
    "cnn": {"widths": [4, 4, 4]},
    "vgg11": {"width": 0.0625},
    "vgg16": {"width": 0.0625},
    "resnetv2": {"base_width": 4},
    "transformer": {"dim": 16, "heads": 2, "depth": 1, "patch": 32},
    "mlp": {"hidden": [16]},
}


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
