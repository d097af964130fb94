"""Image data sets: the demo generator, the listing of both layouts, the ingest's checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from spectragrid.data.demo_images import write_demo_images
from spectragrid.data.image_clean import is_image_file, read_images
from spectragrid.data.image_files import ImageFileError, list_images, read_label_file
from spectragrid.data.image_ingest import run_image_ingest
from spectragrid.data.splits import read_fold_parts, split_clean_file

SIZE = (16, 16)


def faces(root: Path, n: int = 60) -> dict:
    write_demo_images(
        "binary",
        root / "images",
        root / "truth.csv",
        labels_path=root / "labels.txt",
        n_samples=n,
        seed=3,
        noise_rate=0.1,
        size=SIZE,
    )
    return {
        "layout": "label_file",
        "folder": str(root / "images"),
        "labels": str(root / "labels.txt"),
        "size": list(SIZE),
        "mode": "RGB",
    }


def cells(root: Path, n: int = 60) -> dict:
    write_demo_images(
        "multiclass",
        root / "images",
        root / "truth.csv",
        n_samples=n,
        seed=3,
        noise_rate=0.1,
        size=SIZE,
    )
    return {
        "layout": "class_folders",
        "folder": str(root / "images"),
        "split_folders": True,
        "size": list(SIZE),
        "mode": "L",
    }


def ingest(root: Path, images: dict, label_map: dict) -> tuple[dict, pd.DataFrame]:
    out = root / "out"
    report = run_image_ingest(
        out / "clean.parquet",
        out / "report.json",
        out / "dropped.csv",
        images,
        {"id": "file", "label": "label"},
        label_map,
        k=3,
    )
    return report, pd.read_csv(out / "dropped.csv", keep_default_na=False)


def test_demo_is_deterministic_and_truth_differs_by_the_noise(tmp_path):
    faces(tmp_path / "a")
    faces(tmp_path / "b")
    a, b = tmp_path / "a" / "images", tmp_path / "b" / "images"
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    truth = pd.read_csv(tmp_path / "a" / "truth.csv")
    given = dict(
        line.rsplit(None, 1) for line in (tmp_path / "a" / "labels.txt").read_text().splitlines()
    )
    wrong = sum(given[f] != t for f, t in zip(truth["file"], truth["label"], strict=True))
    assert 1 <= wrong <= 15  # 10 % of 60, drawn
    assert set(truth["label"]) == {"plain", "glasses"}


def test_label_file_ingest_accounts_for_every_file_and_line(tmp_path):
    images = faces(tmp_path, n=60)
    report, dropped = ingest(tmp_path, images, {"plain": "plain", "glasses": "glasses"})
    reasons = dict(zip(dropped["sample_id"], dropped["reason"], strict=True))
    assert reasons == {
        "img_00000_copy.png": "duplicate",
        "no_label.png": "no_label",
        "unknown_label.png": "unknown_label",
        "unreadable.png": "unreadable",
        "wrong_mode.png": "wrong_mode",
        "wrong_size.png": "wrong_size",
        "img_missing.png": "missing_file",
    }
    # 60 images + 6 dirty files + 1 label without a file
    assert report["input_rows"] == 67
    assert report["kept"] == 60
    assert sum(report["dropped"].values()) + report["kept"] == report["input_rows"]
    assert dropped.set_index("sample_id").loc["img_missing.png", "source_file"] == "labels.txt:66"
    digest = report["image_sha256"]["img_00003.png"]
    data = read_images(tmp_path / "out" / "clean.parquet")
    row = data.table.set_index("sample_id").loc["img_00003.png"]
    assert row["sha256"] == digest and len(digest) == 64
    decoded = np.asarray(Image.open(tmp_path / "images" / "img_00003.png"))
    index = data.table.index[data.table["sample_id"] == "img_00003.png"][0]
    assert np.array_equal(data.pixels[index], decoded)
    assert data.stack(["B", "R"]).shape == (60, 2, *SIZE)
    assert np.array_equal(data.stack(["B"])[index, 0], decoded[..., 2])


def test_class_folders_keep_the_given_split_and_split_like_spectra(tmp_path):
    images = cells(tmp_path, n=60)
    report, dropped = ingest(tmp_path, images, {c: c for c in ("disk", "ring", "square", "cross")})
    assert sorted(dropped["reason"]) == ["duplicate", "unreadable", "wrong_mode", "wrong_size"]
    assert report["kept"] == 60
    clean = tmp_path / "out" / "clean.parquet"
    assert is_image_file(clean)
    data = read_images(clean)
    assert data.pixels.shape == (60, *SIZE, 1)
    assert set(data.table["given_split"]) <= {"train", "val", "test"}
    assert (data.table["label"] == data.table["sample_id"].str.split("/").str[1]).all()
    split_clean_file(clean, tmp_path / "folds.parquet", seed=0, k=3, grouped=False)
    folds = pd.read_parquet(tmp_path / "folds.parquet")
    assert sorted(folds["fold"].unique()) == [0, 1, 2]


def test_a_given_split_is_one_fold_of_the_given_folders(tmp_path):
    images = cells(tmp_path, n=60)
    ingest(tmp_path, images, {c: c for c in ("disk", "ring", "square", "cross")})
    clean = tmp_path / "out" / "clean.parquet"
    split_clean_file(clean, tmp_path / "given.parquet", seed=0, k=1, grouped=False, given=True)
    table = read_images(clean).table
    parts = read_fold_parts(tmp_path / "given.parquet", table["sample_id"], 0, 1)
    folder = table["sample_id"].str.split("/").str[0].to_numpy()
    for part in ("train", "val", "test"):
        mask = getattr(parts, part)
        assert mask.any() and (folder[mask] == part).all() and (folder[~mask] != part).all()


def test_label_csv_and_line_errors_name_the_file_and_line(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("file,label\na.png,x\nb c.png,y\n")
    assert read_label_file(csv, "file", "label") == {
        "a.png": ("x", "labels.csv:2"),
        "b c.png": ("y", "labels.csv:3"),
    }
    text = tmp_path / "labels.txt"
    text.write_text("# names and labels\nmy photo.png cat\n\nlonely\n")
    with pytest.raises(ImageFileError, match=r"labels.txt, line 4: expected `name label`"):
        read_label_file(text, "file", "label")
    text.write_text("a.png cat\na.png dog\n")
    with pytest.raises(ImageFileError, match=r"labelled twice \(labels.txt:1 and labels.txt:2\)"):
        read_label_file(text, "file", "label")
    with pytest.raises(ImageFileError, match="lacks column"):
        read_label_file(csv, "name", "label")


def test_a_file_outside_the_class_layout_is_named(tmp_path):
    (tmp_path / "cat").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "cat" / "a.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "stray.png")
    with pytest.raises(ImageFileError, match=r"stray.png: not in the class_folders layout"):
        list_images(tmp_path, "class_folders")


def test_everything_dropped_is_an_error_with_the_counts(tmp_path):
    images = faces(tmp_path, n=20)
    images["size"] = [9, 9]
    with pytest.raises(ImageFileError, match=r"all 26 images were dropped.*wrong_size"):
        ingest(tmp_path, images, {"plain": "plain", "glasses": "glasses"})
    assert not (tmp_path / "out" / "clean.parquet").exists()
    report_path = tmp_path / "out" / "report.json"
    assert not report_path.exists() or json.loads(report_path.read_text())
