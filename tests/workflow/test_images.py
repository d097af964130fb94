"""Image studies through the real snakemake, one tiny run per layout.

- label_file: generated RGB faces and their label file, raw cells, label
  issues, clean cells, sheets and the summary with its review sheet of
  thumbnails;
- class_folders: generated grayscale shapes in train/val/test class folders,
  raw cells and the summary.

Plus the plan-time checks: a parameter budget and a missing pretrained file
fail `snakemake -n`, naming the key.
"""

from __future__ import annotations

import json

import onnxruntime as ort
import pandas as pd
import pytest
import yaml
from tiny_study import ROOT, Workdir

pytestmark = pytest.mark.slow


def tiny_images(kind: str) -> dict:
    config = yaml.safe_load((ROOT / "config" / "images.yaml").read_text())
    config["splits"]["k"] = 3
    base = config["models"]["lenet"]
    base["train"].update(epochs=2, patience=2)
    config["models"] = {"lenet": base}
    config["grid"]["models"] = ["lenet"]
    config["label_issues"]["models"] = ["lenet"]
    config["dataset"]["images"]["demo"].update(n_samples=90)
    if kind == "multiclass":
        root = "resources/demo_images/cells"
        config["dataset"].update(
            name="cells",
            images={
                "layout": "class_folders",
                "folder": f"{root}/images",
                "split_folders": True,
                "size": [32, 32],
                "mode": "L",
                "demo": {"kind": "multiclass", "n_samples": 90, "noise_rate": 0.05},
            },
            truth=f"{root}/truth.csv",
            channels=["L"],
            label_map={c: c for c in ("disk", "ring", "square", "cross")},
        )
        config["targets"] = {"shape": "AVA"}
        config["channel_sets"] = {"gray": ["L"]}
        config["grid"].update(targets=["shape"], channel_sets=["gray"])
        config["label_issues"]["enabled"] = False
        config["report"]["best_metric"] = "test_macro_f1"
    return config


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_an_image_study_runs_end_to_end(tmp_path, kind):
    work = Workdir(tmp_path)
    config = tiny_images(kind)
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    work.snakemake("--configfile", "study.yaml")
    name = config["dataset"]["name"]
    report = json.loads((tmp_path / f"results/{name}/cleaning_report.json").read_text())
    assert report["kept"] == 90 and report["dropped"]["unreadable"] == 1
    target, channels = config["grid"]["targets"][0], config["grid"]["channel_sets"][0]
    cell = work.cell("lenet", 0, "raw", target, channels, k=3, dataset=name)
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["input"] == "images" and metrics["onnx_parity"]["max_abs_diff"] < 1e-4
    assert set(metrics["test_per_class"]) == set(metrics["target"]["classes"])
    history = pd.read_csv(cell / "history.csv")
    assert history["epoch"].tolist()[0] == 0  # evaluated before the first epoch
    card = json.loads((cell / "card.json").read_text())
    assert card["layers"][0]["name"] and card["flops"]["max_operations"] > 0
    session = ort.InferenceSession(str(cell / "model.onnx"), providers=["CPUExecutionProvider"])
    bands = 3 if kind == "binary" else 1
    assert session.get_inputs()[0].shape[1:] == [32, 32, bands]
    summary = (tmp_path / "results/summary.html").read_text()
    assert "lenet" in summary
    rows = pd.read_csv(tmp_path / "results/summary.csv")
    assert len(rows) == (6 if kind == "binary" else 3)
    if kind == "binary":
        assert "hter" in metrics["test"]
        sheets = list((tmp_path / "results/summary_files").rglob("issues_*.html"))
        assert sheets and "data:image/png;base64," in sheets[0].read_text()


def test_plan_time_checks_name_the_key(tmp_path):
    work = Workdir(tmp_path)
    config = tiny_images("binary")
    config["models"]["lenet"]["budget"] = {"max_parameters": 100}
    config["models"]["lenet"]["pretrained"] = "weights/lenet.pth"
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = work.snakemake("-n", "--configfile", "study.yaml", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "models.lenet.pretrained: 'weights/lenet.pth' is no file" in out
    assert "models.lenet.budget.max_parameters: model 'lenet' has 61,326 parameters" in out
