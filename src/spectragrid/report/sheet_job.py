"""The sheet job of one fold group (workflow rule `sheet`): each fold's result sheet,
PNG and HTML, from Snakemake's `snakemake` object.

Run by workflow/scripts/sheet.py, cold or in the warm interpreter
(core.job_server), which imports matplotlib through this module once for the
whole run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spectragrid.core import layout
from spectragrid.core.joblog import job_log
from spectragrid.report.business_cost import CostTable
from spectragrid.report.cutoffs import CutoffRule
from spectragrid.report.sheet import build_sheet
from spectragrid.report.sheet_data import sheet_data
from spectragrid.report.sheet_png import sheet_png


def main(snakemake: Any) -> None:
    with job_log(snakemake.log[0]):
        for fold in range(snakemake.params.k):
            # each fold's sheet lies in its cell's folder, beside the files it reads
            folder = Path(snakemake.output[layout.fold_output_name("png", fold)]).parent

            def cell_file(name: str, folder: Path = folder) -> Path:
                return folder / layout.CELL_FILES[name]

            build_sheet(
                predictions_path=cell_file("predictions"),
                metrics_path=cell_file("metrics"),
                history_path=cell_file("history"),
                card_path=cell_file("card"),
                out_png=Path(snakemake.output[layout.fold_output_name("png", fold)]),
                out_html=Path(snakemake.output[layout.fold_output_name("html", fold)]),
                cutoff=snakemake.params.cutoff,
                costs=snakemake.params.costs,
            )


def warm_up() -> None:
    """Draw one made-up sheet in memory. Called by the warm interpreter before it forks
    any job: the fonts, glyph and text-size caches a first sheet fills (a third of its
    time) are then every job's from its first fold."""
    rng = np.random.default_rng(0)
    n, classes = 60, ["first class", "second"]
    proba = rng.dirichlet([1.0, 1.0], size=n)
    y = rng.integers(0, 2, n)
    predictions = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "full_truth": np.array(["A0", "B1"])[y],
            "label": np.array(classes)[y],
            "label_index": y,
            "pred_index": proba.argmax(axis=1),
            "flagged": np.zeros(n, bool),
            **{f"prob_{name}": proba[:, i] for i, name in enumerate(classes)},
        }
    )
    history = pd.DataFrame(
        {
            "epoch": [0, 1, 2],
            "train_loss": [np.nan, 0.7, 0.6],
            "val_loss": [0.8, 0.7, 0.65],
            "val_accuracy": [0.5, 0.6, 0.7],
            "val_macro_f1": [0.4, 0.5, 0.6],
            "lr": [1e-3] * 3,
        }
    )
    sheet_png(
        sheet_data(
            predictions,
            classes,
            "warm-up",
            rule=CutoffRule.from_config(
                {"rule": "youden_product", "recall": 0.95, "precision": 0.95}
            ),
            costs=CostTable.from_config({"A0": -1, "B*": 10}),
            history=history,
            card={"parameters": 1000, "seconds_per_epoch": 0.1},
            metrics={"best_epoch": 2},
        )
    )
