"""The training job of one fold group (workflow rule `train`): the K folds of one
model x target x channel set x seed, from Snakemake's `snakemake` object.

Run by workflow/scripts/train.py, cold or in the warm interpreter
(core.job_server), which imports this module, and with it everything a cell
needs, once for the whole run.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

# Imported here, not where first used, so that the warm interpreter holds them:
# ONNX export and the loop's Lightning Fabric are the bulk of a job's start-up.
import spectragrid.train.export
import spectragrid.train.loop
from spectragrid.core import layout
from spectragrid.core.config import load_schema
from spectragrid.core.joblog import job_log
from spectragrid.train.cell import CellOutputs, CellSpec
from spectragrid.train.fold_group import fold_jobs, run_fold_group
from spectragrid.train.label_action import IssuesSource
from spectragrid.train.models import build_model


def main(snakemake: Any) -> None:
    w = snakemake.wildcards
    p = snakemake.params.cell
    k = int(snakemake.params.k)
    with job_log(snakemake.log[0]) as log:
        specs = [
            CellSpec(
                dataset=w.dataset,
                labels=w.labels,
                target=w.target,
                target_spec=p["target_spec"],
                channels_name=w.channels,
                channels=list(p["channels"]),
                model=w.model,
                arch=p["arch"],
                model_params=dict(p["model_params"]),
                train=dict(p["train"]),
                tabular=list(p["tabular"]),
                transforms=dict(p["transforms"]),
                preprocessing=list(p["preprocessing"]),
                # absent unless the model sets them (workflow/rules/common.smk, get_cell_params)
                pretrained=p.get("pretrained"),
                budget=dict(p["budget"]) if p.get("budget") else None,
                action=p["action"],
                downweight=p["downweight"],
                label_patch=tuple((str(i), str(v)) for i, v in snakemake.params.label_patch),
                seed=int(w.seed),
                fold=fold,
                k=k,
            )
            for fold in range(k)
        ]
        # Snakemake tracks a cell's metrics.json (layout.CELL_TRACKED_FILES); every
        # other file of the cell goes to the same folder.
        folders = [
            Path(snakemake.output[layout.fold_output_name("metrics", fold)]).parent
            for fold in range(k)
        ]
        outputs = [
            CellOutputs(**{name: folder / file for name, file in layout.CELL_FILES.items()})
            for folder in folders
        ]
        every_metrics = run_fold_group(
            fold_jobs(specs, outputs),
            clean_path=Path(snakemake.input.clean),
            folds_path=Path(snakemake.input.folds),
            issues=(
                IssuesSource(
                    Path(snakemake.input.issues),
                    # the own-model veto's evidence (label_issues.own_model_veto): the
                    # predictions beside the raw cells' metrics.json
                    tuple(
                        Path(p).with_name(layout.CELL_FILES["predictions"])
                        for p in snakemake.input.get("own_metrics", [])
                    ),
                )
                if w.labels == "clean"
                else None
            ),
            threads=snakemake.threads,
        )
        for metrics in every_metrics:
            log.info("%s: test %s", metrics["display_name"], metrics["test"])


def warm_up() -> None:
    """What every training job would otherwise load on its first cell, done once by the
    warm interpreter before it forks any job: the config schema each cell's settings
    are completed from, the ONNX exporter's operator tables, and the Parquet, CSV and
    checkpoint writers' lazily imported modules (about a tenth of a 5-fold demo job).

    On the CPU and on one thread only: the server must not initialise CUDA or start
    a thread pool that a forked job would inherit broken."""
    load_schema()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_model("cnn", {"widths": [2], "head_hidden": 4}, 1, 16, 1, 2)
        with tempfile.TemporaryDirectory(prefix="spectragrid-warm-up-") as folder:
            export = Path(folder) / "model.onnx"
            spectragrid.train.export.export_onnx(model, export, 1, 16, 1, {"warm_up": True})
            frame = pd.DataFrame({"sample_id": ["a", "b"], "prob_x": [0.25, 0.75]})
            frame.to_parquet(Path(folder) / "predictions.parquet", index=False)
            pd.read_parquet(Path(folder) / "predictions.parquet")
            frame.to_csv(Path(folder) / "history.csv", index=False)
            torch.save(model.state_dict(), io.BytesIO())
    finally:
        torch.set_num_threads(threads)
