"""Image cells against same-run references: storage, throughput, accuracy.

    .venv/bin/python benchmarks/images.py [--n 1500] [--epochs 10]

1. Storage: the demo faces read into a (N, C, H, W) uint8 batch from the clean
   file's raw pixels, against the same images stored as encoded PNG bytes in a
   Parquet binary column and decoded with Pillow (the ratio is the figure).
2. Throughput: an image cell's training samples/s (its card: optimizer steps
   alone, augmentation included) against a bare PyTorch loop (same model,
   batch size, optimizer, rows; no augmentation, no Lightning) in this run.
3. Accuracy: fold 0 of each family on both demo sets (faces: binary, 13 %
   glasses, 8 % wrong labels; shapes: 4 classes), on the test fold's given labels.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from spectragrid.core.config import complete_model
from spectragrid.data.demo_images import write_demo_images
from spectragrid.data.image_clean import read_images
from spectragrid.data.image_ingest import run_image_ingest
from spectragrid.data.splits import split_clean_file
from spectragrid.train.cell import CellOutputs, CellSpec, run_cell
from spectragrid.train.image_models import build_image_model

SETS = {
    "faces": dict(
        kind="binary",
        layout="label_file",
        mode="RGB",
        target="OVA glasses",
        bands=["R", "G", "B"],
        labels=("plain", "glasses"),
    ),
    "shapes": dict(
        kind="multiclass",
        layout="class_folders",
        mode="L",
        target="AVA",
        bands=["L"],
        labels=("disk", "ring", "square", "cross"),
    ),
}
FAMILIES = {"lenet": ("img_lenet", {}), "small_cnn": ("img_small_cnn", {"widths": [16, 32, 48]})}


def make_set(root: Path, name: str, n: int) -> Path:
    s = SETS[name]
    folder = root / name
    write_demo_images(
        s["kind"],
        folder / "images",
        folder / "truth.csv",
        labels_path=folder / "labels.txt" if s["kind"] == "binary" else None,
        n_samples=n,
        seed=0,
        noise_rate=0.08,
        size=(32, 32),
    )
    images = {
        "layout": s["layout"],
        "folder": str(folder / "images"),
        "size": [32, 32],
        "mode": s["mode"],
        "split_folders": s["kind"] == "multiclass",
        "labels": str(folder / "labels.txt") if s["kind"] == "binary" else None,
    }
    out = folder / "clean.parquet"
    run_image_ingest(
        out,
        folder / "report.json",
        folder / "dropped.csv",
        images,
        {"id": "file", "label": "label"},
        {v: v for v in s["labels"]},
        k=5,
    )
    split_clean_file(out, folder / "folds.parquet", seed=0, k=5, grouped=False)
    return out


def storage(clean: Path, root: Path, repeats: int = 3) -> dict:
    data = read_images(clean)
    encoded = []
    for pixels in data.pixels:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    png_file = root / "encoded.parquet"
    pq.write_table(pa.table({"png": pa.array(encoded, pa.binary())}), png_file)

    def raw() -> np.ndarray:
        return read_images(clean).stack(data.bands)

    def png() -> np.ndarray:
        column = pq.read_table(png_file).column("png").to_pylist()
        return np.stack([np.asarray(Image.open(io.BytesIO(b))) for b in column]).transpose(
            0, 3, 1, 2
        )

    assert np.array_equal(raw(), png())
    best = {}
    for name, read in (("pixels", raw), ("png", png)):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            read()
            times.append(time.perf_counter() - started)
        best[name] = min(times)
    return {
        "n": len(data),
        "pixels_s": best["pixels"],
        "png_s": best["png"],
        "png_over_pixels": best["png"] / best["pixels"],
        "bytes_pixels": clean.stat().st_size,
        "bytes_png": png_file.stat().st_size,
    }


def train_cell(root: Path, name: str, model: str, epochs: int) -> tuple[dict, dict]:
    s = SETS[name]
    arch, params = FAMILIES[model]
    entry = complete_model(
        {
            "arch": arch,
            "params": params,
            "transforms": {"hflip": True, "crop_padding": 4},
            "train": {
                "epochs": epochs,
                "batch_size": 64,
                "lr": 0.003,
                "scheduler": "three_plateau",
                "class_weights": "balanced",
                "monitor": "val_balanced_accuracy",
                "patience": epochs,
            },
        }
    )
    spec = CellSpec(
        dataset=name,
        labels="raw",
        target="t",
        target_spec=s["target"],
        channels_name="all",
        channels=s["bands"],
        model=model,
        arch=arch,
        model_params=entry["params"],
        train=entry["train"],
        tabular=[],
        seed=0,
        fold=0,
        k=5,
        transforms=entry["transforms"],
        action=None,
        downweight=None,
    )
    cell = root / name / model
    out = CellOutputs(
        *(
            cell / f
            for f in (
                "model.ckpt",
                "model.onnx",
                "predictions.parquet",
                "metrics.json",
                "history.csv",
                "card.json",
            )
        )
    )
    folder = root / name
    metrics = run_cell(
        spec,
        folder / "clean.parquet",
        folder / "folds.parquet",
        None,
        out,
        threads=torch.get_num_threads(),
    )
    return metrics, json.loads(out.card.read_text())


def bare_loop(
    clean: Path, bands: list[str], arch: str, params: dict, n_train: int, epochs: int = 2
) -> float:
    """Samples/s of a plain loop: the same model, batches and Adam; nothing else."""
    x = torch.from_numpy(read_images(clean).stack(bands)[:n_train])
    y = torch.randint(0, 2, (len(x),))
    torch.manual_seed(0)
    model = build_image_model(arch, params, len(bands), (32, 32), 2)
    model.fit_scaling(x.numpy())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = order[i : i + 64]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x.index_select(0, idx)), y[idx]).backward()
            optimizer.step()
    return epochs * len(x) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    results: dict = {"threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cleans = {name: make_set(root, name, args.n) for name in SETS}
        results["storage"] = storage(cleans["faces"], root)
        for name in SETS:
            for model, (arch, params) in FAMILIES.items():
                metrics, card = train_cell(root, name, model, args.epochs)
                bare = bare_loop(
                    cleans[name], SETS[name]["bands"], arch, params, metrics["n_train"]
                )
                results[f"{name}/{model}"] = {
                    "test_accuracy": metrics["test"]["accuracy"],
                    "test_balanced_accuracy": metrics["test"]["balanced_accuracy"],
                    "test_hter": metrics["test"]["hter"],
                    "cell_samples_per_s": card["train_samples_per_second"],
                    "bare_samples_per_s": bare,
                    "cell_over_bare": card["train_samples_per_second"] / bare,
                    "parameters": card["parameters"],
                }
    print(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
