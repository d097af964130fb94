"""Cells of the small demo dataset the cell, resume and loop tests train."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from spectragrid.core.config import complete_model
from spectragrid.core.layout import CELL_FILES
from spectragrid.data.demo import generate_demo
from spectragrid.data.ingest import ingest_with_config
from spectragrid.data.splits import split_clean_file
from spectragrid.train.cell import CellOutputs, CellSpec

ROOT = Path(__file__).resolve().parents[3]
CHANNELS = ["277", "380", "425"]


def prepare(base: Path) -> Path:
    """300 demo samples ingested as the workflow does, in 3 folds: clean.parquet, folds.parquet."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    demo = generate_demo(base / "demo", n_samples=300, seed=1, noise_rate=0.1)
    ingest_with_config(demo["raw_files"], base, config)
    split_clean_file(base / "clean.parquet", base / "folds.parquet", seed=0, k=3)
    return base


def spec(
    labels: str = "raw",
    params: dict | None = None,
    train: dict | None = None,
    transforms: dict | None = None,
    **changes,
) -> CellSpec:
    """A CellSpec for fold 1 of 3, its model settings completed from the schema as the
    workflow completes them; `changes` replace other fields."""
    model = complete_model(
        {
            "arch": "cnn",
            "params": {"widths": [8, 8, 8]} if params is None else params,
            "train": {"epochs": 2, "batch_size": 64, "patience": 2} if train is None else train,
            "transforms": transforms or {},
        }
    )
    clean = labels == "clean"
    cell = CellSpec(
        dataset="demo",
        labels=labels,
        target="AVA_IN",
        target_spec="AVA IN",
        channels_name="all",
        channels=CHANNELS,
        model="cnn",
        arch="cnn",
        model_params=model["params"],
        train=model["train"],
        tabular=["greffon_transmittance", "greffon_brix"],
        transforms=model["transforms"],
        action="drop" if clean else None,
        downweight=0.1 if clean else None,
        seed=0,
        fold=1,
        k=3,
    )
    return dataclasses.replace(cell, **changes)


def outputs(folder: Path) -> CellOutputs:
    folder.mkdir(parents=True, exist_ok=True)
    return CellOutputs(**{key: folder / name for key, name in CELL_FILES.items()})


def inputs(prepared: Path) -> tuple[Path, Path, None]:
    """clean.parquet, folds.parquet, and no issues file (a raw cell)."""
    return prepared / "clean.parquet", prepared / "folds.parquet", None


def results_of(out: CellOutputs) -> dict:
    """What a cell computed: its metrics and the checksums of the files that depend
    only on the training (the card records timings, so its checksum is left out)."""
    import json

    metrics = json.loads(out.metrics.read_text())
    sums = metrics.pop("outputs")
    sums.pop(CELL_FILES["card"])
    return {"metrics": metrics, "checksums": sums}
