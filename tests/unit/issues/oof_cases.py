"""Shared cases of the label-issues tests: the raw cells of one model on a binary target,
written at their layout paths, with chosen samples given the wrong label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.core import layout
from spectragrid.core.config import load_schema

CLASSES = ["OK", "rest"]
DATASET = "demo"


def prediction_file(work: Path, fold: int, k: int, model: str = "m") -> Path:
    cell = layout.cell_dir(DATASET, "raw", "OVA_OK", "all", model, 0, fold, k)
    return work / cell / layout.CELL_FILES["predictions"]


def clean_file(work: Path) -> Path:
    return work / layout.clean_file(DATASET)


def folds_file(work: Path, k: int = 3) -> Path:
    return work / layout.folds_file(DATASET, 0, k)


def issues_outputs(work: Path, k: int = 3) -> dict[str, Path]:
    """Where the label_issues job of these cells writes, by output name."""
    folder = work / layout.issues_dir(DATASET, "OVA_OK", "all", 0, k)
    return {name: folder / file for name, file in layout.ISSUES_FILES.items()}


def write_cells(work: Path, n=300, k=3, seed=0, wrong=()) -> tuple[list[Path], list[str]]:
    """Test-fold predictions of k cells; samples in `wrong` carry a flipped given label."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i:03d}" for i in range(n)]
    truth = (rng.random(n) < 0.3).astype(int)
    given = truth.copy()
    for i in wrong:
        given[i] = 1 - given[i]
    # a model that learned the truth: confident on the true class
    p_rest = np.clip(truth * 0.85 + (1 - truth) * 0.1 + rng.normal(0, 0.05, n), 0.01, 0.99)
    # the model is sure of the truth where the given label is plainly wrong
    p_rest[list(wrong)] = np.where(truth[list(wrong)] == 1, 0.98, 0.02)
    folds = np.arange(n) % k
    files = []
    for f in range(k):
        rows = folds == f
        frame = pd.DataFrame(
            {
                "sample_id": np.array(ids)[rows],
                "full_truth": np.where(given[rows] == 0, "OK0", "VR11"),
                "label": np.array(CLASSES)[given[rows]],
                "label_index": given[rows],
                "pred_index": (p_rest[rows] > 0.5).astype(int),
                "prob_OK": 1 - p_rest[rows],
                "prob_rest": p_rest[rows],
            }
        )
        path = prediction_file(work, f, k)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        files.append(path)
    clean = pd.DataFrame({"sample_id": ids, "full_truth": np.where(given == 0, "OK0", "VR11")})
    clean_file(work).parent.mkdir(parents=True, exist_ok=True)
    clean.to_parquet(clean_file(work), index=False)
    folds_file(work, k).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"sample_id": ids, "fold": folds}).to_parquet(folds_file(work, k))
    return files, ids


def issue_settings() -> dict:
    """The label_issues filter settings at their schema defaults."""
    schema = load_schema()["properties"]["label_issues"]["properties"]
    keys = ("filter_by", "rank_by", "min_examples_per_class")
    return {key: schema[key]["default"] for key in keys}
