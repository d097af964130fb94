"""Serving an image study: the served model of an image target, a batch of image files,
`POST /api/predict` with one image, and the page drawing it in real headless Chromium.

A tiny image study (90 generated RGB faces, 3 folds, a LeNet for 2 epochs, no label
cleaning) is run once by the real snakemake, with its `best` model served and the
demo's image folder scored as a batch by the rules. The demo folder holds the
files the ingest drops (unreadable, wrong size, wrong mode), so the batch lists
them with the ingest's reasons.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from serving_study import artifacts, chromium
from tiny_study import ROOT, Workdir

from spectragrid.core import layout
from spectragrid.serve.app import create_app
from spectragrid.serve.client import post_file
from spectragrid.serve.model import ServedModel
from spectragrid.serve.scoring import predict_batch
from spectragrid.serve.served import build_served_model
from spectragrid.serve.server import RunningServer, start_in_thread
from spectragrid.serve.study import load_study

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5
TARGET = "OVA_glasses"
BATCH = "new_faces"
IMAGES = "resources/demo_images/faces/images"
EVIL_NAME = "<img src=x onerror=window.__pwned=1>.png"


def _config() -> dict:
    config = yaml.safe_load((ROOT / "config" / "images.yaml").read_text())
    config["splits"]["k"] = 3
    lenet = config["models"]["lenet"]
    lenet["train"].update(epochs=2, patience=2)
    config["models"] = {"lenet": lenet}
    config["grid"]["models"] = ["lenet"]
    config["label_issues"] = {"enabled": False, "models": ["lenet"]}
    config["dataset"]["images"]["demo"].update(n_samples=90)
    config["predict"] = {"batches": {BATCH: [IMAGES]}}
    return config


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Workdir:
    work = Workdir(tmp_path_factory.mktemp("image_study"))
    work.write_config(_config())
    work.snakemake()
    work.snakemake(layout.PREDICTION_FILES["parquet"].format(batch=BATCH))
    return work


def _cell(study: Workdir, fold: int = 0) -> Path:
    return study.cell("lenet", fold, "raw", TARGET, "rgb", k=3, dataset="faces")


@pytest.fixture(scope="module")
def one_cell(study: Workdir, tmp_path_factory) -> Path:
    """Fold 0's cell served on its own (`predict.models: {channels, model, fold: 0}`)."""
    out = tmp_path_factory.mktemp("one_cell")
    build_served_model(
        target=TARGET,
        choice={"best": False, "labels": "raw", "channels": "rgb", "model": "lenet", "seed": 0},
        cell_dirs=[str(_cell(study, 0))],
        clean_path=study.path / layout.clean_file("faces"),
        summary_path=None,
        dataset="faces",
        best_metric="test_balanced_accuracy",
        cutoff={"rule": "youden_product", "recall": 0.95, "precision": 0.95},
        out_onnx=out / "model.onnx",
        out_card=out / "card.json",
    )
    return out / "model.onnx"


def _predictions(study: Workdir, fold: int = 0) -> pd.DataFrame:
    return pd.read_parquet(_cell(study, fold) / layout.CELL_FILES["predictions"]).set_index(
        "sample_id"
    )


def _probs(frame: pd.DataFrame, classes: list[str], prefix: str = "") -> np.ndarray:
    return frame[[f"{prefix}prob_{c}" for c in classes]].to_numpy(np.float64)


def test_best_serves_the_folds_of_an_image_target_as_one_file(study: Workdir) -> None:
    card = json.loads((study.path / layout.served_file(TARGET, "card")).read_text())
    assert card["serving"]["kind"] == "ensemble" and len(card["serving"]["members"]) == 3
    assert card["serving"]["chosen_by"]["rule"] == "best"
    assert card["image_size"] == [32, 32] and card["data_bands"] == ["R", "G", "B"]
    assert card["parity"]["max_abs_diff"] <= TOLERANCE and card["parity"]["n"] > 0
    served = ServedModel.load(study.path / layout.served_file(TARGET, "onnx"))
    assert served.takes_images and served.card()["input"] == "images"


def test_the_image_batch_scores_every_file_and_lists_the_ingest_drops(study: Workdir) -> None:
    scores = pd.read_parquet(study.path / layout.PREDICTION_FILES["parquet"].format(batch=BATCH))
    # every file but Snakemake's hidden .snakemake_timestamp of the demo's folder
    files = [p for p in (study.path / IMAGES).rglob("*") if p.is_file()]
    assert len(scores) == len([p for p in files if not p.name.startswith(".")]) > 90
    dropped = pd.read_csv(study.path / layout.DROPPED_FILE.format(dataset="faces"))
    dropped = dropped[dropped["reason"].isin(["unreadable", "wrong_size", "wrong_mode"])]
    listed = scores[scores[f"{TARGET}.reason"] != ""]
    assert dict(
        zip(listed["sample_id"], listed[f"{TARGET}.reason"].str.split(":").str[0], strict=True)
    ) == dict(zip(dropped["sample_id"], dropped["reason"], strict=True))
    assert len(listed) == 3 and listed[f"{TARGET}.prob_glasses"].isna().all()
    # the ensemble's scores are the mean of its three fold models on the same images
    served = ServedModel.load(study.path / layout.served_file(TARGET, "onnx"))
    ok = scores[scores[f"{TARGET}.reason"] == ""]
    pixels = np.stack([np.asarray(Image.open(study.path / IMAGES / s)) for s in ok["sample_id"]])
    mean = np.mean(
        [
            ServedModel.load(_cell(study, f) / layout.CELL_FILES["onnx"]).image_probabilities(
                pixels
            )
            for f in range(3)
        ],
        axis=0,
    )
    assert np.abs(_probs(ok, served.classes, f"{TARGET}.") - mean).max() <= TOLERANCE


def test_one_served_cell_scores_its_test_images_as_its_own_predictions(
    study: Workdir, one_cell: Path, tmp_path: Path
) -> None:
    scores = predict_batch(
        [study.path / IMAGES],
        {TARGET: one_cell},
        {},
        None,
        None,
        tmp_path / "s.parquet",
        tmp_path / "s.csv",
    )
    expected = _predictions(study)
    got = scores.set_index("sample_id").loc[expected.index]
    classes = ServedModel.load(one_cell).classes
    diff = np.abs(_probs(got, classes, f"{TARGET}.") - _probs(expected, classes))
    assert len(expected) >= 25 and diff.max() <= TOLERANCE


@pytest.fixture(scope="module")
def server(study: Workdir, one_cell: Path):
    served = load_study(study.path)
    served.models = {TARGET: ServedModel.load(one_cell)}
    running = start_in_thread(create_app(served))
    yield running
    running.stop()


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_the_api_scores_an_image_as_its_cell_did(study: Workdir, server: RunningServer) -> None:
    before = _files_under(study.path)
    leftovers = set(Path(tempfile.gettempdir()).glob("spectragrid-upload-*"))
    expected = _predictions(study)
    sample = expected.index[0]
    status, answer = post_file(server.url, "face.png", (study.path / IMAGES / sample).read_bytes())
    assert status == 200 and answer["n_samples"] == 1
    got = answer["samples"][0]
    assert got["sample_id"] == "face.png" and got["reason"][TARGET] == ""
    for name, p in got["probabilities"][TARGET].items():
        assert abs(p - expected.loc[sample, f"prob_{name}"]) <= TOLERANCE
    assert got["decision"][TARGET] in (*answer["models"][TARGET]["classes"], "uncertain")
    assert answer["models"][TARGET]["image_size"] == [32, 32]

    # bad images: a message naming what is wrong, and the server goes on serving
    status, answer = post_file(server.url, "notes.png", b"not an image at all")
    assert status == 400
    assert answer["error"].startswith("notes.png: the file cannot be read as an image")
    wrong_size = (study.path / IMAGES / "wrong_size.png").read_bytes()
    status, answer = post_file(server.url, "small.png", wrong_size)
    assert status == 400 and "small.png: the file is not the size" in answer["error"]
    assert "expected 32x32" in answer["error"]
    wrong_mode = (study.path / IMAGES / "wrong_mode.png").read_bytes()
    status, answer = post_file(server.url, "grey.png", wrong_mode)
    assert status == 400 and "expected RGB" in answer["error"]
    status, answer = post_file(server.url, "again.png", (study.path / IMAGES / sample).read_bytes())
    assert status == 200 and answer["samples"][0]["reason"][TARGET] == ""
    # nothing written into the study, nothing left in the temporary folder
    assert _files_under(study.path) == before
    assert set(Path(tempfile.gettempdir()).glob("spectragrid-upload-*")) == leftovers


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chrome-profile")) as driver:
        yield driver


def test_the_page_draws_an_uploaded_image_and_its_scores(
    browser, study: Workdir, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    running = start_in_thread(create_app(load_study(study.path)))
    try:
        sample = _predictions(study).index[0]
        upload = tmp_path / EVIL_NAME.replace("/", "_")
        upload.write_bytes((study.path / IMAGES / sample).read_bytes())
        browser.get(running.url + "/")
        card = browser.find_element(By.CSS_SELECTOR, ".card")
        assert card.find_element(By.CSS_SELECTOR, "h3").text == TARGET
        assert card.find_element(By.CSS_SELECTOR, ".image-input").text.startswith("32×32 pixels")
        browser.find_element(By.ID, "file").send_keys(str(upload))
        WebDriverWait(browser, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#results .sample img.picture")
        )
        section = browser.find_element(By.CSS_SELECTOR, "#results .sample")
        assert section.find_element(By.CSS_SELECTOR, ".sample-id").text == upload.name
        picture = section.find_element(By.CSS_SELECTOR, "img.picture")
        WebDriverWait(browser, 10).until(
            lambda d: d.execute_script("return arguments[0].complete", picture)
        )
        size = browser.execute_script(
            "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", picture
        )
        assert size == [32, 32]
        assert browser.execute_script("return window.__pwned === undefined")
        assert section.find_elements(By.CSS_SELECTOR, "svg.spectrum") == []
        bars = section.find_elements(By.CSS_SELECTOR, ".bar")
        served = load_study(study.path).models[TARGET]
        assert [b.get_attribute("data-class") for b in bars] == served.classes
        probs = [float(b.find_element(By.CSS_SELECTOR, ".prob").text) for b in bars]
        assert sum(probs) == pytest.approx(1.0, abs=2e-4)
        decision = section.find_element(By.CSS_SELECTOR, ".decision").text
        assert decision in (*served.classes, "uncertain")
        browser.save_screenshot(str(artifacts(tmp_path) / "serve_page_image.png"))

        # an image of another size: its message, and the page still works
        small = tmp_path / "small.png"
        small.write_bytes((study.path / IMAGES / "wrong_size.png").read_bytes())
        browser.find_element(By.ID, "file").send_keys(str(small))
        WebDriverWait(browser, 30).until(
            lambda d: "not the size" in d.find_element(By.ID, "status").text
        )
        assert "small.png" in browser.find_element(By.ID, "status").text
    finally:
        running.stop()
