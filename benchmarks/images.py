"""Image cells against same-run references: storage, throughput, accuracy.

    .venv/bin/python benchmarks/images.py [--families img_lenet img_resnet18 ...|all]
        [--n N] [--epochs E] [--max-train-seconds S] [--json results.json]

1. Storage: the demo faces (32x32) read into a (N, C, H, W) uint8 batch from
   the clean file's raw pixels, against the same images stored as encoded PNG
   bytes in a Parquet binary column and decoded with Pillow (the ratio is the
   figure).
2. Throughput: an image cell's training samples/s (its card: optimizer steps
   alone, augmentation included) against a bare PyTorch loop (same model,
   image size, batch size, Adam lr, precision, rows; no augmentation, no
   Lightning; two untimed warm-up steps) in this run, right after the cell.
3. Accuracy: fold 0 of 5 of each family on both demo sets (faces: binary,
   13 % glasses, 8 % wrong labels; shapes: 4 classes), on the test fold's
   given labels and on the generator's true classes, every network trained
   from scratch (no pretrained file).

Each family has its own image size (at least its architecture's `min_size`),
number of images, epochs, learning rate and training-time budget (FAMILIES;
--n, --epochs and --max-train-seconds override them for every family). The
full-width ResNet, VGG and AlexNet train for fewer epochs than LeNet and the
small CNN, on the same images, so that the default run (one architecture of
each family) stays under 20 minutes on 2 CPU cores; a cell that reaches its
time budget stops before the epoch that would pass it and the table says so
(`stopped`). Architectures left out of --families are listed as not run.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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
from spectragrid.train.image_cell import run_image_cell
from spectragrid.train.image_models import IMAGE_REGISTRY, build_image_model

SETS: dict[str, dict[str, Any]] = {
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


@dataclass(frozen=True)
class Family:
    """How one image architecture is benchmarked: its parameters, the side of
    its square images, the images generated, the epochs asked for, the cell's
    training-time budget (models.<name>.budget.max_train_seconds) and the bare
    loop's epochs."""

    params: dict = field(default_factory=dict)
    size: int = 32
    n: int = 1500
    epochs: int = 10
    max_train_seconds: float = 240.0
    bare_epochs: int = 2
    lr: float = 0.003


def full_width(epochs: int, size: int = 32, lr: float = 0.003) -> Family:
    """A full-width network's settings: 3 minutes of training at most per cell."""
    return Family(size=size, epochs=epochs, max_train_seconds=180.0, bare_epochs=1, lr=lr)


# Every architecture of the image registry, trained on the same 1,500 images
# of each demo set. LeNet and the small CNN take seconds per epoch; the
# full-width networks (11-134 M parameters) ten to a hundred times longer,
# hence fewer epochs, a training-time budget and a one-epoch bare loop. VGG
# and AlexNet train at Adam's lr 1e-4: at 3e-3 (and 3e-4) VGG-11 with batch
# norm predicted one class of the faces after its epochs.
# AlexNet needs at least 63 px (its three 3x3 max-pools): its sets are drawn
# at 64 px, the others' at 32 px (ResNet and VGG need 32).
FAMILIES: dict[str, Family] = {
    "img_lenet": Family(),
    "img_small_cnn": Family(params={"widths": [16, 32, 48]}),
    "img_resnet18": full_width(5),
    "img_resnet34": full_width(5),
    "img_vgg11": full_width(4, lr=1e-4),
    "img_vgg11_bn": full_width(4, lr=1e-4),
    "img_vgg16": full_width(4, lr=1e-4),
    "img_vgg16_bn": full_width(4, lr=1e-4),
    "img_alexnet": full_width(5, size=64, lr=1e-4),
}
# One architecture of each family (lenet, small_cnn, resnet, vgg_image, alexnet):
# 10 to 20 minutes on 2 shared cores. `--families all` adds ResNet-34, VGG-11
# without batch norm and both VGG-16 (about as long again).
DEFAULT_FAMILIES = ["img_lenet", "img_small_cnn", "img_resnet18", "img_vgg11_bn", "img_alexnet"]
assert set(FAMILIES) == set(IMAGE_REGISTRY), "every image architecture needs its settings"


def make_set(root: Path, name: str, n: int, size: int) -> Path:
    """The demo set `name` of `n` images of size x size pixels, ingested and split."""
    s = SETS[name]
    folder = root / f"{name}_{size}px_{n}"
    write_demo_images(
        s["kind"],
        folder / "images",
        folder / "truth.csv",
        labels_path=folder / "labels.txt" if s["kind"] == "binary" else None,
        n_samples=n,
        seed=0,
        noise_rate=0.08,
        size=(size, size),
    )
    images = {
        "layout": s["layout"],
        "folder": str(folder / "images"),
        "size": [size, size],
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


def storage(clean: Path, root: Path, repeats: int = 3) -> dict[str, float]:
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


def train_cell(
    root: Path, clean: Path, name: str, arch: str, family: Family
) -> tuple[dict, dict, Path]:
    s = SETS[name]
    entry = complete_model(
        {
            "arch": arch,
            "params": family.params,
            "transforms": {"hflip": True, "crop_padding": 4},
            "budget": {"max_train_seconds": family.max_train_seconds},
            "train": {
                "epochs": family.epochs,
                "batch_size": 64,
                "lr": family.lr,
                "scheduler": "three_plateau",
                "class_weights": "balanced",
                "monitor": "val_balanced_accuracy",
                "patience": family.epochs,
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
        model=arch,
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
        budget=entry["budget"],
    )
    cell = root / "cells" / name / arch
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
    metrics = run_cell(
        spec,
        clean,
        clean.parent / "folds.parquet",
        None,
        out,
        threads=torch.get_num_threads(),
        train_cell=run_image_cell,
    )
    return metrics, json.loads(out.card.read_text()), out.predictions


def truth_scores(clean: Path, predictions: Path) -> tuple[float, float]:
    """Accuracy and balanced accuracy of a cell's test predictions against the
    generator's true classes (truth.csv), not the given, partly wrong labels."""
    truth = pd.read_csv(clean.parent / "truth.csv")
    true_of = dict(zip(truth["file"].map(lambda f: Path(f).name), truth["label"], strict=True))
    pred = pd.read_parquet(predictions)
    classes = [c.removeprefix("prob_") for c in pred.columns if c.startswith("prob_")]
    true = [true_of[Path(i).name] for i in pred["sample_id"]]
    # one-vs-all targets name every other class "rest"
    y = np.array([classes.index(t) if t in classes else classes.index("rest") for t in true])
    hit = pred["pred_index"].to_numpy() == y
    recalls = [hit[y == c].mean() for c in np.unique(y)]
    return float(hit.mean()), float(np.mean(recalls))


def bare_loop(
    clean: Path,
    bands: list[str],
    arch: str,
    family: Family,
    n_train: int,
    n_classes: int,
    precision: str,
) -> float:
    """Samples/s of a plain loop: the same model, images, batches, Adam and precision
    (bf16 autocast where the cell trained in bf16-mixed); nothing else."""
    x = torch.from_numpy(read_images(clean).stack(bands)[:n_train])
    y = torch.randint(0, n_classes, (len(x),))
    torch.manual_seed(0)
    size = (family.size, family.size)
    model = build_image_model(arch, family.params, len(bands), size, n_classes)
    model.fit_scaling(x.numpy())
    # the cell's optimizer: Adam with the fused kernel (schedules.build_optimizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=family.lr, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()

    def step(idx: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16-mixed"):
            loss = loss_fn(model(x.index_select(0, idx)), y[idx])
        loss.backward()
        optimizer.step()

    # two untimed steps: oneDNN's kernels for these shapes, the optimizer's state
    for _ in range(2):
        step(torch.arange(min(64, len(x))))
    started = time.perf_counter()
    for _ in range(family.bare_epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            step(order[i : i + 64])
    return family.bare_epochs * len(x) / (time.perf_counter() - started)


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def table(results: dict[str, Any], selected: list[str]) -> str:
    head = (
        "| set | arch | px | n (train) | lr | epochs run/asked | stopped | parameters "
        "| accuracy (given) | balanced (given) | HTER (given) | accuracy (truth) "
        "| balanced (truth) | cell samples/s | bare samples/s | cell / bare | cell wall s |"
    )
    lines = [head, "|" + " --- |" * (head.count(" | ") + 1)]
    for name in SETS:
        for arch, family in FAMILIES.items():
            if arch not in selected:
                lines.append(
                    f"| {name} | {arch} | {family.size} | | | | not run (not in --families) "
                    + "| " * 10
                    + "|"
                )
                continue
            r = results["cells"][f"{name}/{arch}"]
            hter = "-" if not math.isfinite(r["test_hter"]) else f"{r['test_hter']:.3f}"
            lines.append(
                f"| {name} | {arch} | {family.size} | {r['n']} ({r['n_train']}) | {r['lr']:g} "
                f"| {r['epochs_run']}/{r['epochs']} | {r['stopped']} "
                f"| {r['parameters']:,} | {r['test_accuracy']:.3f} "
                f"| {r['test_balanced_accuracy']:.3f} | {hter} "
                f"| {r['truth_accuracy']:.3f} | {r['truth_balanced_accuracy']:.3f} "
                f"| {r['cell_samples_per_s']:.1f} | {r['bare_samples_per_s']:.1f} "
                f"| {r['cell_over_bare']:.2f} | {r['wall_s']:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--families",
        nargs="+",
        default=DEFAULT_FAMILIES,
        choices=[*FAMILIES, "all"],
        metavar="ARCH",
        help=f"image architectures to train, among {', '.join(FAMILIES)} (default: one of "
        "each family); all: every one",
    )
    parser.add_argument("--n", type=int, help="images per demo set, for every family")
    parser.add_argument("--epochs", type=int, help="epochs, for every family")
    parser.add_argument("--max-train-seconds", type=float, help="each cell's training-time budget")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    selected = list(FAMILIES) if "all" in args.families else list(dict.fromkeys(args.families))
    families = {}
    for arch in selected:
        family = FAMILIES[arch]
        if args.n is not None:
            family = replace(family, n=args.n)
        if args.epochs is not None:
            family = replace(family, epochs=args.epochs)
        if args.max_train_seconds is not None:
            family = replace(family, max_train_seconds=args.max_train_seconds)
        families[arch] = family
    torch.set_num_threads(2)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "families": {arch: vars(f) for arch, f in families.items()},
        "load_before": load(),
        "cells": {},
    }
    print(f"load average before: {results['load_before']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # the faces LeNet trains on, unless --n changed them
        cleans = {("faces", 1500, 32): make_set(root, "faces", 1500, 32)}
        results["storage"] = storage(cleans[("faces", 1500, 32)], root)
        for name in SETS:
            for arch, family in families.items():
                key = (name, family.n, family.size)
                if key not in cleans:
                    cleans[key] = make_set(root, name, family.n, family.size)
                metrics, card, predictions = train_cell(root, cleans[key], name, arch, family)
                truth_accuracy, truth_balanced = truth_scores(cleans[key], predictions)
                bare = bare_loop(
                    cleans[key],
                    SETS[name]["bands"],
                    arch,
                    family,
                    metrics["n_train"],
                    len(SETS[name]["labels"]),
                    card["precision"],
                )
                cell = {
                    "n": family.n,
                    "n_train": metrics["n_train"],
                    "epochs": family.epochs,
                    "lr": family.lr,
                    "epochs_run": metrics["epochs_run"],
                    "stopped": card["stopped"],
                    "precision": card["precision"],
                    "test_accuracy": metrics["test"]["accuracy"],
                    "test_balanced_accuracy": metrics["test"]["balanced_accuracy"],
                    "test_hter": metrics["test"].get("hter", math.nan),
                    "truth_accuracy": truth_accuracy,
                    "truth_balanced_accuracy": truth_balanced,
                    "cell_samples_per_s": card["train_samples_per_second"],
                    "bare_samples_per_s": bare,
                    "cell_over_bare": card["train_samples_per_second"] / bare,
                    "parameters": card["parameters"],
                    "wall_s": card["wall_seconds"],
                }
                results["cells"][f"{name}/{arch}"] = cell
                print(f"{name}/{arch}: {json.dumps(cell, default=float)}", flush=True)
    results["load_after"] = load()
    results["wall_s"] = time.perf_counter() - started
    st = results["storage"]
    precisions = sorted({c["precision"] for c in results["cells"].values()})
    print()
    print(
        f"storage, {st['n']} faces 32x32: pixels {st['pixels_s'] * 1000:.1f} ms, "
        f"{st['bytes_pixels']:,} B; PNG in Parquet {st['png_s'] * 1000:.1f} ms, "
        f"{st['bytes_png']:,} B; PNG / pixels {st['png_over_pixels']:.1f}x"
    )
    print(
        f"threads {results['threads']}, precision {', '.join(precisions)}, batch 64, "
        f"fold 0 of 5, seed 0; wall {results['wall_s'] / 60:.1f} min; load average "
        f"(1, 5, 15 min) before {results['load_before']}, after {results['load_after']}"
    )
    print()
    print(table(results, selected))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
