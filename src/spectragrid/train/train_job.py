"""The training job of one fold group (workflow rule `train`): the K folds of one
model x target x channel set x seed, from Snakemake's `snakemake` object.

Run by workflow/scripts/train.py, cold or in the warm interpreter
(core.job_server), which imports this module, and with it everything a cell
needs, once for the whole run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Imported here, not where first used, so that the warm interpreter holds them:
# ONNX export and the loop's Lightning Fabric are the bulk of a job's start-up.
import spectragrid.train.export
import spectragrid.train.loop  # noqa: F401
from spectragrid.core import layout
from spectragrid.core.joblog import job_log
from spectragrid.train.cell import CellOutputs, CellSpec
from spectragrid.train.fold_group import fold_jobs, run_fold_group
from spectragrid.train.label_action import IssuesSource


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
